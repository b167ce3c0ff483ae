package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/client/internal/testserver"
	"github.com/runnel-dev/runnel/internal/testutil"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type env struct {
	t   *testing.T
	srv *testserver.Server
	dir string
}

func newEnv(t *testing.T, streams ...string) *env {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	e := &env{t: t, srv: testserver.Start(t), dir: t.TempDir()}
	for _, s := range streams {
		e.srv.CreateStream(s, 2)
	}
	return e
}

func (e *env) config(flows ...Flow) *Config {
	c := &Config{Server: e.srv.URL, Checkpoint: filepath.Join(e.dir, "checkpoints.json"), Host: "h1",
		ScanInterval: Duration(20 * time.Millisecond), RotateWait: Duration(300 * time.Millisecond),
		Linger: Duration(5 * time.Millisecond), Flows: flows}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// appLog is the configuration of one flow: the JSON lines of app.log into
// stream.
func (e *env) appLog(stream string) *Config {
	return e.config(Flow{Files: e.path("app.log"), Stream: stream, Format: "json"})
}

// followAppLog runs the agent on app.log into stream until the test ends,
// and writes the lines a0 to a99 to the file and waits for them.
func (e *env) followAppLog(stream string) {
	e.t.Helper()
	e.t.Cleanup(e.follow(e.appLog(stream)))
	e.appendLines("app.log", numbered("a", 0, 100)...)
	e.waitFor(stream, names("a", 0, 100))
}

func (e *env) once(c *Config) {
	e.t.Helper()
	if err := Run(context.Background(), c, true, quiet()); err != nil {
		e.t.Fatalf("agent --once: %v", err)
	}
}

// follow runs the agent until the returned stop is called.
func (e *env) follow(c *Config) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, c, false, quiet()) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("agent: %v", err)
		}
	}
}

func (e *env) path(name string) string { return filepath.Join(e.dir, name) }

func (e *env) appendLines(name string, lines ...string) {
	e.t.Helper()
	f, err := os.OpenFile(e.path(name), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			e.t.Fatal(err)
		}
	}
}

// records reads the stream's records as JSON objects.
func (e *env) records(stream string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	for _, r := range e.srv.ReadAll(e.t, stream) {
		var m map[string]any
		if err := json.Unmarshal(r.Data, &m); err != nil {
			e.t.Fatalf("record %s/%s is not a JSON object: %q", r.Shard, r.Seq, r.Data)
		}
		out = append(out, m)
	}
	return out
}

// field collects one field of every record, sorted.
func field(recs []map[string]any, name string) []string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprint(r[name]))
	}
	sort.Strings(out)
	return out
}

func numbered(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(`{"m":"%s-%04d"}`, prefix, i))
	}
	return out
}

func names(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%04d", prefix, i))
	}
	return out
}

// waitFor polls the stream until its records' m fields are want (sorted).
func (e *env) waitFor(stream string, want []string) {
	e.t.Helper()
	sort.Strings(want)
	var got []string
	testutil.Within(30*time.Second, func() bool {
		got = field(e.records(stream), "m")
		return len(got) >= len(want)
	})
	if strings.Join(got, ",") != strings.Join(want, ",") {
		e.t.Fatalf("stream %s holds %d records, want %d:\n%s", stream, len(got), len(want), diff(want, got))
	}
}

// diff lists what is missing from got and what is extra (or repeated).
func diff(want, got []string) string {
	count := map[string]int{}
	for _, w := range want {
		count[w]++
	}
	for _, g := range got {
		count[g]--
	}
	var b strings.Builder
	for k, n := range count {
		switch {
		case n > 0:
			fmt.Fprintf(&b, "  missing %s\n", k)
		case n < 0:
			fmt.Fprintf(&b, "  extra %s (x%d)\n", k, -n)
		}
	}
	return b.String()
}

