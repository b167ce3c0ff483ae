package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/client/agent"
	"github.com/runnel-dev/runnel/jobs"
)

// Beside the commands (docs_refs_test.go), the docs name job-file fields,
// go test commands, pages and headings, REST routes and metrics; the tests
// here check each against the code.

// TestDocsJobExamplesParse: the job-file YAML written outside docs/jobs.md
// and docs/architecture.md (whose examples the jobs package checks) is
// what the parser accepts: a whole job as it is, a source: or sinks: block
// or an operator entry inside a small job around it; an agent config loads
// as the agent loads it. A renamed or removed field fails here.
func TestDocsJobExamplesParse(t *testing.T) {
	const (
		// The operators an example may read: a window named per-page, as
		// the docs' examples have.
		head      = "name: t\nsource: {stream: s}\noperators:\n  - id: per-page\n    window: {key: 'r => r.page', tumbling: 10s, aggregate: {views: count}}\n"
		tail      = "sinks: [{id: o, log: {}}]\n"
		operators = "operators:\n  - id: m\n    map: 'r => r'\n"
	)
	checked := 0
	for name, text := range docFiles(t) {
		if name == "docs/jobs.md" || name == "docs/architecture.md" {
			// architecture.md's example adds a kind of its own; the jobs
			// package compiles it (TestArchitectureExample).
			continue
		}
		lines := strings.Split(text, "\n")
		for i := 0; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) != "```yaml" {
				continue
			}
			start := i + 1
			var block strings.Builder
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				block.WriteString(lines[i] + "\n")
			}
			b := block.String()
			var job string
			switch first := strings.TrimSpace(strings.SplitN(b, "\n", 2)[0]); {
			case strings.HasPrefix(first, "name:"):
				job = b
			case strings.HasPrefix(first, "source:"):
				job = "name: t\n" + b + operators + tail
			case strings.HasPrefix(first, "sinks:"):
				job = head + b
			case strings.HasPrefix(first, "- id:"):
				job = head + b + tail
			case strings.HasPrefix(first, "server:") || strings.HasPrefix(first, "kinesis:"):
				// An agent's config (client/agent's TestConfigKeysDocumented
				// checks its table): it loads as written.
				checked++
				path := filepath.Join(t.TempDir(), "agent.yaml")
				if err := os.WriteFile(path, []byte(b), 0o644); err != nil {
					t.Fatal(err)
				}
				if _, err := agent.Load(path); err != nil {
					t.Errorf("%s:%d: the agent config does not load:\n%s\n%v", name, start, b, err)
				}
				continue
			default:
				t.Errorf("%s:%d: a yaml block starting %q, which this test has no rule for", name, start, first)
				continue
			}
			checked++
			if _, err := jobs.Parse([]byte(job)); err != nil {
				t.Errorf("%s:%d: the example does not parse as a job file:\n%s\n%v", name, start, job, err)
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no job-file examples outside docs/jobs.md")
	}
}

// goTest picks `go test` commands and returns the words after go test.
func goTest(seg []string) ([]string, bool) {
	if len(seg) > 1 && seg[0] == "go" && seg[1] == "test" {
		return seg[2:], true
	}
	return nil, false
}

var testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)\w*)\(`)

// testNames returns the Test, Benchmark and Fuzz functions of the package
// in dir (relative to the repository root), or nil when it has none.
func testNames(t *testing.T, dir string) []string {
	files, err := filepath.Glob(filepath.Join("../..", dir, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range testFunc.FindAllStringSubmatch(string(b), -1) {
			names = append(names, m[1])
		}
	}
	return names
}

// checkGoTest checks one documented `go test` command: its packages exist
// and have tests, and each of its -run, -bench and -fuzz patterns selects
// at least one function of theirs (of the kind the flag runs, matched as go
// test matches the pattern's first /-separated part).
func checkGoTest(t *testing.T, args []string) (problems []string) {
	var pkgs []string
	patterns := map[string]string{} // flag → pattern
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(args[i], "-")
		name, val, hasVal := strings.Cut(a, "=")
		switch {
		case strings.HasPrefix(args[i], "./") || args[i] == ".":
			pkgs = append(pkgs, args[i])
		case name == "run" || name == "bench" || name == "fuzz":
			if !hasVal && i+1 < len(args) {
				i++
				val = args[i]
			}
			patterns[name] = val
		}
	}
	var names []string
	for _, p := range pkgs {
		dir := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(p, "..."), "/"), "/")
		if strings.HasSuffix(p, "...") {
			return nil // a tree of packages: nothing to pin down
		}
		if fi, err := os.Stat(filepath.Join("../..", dir)); err != nil || !fi.IsDir() {
			problems = append(problems, "no package "+p)
			continue
		}
		n := testNames(t, dir)
		if len(n) == 0 {
			problems = append(problems, "package "+p+" has no tests")
		}
		names = append(names, n...)
	}
	if len(pkgs) == 0 {
		return problems // the package is written elsewhere in the text
	}
	kinds := map[string]string{"run": "Test", "bench": "Benchmark", "fuzz": "Fuzz"}
	for flag, pat := range patterns {
		first := strings.SplitN(pat, "/", 2)[0]
		if flag == "run" && (pat == "^$" || strings.EqualFold(pat, "XXX") || pat == "none") {
			continue
		}
		re, err := regexp.Compile(first)
		if err != nil {
			problems = append(problems, fmt.Sprintf("-%s %q is not a valid pattern: %v", flag, pat, err))
			continue
		}
		found := false
		for _, n := range names {
			// -run matches every kind of test function's name in go test,
			// but a doc that says -run means a Test (or an Example).
			if strings.HasPrefix(n, kinds[flag]) && re.MatchString(n) {
				found = true
				break
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("-%s %q selects no %s function in %s", flag, pat, kinds[flag], strings.Join(pkgs, " ")))
		}
	}
	return problems
}

// TestDocsGoTestCommands: every `go test` command written in README.md
// and docs/*.md names packages that exist, and its -run, -bench and -fuzz
// patterns each select a test, benchmark or fuzz target there, so a
// renamed benchmark or a moved package does not leave a figure whose
// command no longer runs.
func TestDocsGoTestCommands(t *testing.T) {
	n := 0
	for name, text := range docFiles(t) {
		for _, dc := range docCommandsOf(name, text, goTest) {
			n++
			for _, p := range checkGoTest(t, dc.args) {
				t.Errorf("%s: `go test %s`: %s", dc.where, strings.Join(dc.args, " "), p)
			}
		}
	}
	if n < 30 {
		t.Fatalf("found only %d go test commands in the docs; the parser has lost them", n)
	}
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^()\s]+)\)`)
	mdHeading = regexp.MustCompile("(?m)^#{1,6} +(.+?) *$")
	notAnchor = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
)

// anchors returns the anchors GitHub makes for a markdown text's headings:
// lower case, punctuation dropped, spaces as hyphens, a repeat numbered.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	prose := fence.Split(text, -1)
	for i := 0; i < len(prose); i += 2 { // outside code blocks
		for _, m := range mdHeading.FindAllStringSubmatch(prose[i], -1) {
			a := strings.ReplaceAll(notAnchor.ReplaceAllString(strings.ToLower(m[1]), ""), " ", "-")
			for n, b := 1, a; ; n++ {
				if !out[b] {
					out[b] = true
					break
				}
				b = a + "-" + strconv.Itoa(n)
			}
		}
	}
	return out
}

// TestDocsLinks: every relative link in README.md and docs/*.md reaches a
// file of the repository, and a #fragment a heading of the page it links
// to; README.md links every page of docs/.
func TestDocsLinks(t *testing.T) {
	docs := docFiles(t)
	for name, text := range docs {
		prose := strings.Join(func() []string {
			parts := fence.Split(text, -1)
			var out []string
			for i := 0; i < len(parts); i += 2 {
				out = append(out, parts[i])
			}
			return out
		}(), "\n")
		for _, m := range mdLink.FindAllStringSubmatch(prose, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			page := name
			if file != "" {
				page = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(name), file)))
				if _, err := os.Stat(filepath.Join("../..", page)); err != nil {
					t.Errorf("%s: link %s: no file %s", name, target, page)
					continue
				}
			}
			if frag == "" {
				continue
			}
			linked, ok := docs[page]
			if !ok {
				continue // a page outside README.md and docs/
			}
			if !anchors(linked)[frag] {
				t.Errorf("%s: link %s: %s has no heading whose anchor is #%s", name, target, page, frag)
			}
		}
	}
	for name := range docs {
		if name != "README.md" && !strings.Contains(docs["README.md"], "]("+name+")") {
			t.Errorf("README.md does not link %s", name)
		}
	}
}

var (
	ruleRoute = regexp.MustCompile(`(?m)^\s*"((?:GET|POST|PUT|DELETE|PATCH) /api/v1/[^"]*)":`)
	docRoute  = regexp.MustCompile("`((?:GET|POST|PUT|DELETE|PATCH) /[^`\\s?]*)")
	pathParam = regexp.MustCompile(`\{[^}]*\}|/[A-Z][A-Z_]*\b`) // {name} or NAME
)

