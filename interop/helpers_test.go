// Package interop holds scripted sessions of real Kinesis clients (the AWS
// CLI, boto3) and the tests that run them, and the conformance suite, against
// the real runnel binary.
package interop

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// runnelBinary compiles cmd/runnel once per test binary run.
func runnelBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "runnel-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "runnel")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, "../cmd/runnel").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs runnel serve with extra flags until the test ends and
// returns its base URL once hc gets 200 from /healthz.
func startServe(t *testing.T, data, scheme string, hc *http.Client, extra ...string) string {
	t.Helper()
	addr := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(runnelBinary(t), append([]string{"serve", "--data", data, "--addr", addr, "--log-level", "warn"}, extra...)...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	base := scheme + "://" + addr
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := hc.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
	}
	t.Fatalf("runnel serve %v did not become healthy:\n%s", extra, logs.String())
	return ""
}

// trustOnRead adds the server's self-signed certificate to pool once the
// server has written it, then sends requests on.
type trustOnRead struct {
	file string
	pool *x509.CertPool
	next http.RoundTripper
	done bool
}

func (r *trustOnRead) RoundTrip(req *http.Request) (*http.Response, error) {
	if !r.done {
		b, err := os.ReadFile(r.file)
		if err != nil || !r.pool.AppendCertsFromPEM(b) {
			return nil, errors.New("certificate not written yet")
		}
		r.done = true
	}
	return r.next.RoundTrip(req)
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
