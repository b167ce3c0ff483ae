package interop

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// conformanceFloor is the least number of the suite's tests runnel serve
// must pass; docs/kinesis-api.md gives the current figure.
const conformanceFloor = 229

// conformanceSuite finds the runner of the shared Kinesis conformance suite
// (kinesalite's tests, asserting AWS's texts): $KINESIS_CONFORMANCE, or
// shared/kinesis-conformance/run.sh beside the repository or its parent.
func conformanceSuite(t *testing.T) string {
	if p := os.Getenv("KINESIS_CONFORMANCE"); p != "" {
		return p
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Dir(root), filepath.Dir(filepath.Dir(root))} {
		p := filepath.Join(dir, "shared", "kinesis-conformance", "run.sh")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("the Kinesis conformance suite is missing: set KINESIS_CONFORMANCE to its run.sh (looked for shared/kinesis-conformance/run.sh beside %s and its parent)", root)
	return ""
}

// knownFailures reads kinesis-conformance-known-failures.txt: one
// test name a line, then " # " and why it fails.
func knownFailures(t *testing.T) map[string]string {
	b, err := os.ReadFile("kinesis-conformance-known-failures.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, why, ok := strings.Cut(line, " # ")
		if !ok {
			t.Fatalf("known failure without a reason: %q", line)
		}
		out[strings.TrimSpace(name)] = why
	}
	return out
}

var tapLine = regexp.MustCompile(`^(not )?ok \d+ (.*?)( # SKIP -)?$`)

// TestKinesisConformance runs the shared conformance suite against the real
// binary and fails on any test that fails but is not a documented known
// failure, or when fewer than conformanceFloor tests pass.
func TestKinesisConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the conformance suite (about two minutes)")
	}
	suite := conformanceSuite(t)
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("the conformance suite needs Node (node and npm on PATH)")
	}
	known := knownFailures(t)
	base := startServe(t, t.TempDir(), "http", http.DefaultClient)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, suite, base)
	cmd.Env = append(os.Environ(), "KINESIS_SUITE_TIMEOUT=420")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run.sh: %v\n%s", err, lastBytes(string(out), 4000))
	}
	var passed []string
	failed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		m := tapLine.FindStringSubmatch(sc.Text())
		if m == nil || m[3] != "" || strings.Contains(m[2], `" hook`) {
			continue
		}
		if m[1] != "" {
			failed[m[2]] = true
		} else {
			passed = append(passed, m[2])
		}
	}
	summary := regexp.MustCompile(`(?m)^kinesalite: (\d+) passed, (\d+) failed`).FindStringSubmatch(string(out))
	if summary == nil {
		t.Fatalf("no summary line from run.sh:\n%s", lastBytes(string(out), 4000))
	}
	t.Logf("conformance: %s", summary[0])
	var regressions []string
	for name := range failed {
		if _, ok := known[name]; !ok {
			regressions = append(regressions, name)
		}
	}
	sort.Strings(regressions)
	for _, name := range passed {
		if why, ok := known[name]; ok {
			t.Logf("known failure now passes (remove it from testdata): %s # %s", name, why)
		}
	}
	if len(regressions) > 0 {
		t.Errorf("%d conformance tests fail that are not known failures:\n  %s\n\nrun.sh output (end):\n%s",
			len(regressions), strings.Join(regressions, "\n  "), lastBytes(string(out), 6000))
	}
	if n, _ := strconv.Atoi(summary[1]); n < conformanceFloor {
		t.Errorf("%d conformance tests pass, fewer than the floor of %d", n, conformanceFloor)
	}
}
