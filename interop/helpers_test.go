// Package interop holds scripted sessions of real Kinesis clients (the AWS
// CLI, boto3) and the tests that run them, and the conformance suite, against
// the real runnel binary.
package interop

import (
	"net/http"
	"testing"

	"github.com/runnel-dev/runnel/internal/testbin"
)

func runnelBinary(t *testing.T) string { return testbin.Runnel(t) }

func freeAddr(t *testing.T) string { return testbin.FreeAddr(t) }

// startServe runs runnel serve with extra flags until the test ends and
// returns its base URL once hc gets 200 from /healthz.
func startServe(t *testing.T, data, scheme string, hc *http.Client, extra ...string) string {
	return testbin.Serve(t, data, scheme, hc, extra...)
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
