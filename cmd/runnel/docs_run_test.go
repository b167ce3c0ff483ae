package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testbin"
)

// Beside the README (readme_test.go, readme_run_test.go), some docs show a
// short session a reader pastes as it is. The tests here run those
// sessions against the real binary, each as written but for the server's
// address and the secrets it prints.

// docShBlock returns the lines of the first ```sh block after the line
// heading of the doc at path (relative to the repository root), which must
// come before the next heading.
func docShBlock(t *testing.T, path, heading string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../..", path))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s has no line %q", path, heading)
	}
	before, rest, ok := strings.Cut(rest, "```sh\n")
	if !ok || strings.HasPrefix(before, "#") || strings.Contains(before, "\n#") {
		t.Fatalf("%s: no sh block under %q before the next heading", path, heading)
	}
	block, _, _ := strings.Cut(rest, "```")
	return strings.Split(strings.TrimRight(block, "\n"), "\n")
}

// docShell runs a script with sh -c in dir, with the runnel binary under
// test first on PATH and env added.
func docShell(t *testing.T, dir string, env []string, script string) (string, error) {
	t.Helper()
	binDir := filepath.Dir(runnelBinary(t))
	if filepath.Base(runnelBinary(t)) != "runnel" {
		binDir = t.TempDir()
		if err := os.Symlink(runnelBinary(t), filepath.Join(binDir, "runnel")); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	// The session sets what it needs of AWS's and runnel's settings; the
	// test's own (a profile, a region, an endpoint, a server, a token)
	// stay out.
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "RUNNEL_") {
			base = append(base, kv)
		}
	}
	cmd.Env = append(append(base, "PATH="+binDir+":"+os.Getenv("PATH"), "HOME="+dir), env...)
	o, err := cmd.CombinedOutput()
	return string(o), err
}

// TestDocsSecurityTurningAuthOn runs docs/security.md's "Turning auth on"
// in a new directory: the first token made offline before the server ever
// ran, the server started with --auth on that data directory, then the
// CLI with the printed token as RUNNEL_TOKEN. Without the token the same
// command is refused.
func TestDocsSecurityTurningAuthOn(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary; skipped in -short mode")
	}
	lines := docShBlock(t, "docs/security.md", "## Turning auth on")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "runnel tokens create ") || !strings.HasPrefix(lines[1], "runnel serve ") ||
		!strings.HasPrefix(lines[2], "export RUNNEL_TOKEN=rnl_...") || !strings.HasPrefix(lines[3], "runnel streams list") {
		t.Fatalf("docs/security.md's Turning auth on: want tokens create, serve, export RUNNEL_TOKEN=rnl_..., streams list; got %q", lines)
	}
	dir := t.TempDir()
	out, err := docShell(t, dir, nil, lines[0])
	var token string // the line of stdout (the rest is stderr's)
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "rnl_") {
			token = l
		}
	}
	if err != nil || token == "" {
		t.Fatalf("%s: %v\n%s", lines[0], err, out)
	}

	words := shellWords(lines[1])[2:] // after runnel serve
	var data string
	var flags []string
	for i := 0; i < len(words); i++ {
		if words[i] == "--data" && i+1 < len(words) {
			data = words[i+1]
			i++
			continue
		}
		flags = append(flags, words[i])
	}
	if data == "" {
		t.Fatalf("%s: want --data DIR", lines[1])
	}
	srv := testbin.Start(t, testbin.Options{Data: filepath.Join(dir, data), Dir: dir, Flags: flags})

	env := []string{"RUNNEL_SERVER=" + srv.URL}
	session := strings.Replace(lines[2], "rnl_...", token, 1) + "\n" + lines[3]
	if out, err := docShell(t, dir, env, session); err != nil {
		t.Fatalf("%s: %v\n%s", session, err, out)
	}
	if out, err := docShell(t, dir, env, lines[3]); err == nil || !strings.Contains(out, "needs a token") {
		t.Fatalf("%s without RUNNEL_TOKEN against a server with --auth: %v\n%s", lines[3], err, out)
	}
}

// TestDocsKinesisAWSCLI runs the AWS CLI block of docs/kinesis-api.md's
// "Pointing clients at Runnel" against a real server, then checks with
// runnel that the stream and its record are there.
func TestDocsKinesisAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary; skipped in -short mode")
	}
	needAWSCLI(t)
	lines := docShBlock(t, "docs/kinesis-api.md", "**AWS CLI**")
	srv := testbin.Start(t, testbin.Options{})
	script := "set -e\n" + strings.ReplaceAll(strings.Join(lines, "\n"), "http://127.0.0.1:7070", srv.URL)
	dir := t.TempDir() // HOME: no ~/.aws
	out, err := docShell(t, dir, nil, script)
	if err != nil || !strings.Contains(out, `"SequenceNumber"`) || !strings.Contains(out, "shardId-000000000001") {
		t.Fatalf("%s\n: %v\n%s", script, err, out)
	}
	out, err = docShell(t, dir, []string{"RUNNEL_SERVER=" + srv.URL}, "runnel streams describe clicks")
	if err != nil || !strings.Contains(out, "1..1") || strings.Count(out, "shardId-") != 2 {
		t.Fatalf("after the doc's aws commands, runnel streams describe clicks: %v\n%s", err, out)
	}
}

