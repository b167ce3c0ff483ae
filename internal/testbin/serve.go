package testbin

import (
	"net/http"
	"testing"
)

// Serve runs `runnel serve --data data --addr ADDR --log-level warn` with
// extra flags on a free loopback address until the test ends (then it
// sends SIGTERM and waits), and returns scheme://ADDR once hc gets 200
// from /healthz. The test fails, with the server's output, if that takes
// more than 30 s.
func Serve(t testing.TB, data, scheme string, hc *http.Client, extra ...string) string {
	t.Helper()
	s := Start(t, Options{Data: data, Scheme: scheme, Client: hc, Flags: extra})
	t.Cleanup(func() { s.Stop() })
	return s.URL
}
