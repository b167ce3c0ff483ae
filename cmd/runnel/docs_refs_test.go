package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The docs spell `runnel ...` command lines in code blocks and in inline
// code; the tests here check each against the binary's own --help, so a
// renamed or removed flag or subcommand fails the build instead of a
// reader's paste.

// docCommand is one command line written in a doc.
type docCommand struct {
	where string   // file:line
	args  []string // the words after the program's name
}

// docFiles are the markdown files whose commands are checked.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, "../../README.md")
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel("../..", p)
		out[rel] = string(b)
	}
	return out
}

// shellWords splits a command line as sh would into words, keeping quoted
// strings whole (without their quotes) and dropping a # comment. A word
// that is a control operator (|, ||, &&, ;) is kept as a word of its own.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			flush()
		case c == '#' && !inWord:
			flush()
			return words
		case c == '\'' || c == '"':
			inWord = true
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				w.WriteString(s[i+1:])
				i = len(s)
				break
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '\\' && i+1 < len(s):
			inWord = true
			w.WriteByte(s[i+1])
			i++
		case c == ';' || c == '|' || c == '&':
			// An operator only when it stands alone (a | b, a && b, a;),
			// not inside a word (--role admin|writer|reader).
			if !inWord || i+1 == len(s) || s[i+1] == ' ' {
				if inWord && c == ';' {
					flush()
				}
				if !inWord {
					j := i
					for j < len(s) && (s[j] == c) {
						j++
					}
					words = append(words, s[i:j])
					i = j - 1
					continue
				}
			}
			inWord = true
			w.WriteByte(c)
		default:
			inWord = true
			w.WriteByte(c)
		}
	}
	flush()
	return words
}

var envAssign = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)

// simpleCommands splits a line's words into its simple commands (between
// |, &&, || and ;), each without a leading `time`, `$` prompt or
// VAR=value.
func simpleCommands(words []string) [][]string {
	var out [][]string
	var seg []string
	end := func() {
		for len(seg) > 0 && (seg[0] == "$" || seg[0] == "time" || envAssign.MatchString(seg[0])) {
			seg = seg[1:]
		}
		if len(seg) > 0 {
			out = append(out, seg)
		}
		seg = nil
	}
	depth := 0 // inside [...] or (...) of a synopsis, | means "or"
	for _, w := range words {
		switch {
		case depth == 0 && (w == "|" || w == "||" || w == "&&" || w == ";" || w == "&"):
			end()
		default:
			seg = append(seg, w)
			depth += strings.Count(w, "[") + strings.Count(w, "(") - strings.Count(w, "]") - strings.Count(w, ")")
			depth = max(depth, 0)
		}
	}
	end()
	return out
}

// runnel picks the runnel commands, whose program is runnel or a path
// ending in /runnel, and returns the words after it.
func runnel(seg []string) ([]string, bool) {
	if len(seg) > 1 && (seg[0] == "runnel" || strings.HasSuffix(seg[0], "/runnel")) {
		return seg[1:], true
	}
	return nil, false
}

var fence = regexp.MustCompile("(?m)^ *```")

// codeSpans returns the inline code spans of markdown prose as CommonMark
// reads them: a run of n backticks opens a span that the next run of
// exactly n closes, so a span opened by two backticks may hold one. Each
// is [start, end) of its text.
func codeSpans(p string) [][2]int {
	var out [][2]int
	run := func(i int) int {
		j := i
		for j < len(p) && p[j] == '`' {
			j++
		}
		return j - i
	}
	for i := 0; i < len(p); {
		if p[i] != '`' {
			i++
			continue
		}
		n := run(i)
		closed := false
		for j := i + n; j < len(p); {
			if p[j] != '`' {
				j++
				continue
			}
			m := run(j)
			if m == n {
				out = append(out, [2]int{i + n, j})
				i, closed = j+m, true
				break
			}
			j += m
		}
		if !closed {
			i += n
		}
	}
	return out
}

// docCommandsIn returns the runnel commands of a markdown text: those of
// every line of its fenced code blocks (a line ending in \ continues on
// the next) and of every inline code span (a span may wrap across lines).
func docCommandsIn(name, text string) []docCommand { return docCommandsOf(name, text, runnel) }

