package testbin

import (
	"bytes"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// Serve runs `runnel serve --data data --addr ADDR --log-level warn` with
// extra flags on a free loopback address until the test ends (then it
// sends SIGTERM and waits), and returns scheme://ADDR once hc gets 200
// from /healthz. The test fails, with the server's output, if that takes
// more than 30 s.
func Serve(t testing.TB, data, scheme string, hc *http.Client, extra ...string) string {
	t.Helper()
	addr := FreeAddr(t)
	logs := &syncBuffer{}
	cmd := exec.Command(Runnel(t), append([]string{"serve", "--data", data, "--addr", addr, "--log-level", "warn"}, extra...)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	base := scheme + "://" + addr
	testutil.Eventually(t, 30*time.Second, func() bool {
		resp, err := hc.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "runnel serve %v did not become healthy:\n%s", extra, logs)
	return base
}

// syncBuffer is a bytes.Buffer a child process writes while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
