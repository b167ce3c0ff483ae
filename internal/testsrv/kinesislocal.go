package testsrv

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
)

// KinesisLocal is kinesis-local from npm (etspaceman/kinesis-mock built
// for Node): an implementation of the Kinesis API independent of Runnel's,
// so the Kinesis source is not tested only against ourselves. .ci/run
// installs it (npm ci in interop/kinesis-local, a pinned version).
type KinesisLocal struct {
	// URL is its plain-HTTP endpoint.
	URL string
	cmd *exec.Cmd
}

// Signal sends sig to the process: SIGSTOP and SIGCONT pause and resume
// it. It keeps its streams in memory only, so a test pauses it and never
// kills it.
func (k *KinesisLocal) Signal(sig os.Signal) { k.cmd.Process.Signal(sig) }

// StartKinesisLocal starts kinesis-local on free loopback ports, with
// shard operations taking durations (such as SPLIT_SHARD_DURATION=100ms)
// from env; the test's cleanup kills it.
func StartKinesisLocal(t testing.TB, env ...string) *KinesisLocal {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(self), "..", "..", "interop", "kinesis-local", "node_modules", "kinesis-local")
	if _, err := os.Stat(filepath.Join(dir, "main.js")); err != nil {
		t.Fatalf("kinesis-local is not installed: (cd interop/kinesis-local && npm ci), see .ci/run: %v", err)
	}
	plain := testbin.FreeAddr(t)
	port := plain[strings.LastIndexByte(plain, ':')+1:]
	tls := testbin.FreeAddr(t)
	cmd := exec.Command("node", "main.js")
	cmd.Dir = dir // it reads server.json from its working directory
	cmd.Env = append(os.Environ(), append([]string{"KINESIS_MOCK_PLAIN_PORT=" + port,
		"KINESIS_MOCK_TLS_PORT=" + tls[strings.LastIndexByte(tls, ':')+1:], "LOG_LEVEL=INFO"}, env...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Starting Kinesis Plain Mock Service on port "+port) {
				ready <- true
				break
			}
		}
		close(ready)
		io.Copy(io.Discard, out)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("kinesis-local ended before it listened")
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("kinesis-local did not listen within 2m")
	}
	return &KinesisLocal{URL: "http://127.0.0.1:" + port, cmd: cmd}
}