// docCommandsOf is docCommandsIn for the commands pick picks.
func docCommandsOf(name, text string, pick func(seg []string) ([]string, bool)) []docCommand {
	var out []docCommand
	lines := strings.Split(text, "\n")
	inBlock := false
	var prose strings.Builder // the text outside code blocks, blocks blanked
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if fence.MatchString(l) {
			inBlock = !inBlock
			prose.WriteString("\n")
			continue
		}
		if !inBlock {
			prose.WriteString(l + "\n")
			continue
		}
		prose.WriteString("\n")
		start := i
		for strings.HasSuffix(l, `\`) && i+1 < len(lines) {
			i++
			prose.WriteString("\n")
			l = strings.TrimSuffix(l, `\`) + " " + lines[i]
		}
		for _, seg := range simpleCommands(shellWords(l)) {
			if c, ok := pick(seg); ok {
				out = append(out, docCommand{where: name + ":" + strconv.Itoa(start+1), args: c})
			}
		}
	}
	p := prose.String()
	for _, m := range codeSpans(p) {
		span := strings.TrimSpace(p[m[0]:m[1]])
		line := strings.Count(p[:m[0]], "\n") + 1
		// In a table, \| is a | of the cell's text.
		span = strings.ReplaceAll(span, `\|`, "|")
		for _, seg := range simpleCommands(shellWords(strings.ReplaceAll(span, "\n", " "))) {
			if c, ok := pick(seg); ok {
				out = append(out, docCommand{where: name + ":" + strconv.Itoa(line), args: c})
			}
		}
	}
	return out
}

// cliHelp is what `runnel ARGS --help` says: the flags it defines, and
// the subcommands it lists when it defines none (runnel jobs, streams...).
type cliHelp struct {
	ok    bool // exited 0 with a Usage line
	flags map[string]bool
	text  string
}

// helpCache runs `runnel PATH --help` once per command path.
type helpCache struct {
	bin string
	m   map[string]*cliHelp
}

var helpFlag = regexp.MustCompile(`^  -([a-zA-Z0-9][\w-]*)`)

func (c *helpCache) get(path ...string) *cliHelp {
	key := strings.Join(path, " ")
	if h, ok := c.m[key]; ok {
		return h
	}
	cmd := exec.Command(c.bin, append(path, "--help")...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	h := &cliHelp{text: o.String() + e.String(), flags: map[string]bool{"help": true, "h": true}}
	// Help that was asked for goes to stdout, and nothing to stderr.
	h.ok = err == nil && strings.HasPrefix(h.text, "Usage: runnel ") && e.Len() == 0
	if _, after, found := strings.Cut(h.text, "\nFlags:\n"); found {
		for _, l := range strings.Split(after, "\n") {
			if m := helpFlag.FindStringSubmatch(l); m != nil {
				h.flags[m[1]] = true
			}
		}
	}
	c.m[key] = h
	return h
}

// hasFlags says whether the command defines flags of its own (else it is a
// group of subcommands).
func (h *cliHelp) hasFlags() bool { return strings.Contains(h.text, "\nFlags:\n") }

// flagName returns the flag a word names (--max-conns=5 → max-conns), or
// "" when the word is not a flag (-, a negative number, a value).
var flagWord = regexp.MustCompile(`^[\[(]*--?([a-z][a-z0-9-]*)(=.*|[\]),.:;]*)$`)

func flagName(w string) string {
	if m := flagWord.FindStringSubmatch(w); m != nil {
		return m[1]
	}
	return ""
}

// checkCommand checks one documented command: the command (and for a group
// such as jobs, the subcommand) exists, and each flag it spells is one that
// command defines. It returns the command path it resolved (runnel serve,
// runnel jobs submit) and its problems.
func checkCommand(c *helpCache, args []string) (path []string, problems []string) {
	top := c.get()
	if len(args) == 0 {
		return nil, nil
	}
	cmd := args[0]
	if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(cmd) + ` `).MatchString(top.text) {
		return nil, []string{"runnel has no command " + cmd}
	}
	path = []string{cmd}
	rest := args[1:]
	h := c.get(cmd)
	var alts []*cliHelp
	if !h.hasFlags() {
		// A group: the next word names the subcommand (create|list names
		// several), or there is none (`runnel jobs` in prose).
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") || strings.HasPrefix(rest[0], "<") {
			return path, nil // no subcommand, or a placeholder for one
		}
		for _, sub := range strings.Split(rest[0], "|") {
			sh := c.get(cmd, sub)
			if !sh.ok {
				problems = append(problems, "runnel "+cmd+" has no subcommand "+sub)
				continue
			}
			alts = append(alts, sh)
		}
		path = append(path, rest[0])
		rest = rest[1:]
	} else {
		alts = []*cliHelp{h}
	}
	for i := 0; i < len(rest); i++ {
		name := flagName(rest[i])
		if name == "" {
			continue
		}
		for _, a := range alts {
			if !a.flags[name] {
				problems = append(problems, "runnel "+strings.Join(path, " ")+" has no flag --"+name)
			}
		}
		// bench overload passes --serve-flags on to runnel serve.
		if name == "serve-flags" && i+1 < len(rest) {
			_, p := checkCommand(c, append([]string{"serve"}, shellWords(rest[i+1])...))
			problems = append(problems, p...)
			i++
		}
	}
	return path, problems
}

// TestDocsCommandFlags: every runnel command line written in README.md and
// docs/*.md — in code blocks and in inline code — names a command and
// subcommand the binary has, and only flags that subcommand's --help lists.
func TestDocsCommandFlags(t *testing.T) {
	c := &helpCache{bin: runnelBinary(t), m: map[string]*cliHelp{}}
	if top := c.get(); !strings.Contains(top.text, "Commands:") {
		t.Fatalf("runnel --help lists no commands:\n%s", top.text)
	}
	n := 0
	for name, text := range docFiles(t) {
		for _, dc := range docCommandsIn(name, text) {
			n++
			_, problems := checkCommand(c, dc.args)
			for _, p := range problems {
				t.Errorf("%s: `runnel %s`: %s", dc.where, strings.Join(dc.args, " "), p)
			}
		}
	}
	if n < 100 {
		t.Fatalf("found only %d runnel commands in the docs; the parser has lost them", n)
	}
	t.Logf("checked %d documented runnel commands", n)
}

// TestDocsFlagTables: a doc table whose first column is "flag" lists the
// flags of the runnel command named last before it (`runnel serve` in
// operations.md, `runnel worker --help` in scale-out.md): each flag in the
// table exists, and each flag of the command is in the table.
func TestDocsFlagTables(t *testing.T) {
	c := &helpCache{bin: runnelBinary(t), m: map[string]*cliHelp{}}
	tables := 0
	for name, text := range docFiles(t) {
		lines := strings.Split(text, "\n")
		for i, l := range lines {
			if !strings.HasPrefix(l, "| flag |") {
				continue
			}
			tables++
			// The command this table documents: the last runnel command
			// written before it.
			var path []string
			for _, dc := range docCommandsIn(name, strings.Join(lines[:i], "\n")) {
				path, _ = checkCommand(c, dc.args)
			}
			if len(path) == 0 {
				t.Errorf("%s:%d: a flag table with no runnel command written before it", name, i+1)
				continue
			}
			h := c.get(path...)
			listed := map[string]bool{}
			for j := i + 2; j < len(lines) && strings.HasPrefix(lines[j], "|"); j++ {
				cells := strings.Split(strings.ReplaceAll(lines[j], `\|`, "/"), "|")
				for _, m := range codeSpans(cells[1]) {
					code := cells[1][m[0]:m[1]]
					f := flagName(strings.Fields(code + " ")[0])
					if f == "" {
						t.Errorf("%s:%d: first cell %q is not a flag", name, j+1, code)
						continue
					}
					listed[f] = true
					if !h.flags[f] {
						t.Errorf("%s:%d: runnel %s has no flag --%s", name, j+1, strings.Join(path, " "), f)
					}
				}
				// A row may name a companion flag in its meaning
				// (--pyroscope-upload beside --pyroscope-url).
				meaning := strings.Join(cells[2:], "|")
				for _, m := range codeSpans(meaning) {
					if f := flagName(strings.Fields(meaning[m[0]:m[1]] + " ")[0]); f != "" && h.flags[f] {
						listed[f] = true
					}
				}
			}
			for f := range h.flags {
				if !listed[f] && f != "help" && f != "h" {
					t.Errorf("%s:%d: the table of runnel %s does not list its flag --%s", name, i+1, strings.Join(path, " "), f)
				}
			}
		}
	}
	if tables == 0 {
		t.Fatal("found no flag tables in the docs")
	}
}

// The parser finds commands where a reader would paste them, and only there.
func TestDocCommandsIn(t *testing.T) {
	doc := "Run `runnel jobs\nstop --savepoint ID` or `--addr` alone.\n\n" +
		"```sh\n" +
		"printf 'a\\n' | runnel put s --key-field user   # a comment --nope\n" +
		"RUNNEL_X=1 time bin/runnel bench overload --serve-flags \"--memory 1GiB\" && runnel tail s\n" +
		"runnel worker --cluster kafka://b:9092 \\\n  --job j.yaml\n" +
		"dsn: \"host=db user=runnel dbname=runnel\"\n" +
		"keytool -alias runnel -keystore x\n" +
		"```\n" +
		"Or `runnel put STREAM [--key K | --key-field F]`, ``runnel tail `s` ``.\n" +
		"| `runnel tokens create NAME --role admin\\|reader` | x |\n"
	var got []string
	for _, c := range docCommandsIn("d.md", doc) {
		got = append(got, c.where+" "+strings.Join(c.args, " "))
	}
	want := []string{
		"d.md:5 put s --key-field user",
		"d.md:6 bench overload --serve-flags --memory 1GiB",
		"d.md:6 tail s",
		"d.md:7 worker --cluster kafka://b:9092 --job j.yaml",
		"d.md:1 jobs stop --savepoint ID",
		"d.md:12 put STREAM [--key K | --key-field F]",
		"d.md:12 tail `s`",
		"d.md:13 tokens create NAME --role admin|reader",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for w, want := range map[string]string{"--max-conns=5": "max-conns", "[--json]": "json", "-v": "v", "-": "", "-1": "", "(--checkpoint": "checkpoint", "--streams,": "streams"} {
		if got := flagName(w); got != want {
			t.Errorf("flagName(%q) = %q, want %q", w, got, want)
		}
	}
}

var (
	helpFlagRef   = regexp.MustCompile(`(?:^|[\s(\[|,'"])--?([a-z][a-z0-9-]*)`)
	helpCommandRe = regexp.MustCompile("['`]runnel ([^'`]+)['`]")
	helpSubLine   = regexp.MustCompile(`^  ([a-z][a-z-]*)\b`)
)

// helpFlagsIn returns the flags a help text names (--name or -name),
// after checking and removing the runnel commands it quotes ('runnel
// tokens create NAME --role admin'), which name other commands' flags.
func helpFlagsIn(c *helpCache, text string) (flags []string, problems []string) {
	for _, m := range helpCommandRe.FindAllStringSubmatch(text, -1) {
		_, p := checkCommand(c, shellWords(m[1]))
		problems = append(problems, p...)
	}
	text = helpCommandRe.ReplaceAllString(text, "")
	for _, m := range helpFlagRef.FindAllStringSubmatch(text, -1) {
		flags = append(flags, m[1])
	}
	return flags, problems
}

// TestHelpFlagsExist: what `runnel ... --help` says is true of the binary.
// Every flag a command's help names (synopsis, description, the flags'
// own texts) is one the command defines, or one of runnel serve's; every
// subcommand a group lists
// (runnel jobs, bench, ...) has its own --help, and the flags the group's
// list gives it are its own; every runnel command a help quotes checks
// as the docs' commands do.
func TestHelpFlagsExist(t *testing.T) {
	c := &helpCache{bin: runnelBinary(t), m: map[string]*cliHelp{}}
	_, cmds, _ := strings.Cut(c.get().text, "\nCommands:\n")
	cmds, _, _ = strings.Cut(cmds, "\n\n")
	checked := 0
	// A help may speak of the server's flags (--auth, --fsync, --memory),
	// which every command talking to a server meets.
	serve := c.get("serve")
	check := func(what string, text string, defined func(string) bool) {
		flags, problems := helpFlagsIn(c, text)
		for _, p := range problems {
			t.Errorf("%s --help quotes a command that does not check: %s", what, p)
		}
		for _, f := range flags {
			checked++
			if !defined(f) && !serve.flags[f] {
				t.Errorf("%s --help names --%s, which it does not define", what, f)
			}
		}
	}
	for _, l := range strings.Split(cmds, "\n") {
		cmd := strings.Fields(l)[0]
		h := c.get(cmd)
		if !h.ok {
			t.Errorf("runnel %s --help: exit or output unlike a help:\n%s", cmd, h.text)
			continue
		}
		if h.hasFlags() {
			check("runnel "+cmd, h.text, func(f string) bool { return h.flags[f] })
			continue
		}
		// A group: its list of subcommands, each with its lines.
		var subs []string
		lines := map[string]string{}
		rest := h.text
		cur := ""
		inList := false
		for _, l := range strings.Split(h.text, "\n") {
			switch {
			case l == "Subcommands:" || l == "Benchmarks:":
				inList = true
			case inList && l == "":
				inList, cur = false, ""
			case inList && helpSubLine.MatchString(l):
				cur = helpSubLine.FindStringSubmatch(l)[1]
				subs = append(subs, cur)
				lines[cur] += l + "\n"
				rest = strings.Replace(rest, l+"\n", "", 1)
			case inList && cur != "":
				lines[cur] += l + "\n"
				rest = strings.Replace(rest, l+"\n", "", 1)
			}
		}
		if len(subs) == 0 {
			t.Errorf("runnel %s --help has no Flags and lists no subcommands:\n%s", cmd, h.text)
			continue
		}
		helps := map[string]*cliHelp{}
		for _, sub := range subs {
			sh := c.get(cmd, sub)
			if !sh.ok {
				t.Errorf("runnel %s --help lists %s, whose --help fails:\n%s", cmd, sub, sh.text)
				continue
			}
			helps[sub] = sh
			check("runnel "+cmd+" (its line for "+sub+")", lines[sub], func(f string) bool { return sh.flags[f] })
			check("runnel "+cmd+" "+sub, sh.text, func(f string) bool { return sh.flags[f] })
		}
		// The group's own text speaks of its subcommands' flags.
		check("runnel "+cmd, rest, func(f string) bool {
			for _, sh := range helps {
				if sh.flags[f] {
					return true
				}
			}
			return false
		})
	}
	if checked < 100 {
		t.Fatalf("found only %d flags named in the help texts; the parser has lost them", checked)
	}
}
