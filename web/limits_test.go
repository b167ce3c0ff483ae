package web

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
)

// failingListener fails Accept with err n times, then returns a pipe end.
type failingListener struct {
	net.Listener
	err   error
	n     int
	calls int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.calls++
	if l.calls <= l.n {
		return nil, l.err
	}
	c, _ := net.Pipe()
	return c, nil
}

func (l *failingListener) Close() error   { return nil }
func (l *failingListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestAcceptBacksOff: running out of file descriptors while accepting
// logs one ERROR, backs off and retries until accepting works, without
// handing the error to the server (which would log every attempt); other
// errors are returned.
func TestAcceptBacksOff(t *testing.T) {
	var logs bytes.Buffer
	g := NewGuard(Limits{}, slog.New(slog.NewTextHandler(&logs, nil)))
	fl := &failingListener{err: &net.OpError{Op: "accept", Err: syscall.EMFILE}, n: 4}
	c, err := g.Listener(fl, nil).Accept()
	if err != nil || c == nil {
		t.Fatalf("accept after EMFILE: %v", err)
	}
	c.Close()
	if fl.calls != 5 || g.acceptErrors.Load() != 4 {
		t.Fatalf("%d accept calls, %d errors counted; want 5 and 4", fl.calls, g.acceptErrors.Load())
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "accepting connections again") {
		t.Fatalf("want one ERROR and a line when accepting works again:\n%s", logs.String())
	}
	closed := &failingListener{err: net.ErrClosed, n: 1}
	if _, err := g.Listener(closed, nil).Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a closed listener: %v", err)
	}
}