// TestDocsRoutes: the REST routes the docs name are the server's, and the
// server has none the docs leave out. The server's routes are the keys of
// web's authorisation table (web/security.go), which has one rule for
// every route it registers. The consumer-group routes are written in
// docs/clients.md relative to their prefix, as /{group}/...
func TestDocsRoutes(t *testing.T) {
	src, err := os.ReadFile("../../web/security.go")
	if err != nil {
		t.Fatal(err)
	}
	norm := func(r string) string {
		return strings.TrimSuffix(pathParam.ReplaceAllStringFunc(r, func(p string) string {
			if strings.HasPrefix(p, "/") {
				return "/{}"
			}
			return "{}"
		}), "/")
	}
	served := map[string]string{}
	for _, m := range ruleRoute.FindAllStringSubmatch(string(src), -1) {
		served[norm(m[1])] = m[1]
	}
	if len(served) < 20 {
		t.Fatalf("found %d routes in web/security.go's rules; the pattern has lost them", len(served))
	}
	documented := map[string]bool{}
	for name, text := range docFiles(t) {
		for _, m := range docRoute.FindAllStringSubmatchIndex(text, -1) {
			r := text[m[2]:m[3]]
			if method, path, _ := strings.Cut(r, " "); strings.HasPrefix(path, "/{group}") {
				r = method + " /api/v1/streams/{name}/consumer-groups" + path
			}
			r = norm(r)
			documented[r] = true
			if _, ok := served[r]; !ok && strings.Contains(r, " /api/") {
				t.Errorf("%s:%d: %s is not a route of the server", name, strings.Count(text[:m[0]], "\n")+1, text[m[2]:m[3]])
			}
		}
	}
	for n, r := range served {
		if !documented[n] {
			t.Errorf("the server serves %s, which no doc names", r)
		}
	}
}

var (
	docMetric = regexp.MustCompile(`\brunnel_[a-z0-9_]*[a-z0-9]\b`)
	goString  = regexp.MustCompile(`"([a-z0-9_]+)"`)
)

// TestDocsNamesExist: every runnel_* name the docs write — metrics, and
// the tables, cookies and fields named the same way — is spelled in the
// code, whole or as a prefix the code joins a name to
// ("runnel_producer_" + "records_sent_total").
func TestDocsNamesExist(t *testing.T) {
	strs := map[string]bool{}
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range goString.FindAllStringSubmatch(string(b), -1) {
			strs[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	spelled := func(n string) bool {
		if strs[n] {
			return true
		}
		for i := len("runnel_"); i < len(n); i++ {
			if n[i-1] == '_' && strs[n[:i]] && strs[n[i:]] {
				return true
			}
		}
		return false
	}
	checked := 0
	for name, text := range docFiles(t) {
		for _, m := range docMetric.FindAllStringIndex(text, -1) {
			n := text[m[0]:m[1]]
			if m[1] < len(text) && text[m[1]] == '*' {
				continue // a family (runnel_store_max_*)
			}
			checked++
			if !spelled(n) {
				t.Errorf("%s:%d: %s is spelled nowhere in the code", name, strings.Count(text[:m[0]], "\n")+1, n)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("found only %d runnel_* names in the docs", checked)
	}
}

var (
	errorStatusEntry = regexp.MustCompile(`(?m)^\s*"([a-z_]+)":\s*http\.Status(\w+),`)
	errorCodeRow     = regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([0-9]{3}) \\|")
)

// TestDocsErrorCodes: the error codes in docs/api.md's table are the REST
// API's (web/errors.go's errorStatus), with their HTTP status.
func TestDocsErrorCodes(t *testing.T) {
	src, err := os.ReadFile("../../web/errors.go")
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, m := range errorStatusEntry.FindAllStringSubmatch(string(src), -1) {
		status[m[1]] = m[2]
	}
	if len(status) < 10 {
		t.Fatalf("found %d codes in web/errors.go; the pattern has lost them", len(status))
	}
	doc := docFiles(t)["docs/api.md"]
	rows := errorCodeRow.FindAllStringSubmatch(doc, -1)
	if len(rows) < 10 {
		t.Fatalf("found %d error codes in docs/api.md's table", len(rows))
	}
	for _, m := range rows {
		code, want := m[1], m[2]
		name, ok := status[code]
		if !ok {
			t.Errorf("docs/api.md lists error code %s, which the API does not have", code)
			continue
		}
		if httpStatus[name] == 0 {
			t.Errorf("web/errors.go answers %s with http.Status%s, which this test cannot number; add it to httpStatus", code, name)
			continue
		}
		if got := strconv.Itoa(httpStatus[name]); got != want {
			t.Errorf("docs/api.md gives %s status %s; the API answers %s (http.Status%s)", code, want, got, name)
		}
	}
}

// httpStatus maps the net/http constant names errorStatus uses to codes.
var httpStatus = map[string]int{
	"BadRequest": 400, "Unauthorized": 401, "Forbidden": 403, "NotFound": 404,
	"NotAcceptable": 406, "Conflict": 409, "RequestEntityTooLarge": 413,
	"UnsupportedMediaType": 415, "MisdirectedRequest": 421, "TooManyRequests": 429,
	"InternalServerError": 500, "ServiceUnavailable": 503,
}
