// Package interop holds scripted sessions of real Kinesis clients (the AWS
// CLI, boto3) and the tests that run them, and the conformance suite, against
// the real runnel binary.
package interop

import (
	"bytes"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

func runnelBinary(t *testing.T) string { return testbin.Runnel(t) }

func freeAddr(t *testing.T) string { return testbin.FreeAddr(t) }

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
	testutil.Eventually(t, 30*time.Second, func() bool {
		resp, err := hc.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "runnel serve %v did not become healthy:\n%s", extra, &logs)
	return base
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
