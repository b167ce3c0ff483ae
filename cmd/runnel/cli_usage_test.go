package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// cliCase is one run of the CLI and what it must answer: the exit code
// and words its standard error must hold; a failure writes nothing to
// stdout.
type cliCase struct {
	env  []string
	in   string
	args []string
	code int
	msg  string
}

// runGuarded runs the binary like testbin.Run, but kills it when it has not
// ended after a long while: a command that should fail at once and instead
// retries forever fails the test rather than hanging it.
func runGuarded(t *testing.T, c cliCase) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbin.Runnel(t), c.args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = strings.NewReader(c.in)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("runnel %q did not end; stderr (tail):\n%s", c.args, testutil.Tail(errb.String(), 2000))
	}
	return out.String(), errb.String(), exitCode(t, err)
}

func checkCases(t *testing.T, cases []cliCase) {
	t.Helper()
	for _, c := range cases {
		out, e, code := runGuarded(t, c)
		if code != c.code || !strings.Contains(e, c.msg) || (c.code != 0 && out != "") {
			t.Errorf("runnel %q: exit %d (want %d), stdout %q, stderr (want %q):\n%s", c.args, code, c.code, out, c.msg, testutil.Tail(e, 1500))
		}
	}
}

// TestCLIUsageErrors holds every command to the exit codes main documents:
// 2 for a usage error, including a flag that is unknown or has a bad value
// and a --server that is not a URL, 1 for a failure.
func TestCLIUsageErrors(t *testing.T) {
	srv, env := startCLIServer(t)
	srv.CreateStream("s", 1)
	noScheme := strings.TrimPrefix(srv.URL, "http://")
	checkCases(t, []cliCase{
		{env: env, args: []string{"streams", "list", "--bogus"}, code: 2, msg: "flag provided but not defined: -bogus"},
		{env: env, args: []string{"streams", "create", "x", "--shards", "x"}, code: 2, msg: `invalid value "x" for flag -shards`},
		{env: env, args: []string{"tail", "s", "--follow=maybe"}, code: 2, msg: "invalid boolean value"},
		{env: env, args: []string{"jobs", "list", "--bogus"}, code: 2, msg: "-bogus"},
		{env: env, args: []string{"consume", "s", "--group", "g", "--idle", "soon"}, code: 2, msg: "-idle"},
		{args: []string{"serve", "--bogus"}, code: 2, msg: "-bogus"},
		{env: env, args: []string{"consume", "s", "--group", "g", "--log-level", "loud"}, code: 2, msg: `--log-level "loud": use debug, info, warn or error`},
		{args: []string{"detect", "--threshold", "x"}, code: 2, msg: "-threshold"},
		{args: []string{"worker", "--cluster", "127.0.0.1:9092", "--job", "j.yaml"}, code: 2, msg: `--cluster kafka://HOST:PORT[,HOST:PORT...], not "127.0.0.1:9092"`},
		{env: []string{"AWS_REGION=", "AWS_DEFAULT_REGION=", "AWS_CONFIG_FILE=" + filepath.Join(t.TempDir(), "none")}, args: []string{"consume", "s", "--group", "g", "--kinesis-endpoint", srv.URL, "--leases-postgres", "host=/nonexistent"}, code: 2, msg: "no AWS region: give --region or set AWS_REGION"},
		{args: []string{"detect", "--evaluate", filepath.Join(t.TempDir(), "nope")}, code: 1, msg: "nope: not a directory of CSV files"},
		{env: []string{"RUNNEL_SERVER=" + noScheme}, args: []string{"streams", "list"}, code: 2, msg: "is not a server URL: give one such as http://"},
		{args: []string{"tail", "s", "--server", noScheme}, code: 2, msg: "is not a server URL"},
		{in: "a\n", args: []string{"put", "s", "--server", noScheme}, code: 2, msg: "is not a server URL"},
		// A command that does not call the server does not judge its URL.
		{env: []string{"RUNNEL_SERVER=" + noScheme}, args: []string{"tokens", "list", "--data", t.TempDir()}, code: 0, msg: ""},
		{env: env, args: []string{"streams", "resize", "s"}, code: 2, msg: "--shards N is required"},
		{env: env, args: []string{"streams", "create", "x", "--shards", "0"}, code: 2, msg: "--shards must be 1 to 1024, not 0"},
		{env: env, args: []string{"streams", "create", "x", "--retention-hours", "1"}, code: 2, msg: "--retention-hours must be 24 to 8760, not 1"},
		{env: env, args: []string{"streams", "resize", "s", "--shards", "1025"}, code: 2, msg: "--shards must be 1 to 1024, not 1025"},
		{env: env, args: []string{"jobs", "get", "nope"}, code: 1, msg: `job not found: "nope" ('runnel jobs list' lists the jobs)`},
		{env: env, args: []string{"tail", "nope"}, code: 1, msg: `stream "nope" does not exist ('runnel streams list' lists the streams)`},
		{env: env, args: []string{"streams", "delete", "nope"}, code: 1, msg: "('runnel streams list' lists the streams)"},
		{env: env, args: []string{"groups", "describe", "s", "nope"}, code: 1, msg: `has no consumer group "nope" ('runnel groups list STREAM' lists a stream's groups)`},
		{args: []string{"streams"}, code: 2, msg: "runnel streams: usage: give a subcommand (listed above)"},
		{args: []string{"jobs"}, code: 2, msg: "--token TOKEN (env RUNNEL_TOKEN)"},
		{args: []string{"groups"}, code: 2, msg: "--token TOKEN (env RUNNEL_TOKEN)"},
		{args: []string{"bench"}, code: 2, msg: "runnel bench: usage: give a benchmark"},
		{env: env, in: "a\n" + strings.Repeat("x", 3<<20) + "\n", args: []string{"put", "s"}, code: 1, msg: "line 2 is longer than 2 MiB: a record holds at most 1 MiB"},
		// A partition key has 1 to 256 characters: an empty --key is not
		// taken as no --key.
		{env: env, in: "a\n", args: []string{"put", "s", "--key", ""}, code: 2, msg: "--key must be 1 to 256 characters (a partition key), not 0"},
		{env: env, in: "a\n", args: []string{"put", "s", "--key", strings.Repeat("k", 257)}, code: 2, msg: "--key must be 1 to 256 characters (a partition key), not 257"},
		{env: env, in: "a\n", args: []string{"put", "s", "--key-field="}, code: 2, msg: "--key-field needs a field name"},
		{env: env, in: "a\n", args: []string{"put", "s", "--key", "", "--key-field", "u"}, code: 2, msg: "give --key or --key-field, not both"},
		{env: env, in: `{"u":"a"}` + "\n" + `{"u":""}` + "\n", args: []string{"put", "s", "--key-field", "u"}, code: 1, msg: `line 2: field "u" holds a key of 0 characters: a partition key has 1 to 256`},
	})
	// The agent says what to do about a flow's stream that does not exist
	// and a server that is not there.
	dir := t.TempDir()
	logs := filepath.Join(dir, "app.log")
	if err := os.WriteFile(logs, []byte(`{"a":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	agentConfig := func(name, server, stream string) string {
		p := filepath.Join(dir, name)
		y := fmt.Sprintf("server: %s\nflows:\n  - {files: %s, stream: %s, format: json}\n", server, logs, stream)
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	checkCases(t, []cliCase{
		{args: []string{"agent", "--once", "--config", agentConfig("nostream.yaml", srv.URL, "nope")}, code: 1, msg: "create the stream with 'runnel streams create NAME', or name one that exists in"},
		{args: []string{"agent", "--once", "--config", agentConfig("down.yaml", "http://"+freeAddr(t), "s")}, code: 1, msg: "cannot reach the server at http://"},
	})
	// A group's live workers are listed in words, not as a Go slice.
	if out, err := srv.CLI("groups", "create", "s", "g"); err != nil {
		t.Fatalf("groups create: %v\n%s", err, out)
	}
	if out, err := srv.CLI("groups", "describe", "s", "g"); err != nil || !strings.Contains(out, "live workers: none\n") || strings.Contains(out, "[]") {
		t.Errorf("groups describe of a group without workers: %v\n%s", err, out)
	}
	// The stream was left as it was.
	out, err := srv.CLI("streams", "describe", "s")
	if err != nil || !strings.Contains(out, "open shards 1") {
		t.Fatalf("describe after a resize without --shards: %v\n%s", err, out)
	}
}

// TestCLIConsumeFailsAtStart checks that consume reports, and exits 1 on,
// what keeps it from starting at all: no server at the address, no such
// stream, no token or a wrong one for a server with auth on. put, with
// auth on, says to give a token.
func TestCLIConsumeFailsAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	data := t.TempDir()
	if _, e, code := runCLI(t, nil, "tokens", "create", "w", "--role", "writer", "--data", data); code != 0 {
		t.Fatalf("tokens create: %d %s", code, e)
	}
	admin, e, code := runCLI(t, nil, "tokens", "create", "a", "--role", "admin", "--data", data)
	if code != 0 {
		t.Fatalf("tokens create: %d %s", code, e)
	}
	srv := startServe(t, data, freeAddr(t), "--auth")
	defer srv.Kill()
	env := []string{"RUNNEL_SERVER=" + srv.URL, "RUNNEL_TOKEN="}
	down := []string{"RUNNEL_SERVER=http://" + freeAddr(t)}
	checkCases(t, []cliCase{
		{env: down, args: []string{"consume", "s", "--group", "g"}, code: 1, msg: "cannot reach the server"},
		{env: env, args: []string{"consume", "s", "--group", "g"}, code: 1, msg: "pass --token or set RUNNEL_TOKEN"},
		{env: env, args: []string{"consume", "s", "--group", "g", "--token", "wrong"}, code: 1, msg: "unknown or revoked: check --token or RUNNEL_TOKEN, or create a token with 'runnel tokens create"},
		{env: env, args: []string{"streams", "list", "--token", "wrong"}, code: 1, msg: "check --token or RUNNEL_TOKEN"},
		{env: env, in: "a\n", args: []string{"put", "s"}, code: 1, msg: "has auth on: pass --token or set RUNNEL_TOKEN"},
		{env: env, in: "a\n", args: []string{"put", "s", "--token", "wrong"}, code: 1, msg: "knows no such token"},
		{env: env, args: []string{"tokens", "revoke", "nope", "--data", data}, code: 1, msg: "('runnel tokens list --data " + data + "' lists the tokens)"},
		{env: env, args: []string{"tokens", "revoke", "nope", "--token", strings.TrimSpace(admin)}, code: 1, msg: "('runnel tokens list' lists the tokens)"},
	})
	// With no auth, a stream that does not exist.
	open := testbin.Start(t, testbin.Options{})
	defer open.Kill()
	checkCases(t, []cliCase{
		{env: []string{"RUNNEL_SERVER=" + open.URL}, args: []string{"consume", "nope", "--group", "g"}, code: 1, msg: `stream "nope" does not exist`},
	})
}

// TestCLIJobsMessages checks the jobs subcommands' words to a CLI user:
// flags, not the REST API's parameters, and a range or number checked
// before anything is sent (exit 2).
func TestCLIJobsMessages(t *testing.T) {
	srv, env := startCLIServer(t)
	file := filepath.Join(t.TempDir(), "g.yaml")
	if err := os.WriteFile(file, []byte("name: g\nsource: {generator: {rate: 10}}\nsinks:\n  - {id: out, log: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"jobs", "submit", file}, {"jobs", "stop", "g"}} {
		if out, err := srv.CLI(args...); err != nil {
			t.Fatalf("%q: %v\n%s", args, err, out)
		}
	}
	checkCases(t, []cliCase{
		{env: env, args: []string{"jobs", "submit", file}, code: 1, msg: "submit again with --replace"},
		{env: env, args: []string{"jobs", "restart", "g", "--checkpoint", "x"}, code: 2, msg: "is not an epoch number ('runnel jobs checkpoints g' lists them)"},
		{env: env, args: []string{"jobs", "errors", "g", "--limit", "0"}, code: 2, msg: "--limit must be 1 to 1000"},
		{env: env, args: []string{"jobs", "preview", file, "--records", "0"}, code: 2, msg: "--records must be 1 to 100000"},
	})
	out, e, code := testbin.Run(t, "", env, "jobs", "errors", "g")
	if code != 0 || strings.TrimSpace(out) != "job g has had no errors" {
		t.Errorf("jobs errors of a job without errors: exit %d, stdout %q, stderr %q", code, out, e)
	}
}

// TestCLIRunLogLines checks that runnel run prints a log sink's rows as
// its --help says: the sink's id, ": " and the row as JSON.
func TestCLIRunLogLines(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	help, _, _ := testbin.Run(t, "", nil, "run", "--help")
	if !strings.Contains(help, `the sink's id, ": " and the row as JSON`) {
		t.Errorf("run --help does not say how a log sink's rows print:\n%s", help)
	}
	file := filepath.Join(t.TempDir(), "g.yaml")
	if err := os.WriteFile(file, []byte("name: g\nsource: {generator: {rate: 1000, count: 3}}\nsinks:\n  - {id: rows, log: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, e, code := testbin.Run(t, "", nil, "run", file)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("run: exit %d, stdout:\n%s\nstderr:\n%s", code, out, e)
	}
	for _, l := range lines {
		var row map[string]any
		if rest, ok := strings.CutPrefix(l, "rows: "); !ok || json.Unmarshal([]byte(rest), &row) != nil {
			t.Errorf("run printed %q, not rows: JSON", l)
		}
	}
}

// TestCLIPutInterrupt interrupts a put whose stdin stays open: it stops
// reading, puts the lines it read, says how many, and exits 0.
func TestCLIPutInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	srv := testbin.Start(t, testbin.Options{})
	defer srv.Kill()
	srv.CreateStream("s", 1)
	cmd := exec.Command(testbin.Runnel(t), "put", "s", "--server", srv.URL)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if _, err := io.WriteString(stdin, "a\nb\nc\n"); err != nil {
		t.Fatal(err)
	}
	// Wait until the three are in the stream: put has read them.
	for i := 0; ; i++ {
		out, _ := srv.CLI("tail", "s")
		if strings.Count(out, "\n") == 3 {
			break
		}
		if i == 600 {
			t.Fatalf("the lines never reached the stream; put's stderr:\n%s", errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("put did not end after an interrupt; stderr:\n%s", errb.String())
	}
	if err != nil || !strings.Contains(errb.String(), "interrupted: put 3 records into s") {
		t.Fatalf("put after an interrupt: %v, stderr:\n%s", err, errb.String())
	}
}

// TestCLIHelpAndFlagErrors walks every command and subcommand the help
// lists. Help that was asked for (--help, -h, help) goes to stdout with
// exit 0; a flag the command does not define is a usage error: exit 2,
// nothing on stdout, and the problem said once on stderr with where the
// flags are listed.
func TestCLIHelpAndFlagErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary; skipped in -short mode")
	}
	asked := func(args ...string) string {
		t.Helper()
		out, e, code := testbin.Run(t, "", nil, args...)
		if code != 0 || e != "" || !strings.Contains(out, "Usage: runnel") {
			t.Errorf("runnel %q: exit %d, stderr %q; want exit 0 and the help on stdout:\n%s", args, code, e, out)
		}
		return out
	}
	top := asked("--help")
	asked("-h")
	asked("help")
	asked("help", "jobs")
	for _, args := range [][]string{nil, {"nope"}} {
		if out, e, code := testbin.Run(t, "", nil, args...); code != 2 || out != "" || !strings.Contains(e, "Usage: runnel") {
			t.Errorf("runnel %q: exit %d, stdout %q, stderr %q; want exit 2 and the help on stderr", args, code, out, e)
		}
	}
	_, list, _ := strings.Cut(top, "\nCommands:\n")
	list, _, _ = strings.Cut(list, "\n\n")
	if list == "" {
		t.Fatalf("runnel --help lists no commands on stdout:\n%s", top)
	}
	var leaves [][]string
	for _, l := range strings.Split(list, "\n") {
		cmd := strings.Fields(l)[0]
		h := asked(cmd, "--help")
		if strings.Contains(h, "\nFlags:\n") {
			leaves = append(leaves, []string{cmd})
			continue
		}
		asked(cmd, "-h")
		inList := false
		for _, l := range strings.Split(h, "\n") {
			switch {
			case l == "Subcommands:" || l == "Benchmarks:":
				inList = true
			case l == "":
				inList = false
			case inList && helpSubLine.MatchString(l):
				leaves = append(leaves, []string{cmd, helpSubLine.FindStringSubmatch(l)[1]})
			}
		}
	}
	if len(leaves) < 30 {
		t.Fatalf("found only %d commands in the help: %q", len(leaves), leaves)
	}
	for _, leaf := range leaves {
		asked(append(leaf, "--help")...)
		args := append(append([]string{}, leaf...), "--no-such-flag")
		out, e, code := testbin.Run(t, "", nil, args...)
		want := fmt.Sprintf("flag provided but not defined: -no-such-flag (see 'runnel %s --help')", strings.Join(leaf, " "))
		if code != 2 || out != "" || strings.Count(e, "no-such-flag") != 1 || !strings.Contains(e, want) {
			t.Errorf("runnel %q: exit %d, stdout %q; want exit 2 and stderr to say %q once:\n%s", args, code, out, want, e)
		}
	}
}

// TestInCLIWords: a server's answer that points at a REST call a command
// makes (a job's checkpoints, the savepoints, stopping a job) names the
// command instead.
func TestInCLIWords(t *testing.T) {
	in := &apiErr{Code: "not_running", Message: `job is not running: "a b" is stopped; a job that is not running restarts from its checkpoints: GET /api/v1/jobs/a%20b/checkpoints)`}
	got := inCLIWords(in).Error()
	if want := `restarts from its checkpoints: 'runnel jobs checkpoints a b')`; !strings.HasSuffix(got, want) || strings.Contains(got, "/api/") {
		t.Errorf("got %q, want it to end %q", got, want)
	}
	running := &apiErr{Code: "running", Message: "jobs: the job is running: stop it first (DELETE /api/v1/jobs/g or runnel jobs stop g), then delete it"}
	if got, want := inCLIWords(running).Error(), "stop it first ('runnel jobs stop g'), then delete it"; !strings.HasSuffix(got, want) {
		t.Errorf("got %q, want it to end %q", got, want)
	}
	sp := &apiErr{Code: "not_found", Message: "there is no savepoint named x (GET /api/v1/savepoints lists them)"}
	if got, want := inCLIWords(sp).Error(), "('runnel jobs savepoints' lists them)"; !strings.HasSuffix(got, want) {
		t.Errorf("got %q, want it to end %q", got, want)
	}
	other := &apiErr{Code: "not_found", Message: "job not found"}
	if got := inCLIWords(other); got != error(other) {
		t.Errorf("an answer without a REST call changed: %v", got)
	}
}
