package web

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"testing"
)

// blockingListener fails its first Accept with EMFILE, then, as a real
// listener with no connection waiting, blocks until it is closed.
type blockingListener struct {
	calls   int
	closed  chan struct{}
	waiting chan struct{}
}

func (l *blockingListener) Accept() (net.Conn, error) {
	l.calls++
	if l.calls == 1 {
		return nil, &net.OpError{Op: "accept", Err: syscall.EMFILE}
	}
	close(l.waiting)
	<-l.closed
	return nil, net.ErrClosed
}

func (l *blockingListener) Close() error   { close(l.closed); return nil }
func (l *blockingListener) Addr() net.Addr { return &net.TCPAddr{} }

// Out of descriptors, the listener accepts with its reserve: a
// connection waiting then is served once (descriptors were freed, the
// reserve is taken again); a close while it waits for one ends Accept
// with the close's error and leaves no reserve held.
func TestAcceptWithReserve(t *testing.T) {
	g := NewGuard(Limits{}, slog.New(slog.DiscardHandler))
	fl := &failingListener{err: &net.OpError{Op: "accept", Err: syscall.EMFILE}, n: 1}
	l := g.Listener(fl, nil).(*guardListener)
	if !l.holdsReserve() {
		t.Fatal("no reserve descriptor held")
	}
	c, err := l.Accept()
	if err != nil || c == nil {
		t.Fatalf("accept with the reserve: %v", err)
	}
	c.Close()
	if fl.calls != 2 || g.acceptErrors.Load() != 1 || g.refusedConns.Load() != 0 || !l.holdsReserve() {
		t.Fatalf("%d accept calls, %d errors, %d refused, reserve held %v; want 2, 1, 0, true",
			fl.calls, g.acceptErrors.Load(), g.refusedConns.Load(), l.holdsReserve())
	}
	if g.conns.Load() != 0 {
		t.Fatalf("%d connections counted after the one served closed", g.conns.Load())
	}

	bl := &blockingListener{closed: make(chan struct{}), waiting: make(chan struct{})}
	l = g.Listener(bl, nil).(*guardListener)
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	<-bl.waiting
	if l.holdsReserve() {
		t.Fatal("the reserve is held while its descriptor accepts")
	}
	l.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if l.holdsReserve() {
		t.Fatal("a closed listener holds its reserve descriptor")
	}
}