// TestAgentFormats sends JSON, CSV (header line), regex and text files
// with --once, adding host and file, then sends only what was appended.
func TestAgentFormats(t *testing.T) {
	e := newEnv(t, "s")
	e.appendLines("a.json", `{"m":"j1","n":1}`, `not json`, `{"m":"j2"}`)
	e.appendLines("b.csv", "m,n", "c1,1", `"c2",2`)
	e.appendLines("c.log", "GET /x 200", "GET /y 404")
	e.appendLines("d.txt", "hello", "", "world")
	c := e.config(
		Flow{Files: e.path("*.json"), Stream: "s", Format: "json"},
		Flow{Files: e.path("*.csv"), Stream: "s", Format: "csv"},
		Flow{Files: e.path("*.log"), Stream: "s", Format: "regex", Pattern: `^(?P<method>\S+) (?P<m>\S+) (?P<status>\d+)$`},
		Flow{Files: e.path("*.txt"), Stream: "s", Format: "text", Fields: map[string]string{"env": "test"}},
	)
	e.once(c)
	recs := e.records("s")
	byMsg := map[string]map[string]any{}
	for _, r := range recs {
		k := fmt.Sprint(r["m"])
		if r["m"] == nil {
			k = fmt.Sprint(r["message"])
		}
		byMsg[k] = r
	}
	if len(recs) != 9 {
		t.Fatalf("%d records, want 9: %v", len(recs), recs)
	}
	check := func(k, f string, want any) {
		t.Helper()
		if got := byMsg[k][f]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("record %s: field %s = %v, want %v", k, f, got, want)
		}
	}
	check("j1", "n", 1)
	check("j1", "host", "h1")
	check("j1", "file", e.path("a.json"))
	if byMsg["not json"]["parse_error"] == nil {
		t.Errorf("the line that is not JSON lacks parse_error: %v", byMsg["not json"])
	}
	check("c2", "n", "2")
	check("/y", "status", "404")
	check("/y", "method", "GET")
	check("world", "env", "test")
	// Appended lines only, the CSV header remembered.
	e.appendLines("b.csv", "c3,3")
	e.appendLines("a.json", `{"m":"j3"}`)
	e.once(e.config(c.Flows...))
	got := field(e.records("s"), "m")
	if n := len(got); n != 11 || !strings.Contains(strings.Join(got, ","), "c3") {
		t.Fatalf("after appending: %v", got)
	}
}

// TestAgentMultiline joins continuation lines to the record their start
// pattern began, in follow mode (the last record goes after the timeout)
// and with --once.
func TestAgentMultiline(t *testing.T) {
	e := newEnv(t, "ml")
	e.appendLines("app.log", "2026-01-01 first", "  at a", "  at b", "2026-01-02 second", "2026-01-03 third", "", "  at c")
	c := e.config(Flow{Files: e.path("app.log"), Stream: "ml", Format: "text", MultilineStart: `^\d{4}-`,
		MultilineTimeout: Duration(200 * time.Millisecond)})
	stop := e.follow(c)
	testutil.Within(20*time.Second, func() bool { return len(e.records("ml")) >= 3 })
	stop()
	want := []string{"2026-01-01 first\n  at a\n  at b", "2026-01-02 second", "2026-01-03 third\n\n  at c"}
	if got := field(e.records("ml"), "message"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("records %q, want %q", got, want)
	}
	e.appendLines("app.log", "2026-01-04 fourth", "  at d")
	e.once(e.config(c.Flows...))
	got := field(e.records("ml"), "message")
	if len(got) != 4 || got[3] != "2026-01-04 fourth\n  at d" {
		t.Fatalf("after --once: %q", got)
	}
}

// TestAgentRotateRename: the file is renamed out of the glob and a new one
// created; lines written to the old file after the rename still arrive,
// and nothing twice.
func TestAgentRotateRename(t *testing.T) {
	e := newEnv(t, "r")
	e.followAppLog("r")
	e.appendLines("app.log", numbered("a", 100, 150)...)
	if err := os.Rename(e.path("app.log"), e.path("app.log.1")); err != nil {
		t.Fatal(err)
	}
	e.appendLines("app.log.1", numbered("a", 150, 170)...) // the writer has not reopened yet
	e.appendLines("app.log", numbered("b", 0, 80)...)
	e.waitFor("r", append(names("a", 0, 170), names("b", 0, 80)...))
}

// TestAgentCopyTruncate: the file is copied aside and truncated in place,
// then written again, once shorter and once longer than before; the
// agent reads it from the start each time.
func TestAgentCopyTruncate(t *testing.T) {
	e := newEnv(t, "ct")
	e.followAppLog("ct")
	copyTruncate := func() {
		b, err := os.ReadFile(e.path("app.log"))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(e.path("app.log.1"), b, 0o644)
		if err := os.Truncate(e.path("app.log"), 0); err != nil {
			t.Fatal(err)
		}
	}
	copyTruncate()
	e.appendLines("app.log", numbered("b", 0, 10)...)
	e.waitFor("ct", append(names("a", 0, 100), names("b", 0, 10)...))
	copyTruncate()
	e.appendLines("app.log", numbered("c", 0, 300)...) // longer than what was read
	e.waitFor("ct", append(append(names("a", 0, 100), names("b", 0, 10)...), names("c", 0, 300)...))
}