// TestDocsKinesisTLS runs docs/kinesis-api.md's TLS block: `runnel serve
// --tls-self-signed` in a new directory (its default data directory,
// ./data, holds the certificate), then the block's AWS CLI line and, where
// boto3 is installed, its Python line, each trusting ./data's certificate as
// written. (The Node line needs an app.js of the reader's.)
func TestDocsKinesisTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary; skipped in -short mode")
	}
	needAWSCLI(t)
	lines := docShBlock(t, "docs/kinesis-api.md", "## TLS")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "runnel serve --tls-self-signed ") ||
		!strings.HasPrefix(lines[1], "aws ") || !strings.HasPrefix(lines[2], "python3 ") {
		t.Fatalf("docs/kinesis-api.md's TLS block: want runnel serve --tls-self-signed, aws, python3; got %q", lines)
	}
	if flags := shellWords(lines[0])[2:]; len(flags) != 1 {
		t.Fatalf("%s: the test runs it as runnel serve --tls-self-signed; the line has other flags", lines[0])
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data") // runnel serve's default, ./data
	pool := x509.NewCertPool()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	hc := &http.Client{Transport: &testbin.TrustOnRead{File: filepath.Join(data, "tls-self-signed.pem"), Pool: pool, Next: tr}}
	srv := testbin.Start(t, testbin.Options{Data: data, Dir: dir, Scheme: "https", Client: hc, Flags: []string{"--tls-self-signed"}})

	env := []string{"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_DEFAULT_REGION=us-east-1"}
	local := func(l string) string {
		return strings.ReplaceAll(strings.Split(l, "#")[0], "https://127.0.0.1:7070", srv.URL)
	}
	if out, err := docShell(t, dir, env, local(lines[1])); err != nil || !strings.Contains(out, `"StreamNames"`) {
		t.Fatalf("%s: %v\n%s", local(lines[1]), err, out)
	}
	if exec.Command("python3", "-c", "import boto3").Run() != nil {
		t.Logf("boto3 is not installed: %s not run", lines[2])
		return
	}
	if out, err := docShell(t, dir, env, local(lines[2])); err != nil {
		t.Fatalf("%s: %v\n%s", local(lines[2]), err, out)
	}
}

// TestDocsAnomalyQuickStart runs the first two lines of docs/anomaly.md's
// quick start (the others need the NAB corpus, which the NAB tests run) on
// a cpu.csv of a seasonal series with one spike, and checks the output
// against the doc's "Reading the output": the CSV's columns are the
// table's, in order after timestamp and value; the spike is flagged; and
// is_anomaly is anomaly_score >= the --threshold given.
func TestDocsAnomalyQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary; skipped in -short mode")
	}
	lines := docShBlock(t, "docs/anomaly.md", "## Quick start")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "runnel detect --in cpu.csv --out cpu-scored.csv") ||
		!strings.HasPrefix(lines[1], "runnel detect --in cpu.csv --method novelty --threshold 0.8") {
		t.Fatalf("docs/anomaly.md's quick start: want the two --in cpu.csv lines first; got %q", lines)
	}
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("timestamp,value\n")
	const spike = 1500
	for i := range 2000 {
		v := 50 + 10*math.Sin(float64(i)*2*math.Pi/100)
		if i == spike {
			v += 80
		}
		fmt.Fprintf(&csv, "2024-01-01 %02d:%02d:%02d,%.3f\n", i/3600, i/60%60, i%60, v)
	}
	if err := os.WriteFile(filepath.Join(dir, "cpu.csv"), []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := docShell(t, dir, nil, lines[0]); err != nil {
		t.Fatalf("%s: %v\n%s", lines[0], err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cpu-scored.csv"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/anomaly.md")
	if err != nil {
		t.Fatal(err)
	}
	// The table's CSV column cells, in order: `anomaly_score`, `low`, `high`, ...
	_, table, _ := strings.Cut(string(doc), "| CSV (`runnel detect`) |")
	table, _, _ = strings.Cut(table, "\n\n")
	want := []string{"timestamp", "value"}
	for _, row := range strings.Split(table, "\n")[2:] {
		cell := strings.TrimSpace(strings.Split(row, "|")[1])
		for _, c := range strings.Split(cell, ",") {
			if c = strings.Trim(strings.TrimSpace(c), "`"); c != "—" {
				want = append(want, c)
			}
		}
	}
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")
	if rows[0] != strings.Join(want, ",") {
		t.Fatalf("cpu-scored.csv's header %q; docs/anomaly.md's table says %q", rows[0], strings.Join(want, ","))
	}
	if len(rows) != 2001 || !strings.Contains(rows[1+spike], ",true,") || !strings.HasSuffix(rows[1+spike], ",value,high") {
		t.Fatalf("%d rows; the spike's: %q (want it flagged, value high)", len(rows), rows[1+spike])
	}

	out, err := docShell(t, dir, nil, lines[1])
	if err != nil {
		t.Fatalf("%s: %v\n%s", lines[1], err, out)
	}
	flagged := 0
	for _, row := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Split(row, ",")
		score, err := strconv.ParseFloat(f[2], 64)
		if err != nil {
			t.Fatalf("%s: row %q", lines[1], row)
		}
		if (f[3] == "true") != (score >= 0.8) {
			t.Fatalf("%s: row %q: is_anomaly is not anomaly_score >= 0.8", lines[1], row)
		}
		if f[3] == "true" {
			flagged++
		}
	}
	if flagged == 0 {
		t.Fatalf("%s flagged nothing, not even the spike:\n%s", lines[1], out)
	}
}
