package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

var (
	wordRE = regexp.MustCompile(`[\pL\pN_']+`)
	flagRE = regexp.MustCompile(`--[\w-]+`)
	timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
)

// repeated returns what msg says twice ("" when nothing): a word right
// after itself ("source source", "jobs: jobs:"), or a pair of words that
// comes again later ("line 8: line 8:", `operator evil: … operator "evil"`).
// A flag's name (--files-root) names a flag, and a time (12:59:59) a
// moment, not things said.
func repeated(msg string) string {
	msg = timeRE.ReplaceAllString(flagRE.ReplaceAllString(msg, ""), "")
	words := wordRE.FindAllString(strings.ToLower(msg), -1)
	pairs := map[string]bool{}
	for i, w := range words {
		if i > 0 && w == words[i-1] {
			return w + " " + w
		}
		if i+1 < len(words) {
			p := w + " " + words[i+1]
			if pairs[p] {
				return p
			}
			pairs[p] = true
		}
	}
	return ""
}

func TestRepeated(t *testing.T) {
	for msg, want := range map[string]string{
		`line 8: line 8: did not find expected key`:                                            "line 8",
		`jobs: jobs: job not found`:                                                            "jobs jobs",
		`source source: event time of source/clicks.jsonl@1`:                                   "source source",
		`operator evil: job "bomb" operator "evil" record source/clicks.jsonl@1: boom`:         "operator evil",
		`job "bomb" operator "evil" record source/clicks.jsonl@1: Error: boom (line 1 col 14)`: "",
		`line 9: operators[0].window.tumbling: "10x" is not a duration (e.g. 10s, 1m)`:         "",
		`2026-12-06T19:59:59.159Z  read record source/garbage.jsonl at line 1`:                 "",
	} {
		if got := repeated(msg); got != want {
			t.Errorf("repeated(%q) = %q, want %q", msg, got, want)
		}
	}
}