// TestAgentTruncatedWhileStopped: between two runs the file is cut and
// written again, longer; the fingerprint tells, and it is read whole.
// A reused inode is the same case.
func TestAgentTruncatedWhileStopped(t *testing.T) {
	e := newEnv(t, "tw")
	c := e.appLog("tw")
	e.appendLines("app.log", numbered("a", 0, 20)...)
	e.once(c)
	if err := os.Truncate(e.path("app.log"), 0); err != nil {
		t.Fatal(err)
	}
	e.appendLines("app.log", numbered("b", 0, 50)...)
	e.once(e.config(c.Flows...))
	e.waitFor("tw", append(names("a", 0, 20), names("b", 0, 50)...))
}

// TestAgentRotatedWhileStopped: a file renamed out of the glob while the
// agent was down is found by its inode and read to its end.
func TestAgentRotatedWhileStopped(t *testing.T) {
	e := newEnv(t, "rw")
	c := e.appLog("rw")
	e.appendLines("app.log", numbered("a", 0, 20)...)
	e.once(c)
	e.appendLines("app.log", numbered("a", 20, 30)...)
	os.Rename(e.path("app.log"), e.path("app.log.1"))
	e.appendLines("app.log", numbered("b", 0, 5)...)
	e.once(e.config(c.Flows...))
	e.waitFor("rw", append(names("a", 0, 30), names("b", 0, 5)...))
}

// TestAgentKinesisTarget points the agent at a Kinesis endpoint (the
// Runnel server's Kinesis API, as AWS would be) with credentials from the
// environment and per-shard pacing on.
func TestAgentKinesisTarget(t *testing.T) {
	e := newEnv(t, "kt")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	c := e.appLog("kt")
	c.Server = ""
	c.Kinesis = &KinesisTarget{Region: "us-east-1", Endpoint: e.srv.URL}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	e.appendLines("app.log", numbered("a", 0, 50)...)
	e.once(c)
	e.waitFor("kt", names("a", 0, 50))
}

