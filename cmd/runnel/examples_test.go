package main

import (
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

// exampleHeader is an example's header comment: its commands (the lines
// indented under "#   ") and the test it names, if it says one runs it.
type exampleHeader struct {
	commands []string
	tests    []string
	// files are the files it says it writes in the current directory.
	files []string
}

var (
	namedTest   = regexp.MustCompile(`\bTest[A-Z]\w+`)
	writtenFile = regexp.MustCompile(`([\w-]+\.(?:parquet|jsonl|csv))\)? (?:in|\(in) the current directory`)
)

func readExampleHeader(t *testing.T, path string) exampleHeader {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var h exampleHeader
	var text strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		if cmd, ok := strings.CutPrefix(l, "#   "); ok && strings.HasPrefix(strings.TrimSpace(cmd), "runnel ") || ok && strings.HasPrefix(strings.TrimSpace(cmd), "printf ") {
			h.commands = append(h.commands, strings.TrimSpace(cmd))
			continue
		}
		text.WriteString(strings.TrimPrefix(l, "#") + " ")
	}
	h.tests = namedTest.FindAllString(text.String(), -1)
	for _, m := range writtenFile.FindAllStringSubmatch(strings.Join(strings.Fields(text.String()), " "), -1) {
		h.files = append(h.files, m[1])
	}
	return h
}

// TestExamplesRunAsDocumented runs the commands of each examples/*.yaml
// header exactly as written (runnel is the binary under test, with
// RUNNEL_SERVER pointing at a real server for the server commands), from a
// directory holding the repository's examples, fed with the documented
// data, and checks each example produces output: rows printed by `runnel
// run`, or by `runnel jobs output`. An example that needs outside systems
// (Kafka, PostgreSQL, Kinesis, S3) names the test that runs it against
// real servers; that test must exist.
func TestExamplesRunAsDocumented(t *testing.T) {
	bin := runnelBinary(t)
	root, _ := filepath.Abs("../..")
	files, err := filepath.Glob(filepath.Join(root, "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	testSources := ""
	if srcs, err := filepath.Glob("*_test.go"); err == nil {
		for _, f := range srcs {
			b, _ := os.ReadFile(f)
			testSources += string(b)
		}
	}
	binDir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(binDir, "runnel")); err != nil {
		t.Fatal(err)
	}
	var srv *testbin.Server
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			h := readExampleHeader(t, f)
			if len(h.commands) == 0 {
				if len(h.tests) == 0 {
					t.Fatalf("%s documents no command to run it and names no test that does", name)
				}
				for _, tn := range h.tests {
					if !strings.Contains(testSources, "func "+tn+"(") {
						t.Fatalf("%s says %s runs it; there is no such test in cmd/runnel", name, tn)
					}
				}
				return
			}
			// The commands run where a user runs them: a directory with
			// the examples (files the jobs write land there).
			work := t.TempDir()
			if err := os.Symlink(filepath.Join(root, "examples"), filepath.Join(work, "examples")); err != nil {
				t.Fatal(err)
			}
			env := append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
			for _, c := range h.commands {
				if strings.Contains(c, "jobs ") || strings.Contains(c, "streams ") || strings.Contains(c, " put ") {
					if srv == nil {
						srv = testbin.Start(t, testbin.Options{})
					}
					env = append(env, "RUNNEL_SERVER="+srv.URL)
					break
				}
			}
			sh := func(line string) (string, error) {
				cmd := exec.Command("sh", "-c", line)
				cmd.Dir, cmd.Env = work, env
				o, err := cmd.CombinedOutput()
				return string(o), err
			}
			var produced bool
			for _, c := range h.commands {
				if strings.Contains(c, "jobs output") {
					var o string
					if !testutil.Within(60*time.Second, func() bool {
						o, _ = sh(c)
						return strings.Count(strings.TrimSpace(o), "\n") >= 1 && strings.Contains(o, "{")
					}) {
						t.Fatalf("%s: %s printed no rows:\n%s", name, c, o)
					}
					produced = true
					continue
				}
				o, err := sh(c)
				if err != nil {
					t.Fatalf("%s: %s: %v\n%s", name, c, err, o)
				}
				if strings.HasPrefix(c, "runnel run ") {
					if !strings.Contains(o, "{") {
						t.Fatalf("%s: %s printed no rows:\n%s", name, c, o)
					}
					produced = true
				}
			}
			for _, w := range h.files {
				if fi, err := os.Stat(filepath.Join(work, w)); err != nil || fi.Size() == 0 {
					t.Fatalf("%s says it writes %s in the current directory: %v", name, w, err)
				}
				produced = true
			}
			if !produced {
				t.Fatalf("%s: none of its commands shows output: %q", name, h.commands)
			}
		})
	}
}