// TestFailureMessagesSayEachThingOnce walks the ways a user's job fails —
// a YAML mistake, a bad field, a JS exception, a JS bomb, an event-time
// function that throws, a missing event time, a record that is not JSON,
// a sink that cannot open its file, an operator failing at a watermark —
// and the CLI's refusals, through the real binary, and fails when a message
// says the same thing twice.
func TestFailureMessagesSayEachThingOnce(t *testing.T) {
	bin := runnelBinary(t)
	data := t.TempDir()
	files := filepath.Join(data, "files")
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(files, "clicks.jsonl"), []byte(`{"ts":1000,"page":"/a","user":"u1"}`+"\n"+`{"ts":2000,"page":"/b","user":"u2"}`+"\n"+`{"ts":30000,"page":"/a","user":"u3"}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(files, "nots.jsonl"), []byte(`{"page":"/a"}`+"\n"), 0o644)
	os.WriteFile(filepath.Join(files, "garbage.jsonl"), []byte("not json\n"), 0o644)
	srv := testbin.Start(t, testbin.Options{Data: data})
	cli := func(args ...string) string {
		o, _ := srv.CLI(args...)
		return strings.TrimSpace(o)
	}
	dir := t.TempDir()
	job := func(name, source, ops, sinks string) string {
		if sinks == "" {
			sinks = "  - {id: out, log: {}}\n"
		}
		p := filepath.Join(dir, name+".yaml")
		os.WriteFile(p, []byte("name: "+name+"\nsource:\n"+source+"operators:\n"+ops+"sinks:\n"+sinks), 0o644)
		return p
	}
	clicks := "  file: clicks.jsonl\n  event_time: \"r => r.ts\"\n"
	window := "  - id: w\n    window:\n      key: \"r => r.page\"\n      tumbling: 10s\n      aggregate:\n        views: count\n"

	type said struct{ what, msg string }
	var msgs []said
	// Refused at submit: the message is the CLI's output.
	for name, file := range map[string]string{
		"badyaml":  job("badyaml", clicks, window+"     p95_ms: p95(ms)\n", ""),
		"duration": job("duration", clicks, strings.Replace(window, "10s", "10x", 1), ""),
		"sinkdir":  job("sinkdir", clicks, "  - id: m\n    map: \"r => r\"\n", "  - {id: out, file: {path: nodir/out.jsonl}}\n"),
		"sinkout":  job("sinkout", clicks, "  - id: m\n    map: \"r => r\"\n", "  - {id: out, file: {path: /etc/result.jsonl}}\n"),
	} {
		o := cli("jobs", "submit", file)
		if !strings.Contains(o, "line ") {
			t.Errorf("%s: submit was not refused with a line: %s", name, o)
		}
		msgs = append(msgs, said{"submit " + name, o})
	}
	// Failing while running: the message is the job's reason and its
	// error history.
	failing := map[string]string{
		"throw":     job("throw", clicks, "  - id: evil\n    map: \"r => { throw new Error('boom') }\"\n", ""),
		"bomb":      job("bomb", clicks, "  - id: evil\n    map: \"r => { const k = []; for (let i = 0; i < 200; i++) k.push('x'.repeat(1 << 20) + i); return {n: k.length} }\"\n", ""),
		"range":     job("range", clicks, "  - id: evil\n    map: \"r => ({s: 'x'.repeat(1 << 25)})\"\n", ""),
		"etthrow":   job("etthrow", "  file: clicks.jsonl\n  event_time: \"r => { throw new Error('bad ts') }\"\n", "  - id: m\n    map: \"r => r\"\n", ""),
		"notime":    job("notime", "  file: nots.jsonl\n  event_time: \"r => r.ts\"\n", "  - id: m\n    map: \"r => r\"\n", ""),
		"garbage":   job("garbage", "  file: garbage.jsonl\n  event_time: \"r => r.ts\"\n", "  - id: m\n    map: \"r => r\"\n", ""),
		"watermark": job("watermark", clicks, window+"  - id: late\n    map: \"r => { throw new TypeError('late boom') }\"\n", ""),
	}
	for name, file := range failing {
		if o := cli("jobs", "submit", file); o != name {
			t.Fatalf("submit %s: %s", name, o)
		}
	}
	for name := range failing {
		var st struct{ State, Reason string }
		testutil.Within(60*time.Second, func() bool {
			code, body := srv.Do("GET", "/api/v1/jobs/"+name, "", "")
			return code == 200 && json.Unmarshal(body, &st) == nil && st.State == "failed"
		})
		if st.Reason == "" {
			t.Errorf("%s failed without a reason", name)
		}
		msgs = append(msgs, said{name + " reason", st.Reason},
			said{name + " in jobs list", lineOf(cli("jobs", "list"), name)},
			said{name + " errors", cli("jobs", "errors", name)})
	}
	// The CLI's refusals.
	if o := cli("jobs", "submit", failing["throw"]); !strings.Contains(o, "exists") {
		t.Errorf("resubmit of a failed job: %s", o)
	}
	msgs = append(msgs, said{"resubmit failed", cli("jobs", "submit", failing["throw"])})
	gen := filepath.Join(dir, "gen.yaml")
	os.WriteFile(gen, []byte("name: gen\nsource:\n  generator: {rate: 10}\nsinks:\n  - {id: board, dashboard: {}}\n"), 0o644)
	if o := cli("jobs", "submit", gen); o != "gen" {
		t.Fatalf("submit gen: %s", o)
	}
	for _, args := range [][]string{
		{"jobs", "submit", gen}, {"jobs", "resume", "gen"}, {"jobs", "delete", "gen"},
		{"jobs", "restart", "gen", "--checkpoint", "1"}, {"jobs", "get", "nosuch"}, {"jobs", "stop", "nosuch"},
		{"jobs", "output", "gen", "--sink", "nosuch"}, {"jobs", "output", "nosuch"},
	} {
		msgs = append(msgs, said{strings.Join(args, " "), cli(args...)})
	}
	code, body := srv.Do("GET", "/api/v1/jobs/gen/results?sink=nosuch", "", "")
	msgs = append(msgs, said{"results of no such sink", string(body)})
	if code != 404 {
		t.Errorf("results of no such sink: %d %s", code, body)
	}
	// runnel run says the same as the server.
	o, _ := exec.Command(bin, "run", job("runyaml", "  file: "+filepath.Join(files, "clicks.jsonl")+"\n", window+"     p95_ms: p95(ms)\n", "")).CombinedOutput()
	msgs = append(msgs, said{"run yaml", string(o)})
	o, _ = exec.Command(bin, "run", job("runthrow", "  file: "+filepath.Join(files, "clicks.jsonl")+"\n  event_time: \"r => r.ts\"\n",
		"  - id: evil\n    map: \"r => { throw new Error('boom') }\"\n", "")).CombinedOutput()
	msgs = append(msgs, said{"run throw", string(o)})

	for _, m := range msgs {
		// Paths in the test's temporary directories repeat words of
		// their own.
		msg := strings.NewReplacer(files, "FILES", dir, "DIR").Replace(m.msg)
		// The command's name leads its errors, which may name another
		// command as a way out.
		msg = strings.TrimPrefix(strings.TrimPrefix(msg, "runnel jobs: "), "runnel run: ")
		if m.msg == "" {
			t.Errorf("%s: no message", m.what)
		} else if r := repeated(msg); r != "" {
			t.Errorf("%s says %q twice:\n%s", m.what, r, msg)
		} else {
			t.Logf("%s: %s", m.what, msg)
		}
	}
}

// lineOf is the line of a table that starts with id.
func lineOf(table, id string) string {
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, id+" ") {
			return l
		}
	}
	return ""
}