// TestAgentLongLines: a line over the record limit goes in parts, whole;
// one that escaping makes too large is skipped with an error, and the
// lines after it still arrive (the offset moves past it).
func TestAgentLongLines(t *testing.T) {
	e := newEnv(t, "ll")
	long := strings.Repeat("abcdefghij", 200_000) // 2,000,000 bytes
	escaped := strings.Repeat("\x01", 600_000)    // \u0001 each: 3.6 MB of JSON
	e.appendLines("app.log", "before", long, escaped, "after")
	c := e.config(Flow{Files: e.path("app.log"), Stream: "ll", Format: "text"})
	e.once(c)
	var parts []string
	var got []string
	for _, r := range e.records("ll") {
		m := r["message"].(string)
		if strings.HasPrefix(m, "abcdefghij") || strings.HasPrefix(m, "ghij") || len(m) > 100 {
			parts = append(parts, m)
			continue
		}
		got = append(got, m)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != "after,before" {
		t.Fatalf("short lines %q", got)
	}
	if len(parts) != 3 || len(strings.Join(parts, "")) != len(long) {
		t.Fatalf("the long line came in %d parts of %d bytes in all, want 3 of %d", len(parts), len(strings.Join(parts, "")), len(long))
	}
	// A second run sends nothing again: the offset moved past all of it.
	e.once(e.config(c.Flows...))
	if n := len(e.records("ll")); n != 5 {
		t.Fatalf("%d records after a second run, want 5", n)
	}
}

// TestAgentReusedInodeOutsideGlob: a checkpointed file is deleted while
// the agent is down and a file outside the glob takes its inode; the
// restart does not take that file for the rotated one (it is not read).
func TestAgentReusedInodeOutsideGlob(t *testing.T) {
	e := newEnv(t, "ri")
	c := e.appLog("ri")
	e.appendLines("app.log", numbered("a", 0, 20)...)
	e.once(c)
	ino := func(name string) uint64 {
		fi, err := os.Stat(e.path(name))
		if err != nil {
			t.Fatal(err)
		}
		_, i, _ := fileID(fi)
		return i
	}
	old := ino("app.log")
	os.Remove(e.path("app.log"))
	e.appendLines("copy.txt", numbered("x", 0, 30)...)
	if ino("copy.txt") != old {
		t.Skip("the file system gave the new file another inode")
	}
	e.appendLines("app.log", numbered("b", 0, 5)...)
	e.once(e.config(c.Flows...))
	e.waitFor("ri", append(names("a", 0, 20), names("b", 0, 5)...))
}

// TestAgentRotateAfterIdle: a file that has not grown for longer than
// rotate_wait is renamed out of the glob, and its writer appends to it
// after the agent noticed the rename (a partial line first): those lines
// arrive whole, as rotate_wait counts from the rename being noticed.
func TestAgentRotateAfterIdle(t *testing.T) {
	e := newEnv(t, "ri")
	c := e.appLog("ri")
	c.RotateWait = Duration(2 * time.Second)
	t.Cleanup(e.follow(c))
	e.appendLines("app.log", numbered("a", 0, 10)...)
	e.waitFor("ri", names("a", 0, 10))
	time.Sleep(2500 * time.Millisecond) // idle for longer than rotate_wait
	f, err := os.OpenFile(e.path("app.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Rename(e.path("app.log"), e.path("app.log.1")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // ten scans: the agent has noticed the rename
	f.WriteString(`{"m":"a-0010"}` + "\n" + `{"m":`)
	time.Sleep(100 * time.Millisecond)
	f.WriteString(`"a-0011"}` + "\n")
	e.waitFor("ri", names("a", 0, 12))
}

// TestAgentStoppedWhileStarting: a stop (the context ends) while the
// producers are being made is a clean stop, not an error.
func TestAgentStoppedWhileStarting(t *testing.T) {
	dir := t.TempDir()
	c := &Config{Server: "http://127.0.0.1:1", Checkpoint: filepath.Join(dir, "cp.json"), Host: "h",
		Flows: []Flow{{Files: filepath.Join(dir, "*.log"), Stream: "s"}}}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, c, false, quiet()); err != nil {
		t.Fatalf("Run stopped while starting: %v", err)
	}
}

// TestAgentTruncatedDuringRead: the file is cut and written again, longer
// than what was read, between the agent's truncation check and its read:
// the agent does not send what it read at the old offset (a torn line
// and lines sent twice) but reads the new content from its start.
func TestAgentTruncatedDuringRead(t *testing.T) {
	e := newEnv(t, "tr")
	e.appendLines("app.log", numbered("a", 0, 10)...)
	var armed, fired atomic.Bool
	var rewrite []byte
	for _, l := range numbered("b", 0, 20) {
		rewrite = append(rewrite, l+"\n"...)
	}
	beforeRead = func(tr *tracked) {
		if tr.readOff > 0 && armed.CompareAndSwap(true, false) {
			os.WriteFile(e.path("app.log"), rewrite, 0o644) // truncates, writes
			fired.Store(true)
		}
	}
	defer func() { beforeRead = func(*tracked) {} }()
	stop := e.follow(e.appLog("tr"))
	defer stop()
	e.waitFor("tr", names("a", 0, 10))
	armed.Store(true)
	testutil.Within(10*time.Second, fired.Load)
	e.waitFor("tr", append(names("a", 0, 10), names("b", 0, 20)...))
}

// TestAgentReusedInodeOfEmptyFile: as TestAgentReusedInodeOutsideGlob,
// but the checkpointed file was empty, so no first bytes tell the files
// apart: an empty file is not checkpointed (it has nothing to resume).
func TestAgentReusedInodeOfEmptyFile(t *testing.T) {
	e := newEnv(t, "re")
	c := e.appLog("re")
	e.appendLines("app.log")
	e.once(c)
	fi, err := os.Stat(e.path("app.log"))
	if err != nil {
		t.Fatal(err)
	}
	_, old, _ := fileID(fi)
	os.Remove(e.path("app.log"))
	e.appendLines("copy.txt", numbered("x", 0, 30)...)
	if fi, err = os.Stat(e.path("copy.txt")); err != nil {
		t.Fatal(err)
	}
	if _, ino, _ := fileID(fi); ino != old {
		t.Skip("the file system gave the new file another inode")
	}
	e.appendLines("app.log", numbered("b", 0, 5)...)
	e.once(e.config(c.Flows...))
	e.waitFor("re", names("b", 0, 5))
}
