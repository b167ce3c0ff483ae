package web

// A process out of file descriptors cannot accept a connection: it waits
// in the listen backlog, and its client with it, until some descriptor
// is closed (an idle connection timing out, say). The guard's listener
// keeps one descriptor in reserve (an open null device): when accepting
// fails for want of descriptors it gives the reserve up and accepts one
// waiting connection with it. If the reserve can be taken again at once,
// descriptors were freed meanwhile and the connection is served;
// otherwise the connection is answered 503, saying why, and closed, and
// the reserve taken again.

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"
)

// noFilesResponse answers a connection accepted with the reserve.
var noFilesResponse = func() string {
	body := `{"error":{"code":"unavailable","message":"the server has no file descriptors left (its open-file limit); retry later"}}` + "\n"
	return "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}()

// outOfFiles reports whether an accept failed for want of descriptors.
func outOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// takeReserve opens the reserve descriptor if it is not held (and the
// listener is not closed).
func (l *guardListener) takeReserve() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reserve == nil && !l.closed {
		if f, err := os.Open(os.DevNull); err == nil {
			l.reserve = f
		}
	}
}

// giveReserve closes the reserve descriptor; false when none was held.
func (l *guardListener) giveReserve() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reserve == nil {
		return false
	}
	l.reserve.Close()
	l.reserve = nil
	return true
}

// holdsReserve reports whether the reserve descriptor is held.
func (l *guardListener) holdsReserve() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reserve != nil
}

// Close closes the listener and gives the reserve up.
func (l *guardListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.giveReserve()
	return err
}

// acceptWithReserve accepts one connection with the reserve descriptor
// after an accept failed for want of descriptors: c is a connection to
// serve (descriptors were freed), or nil when none was accepted or the
// one accepted was answered 503 and closed (shed). err is the accept's.
func (l *guardListener) acceptWithReserve() (c net.Conn, shed bool, err error) {
	if !l.giveReserve() {
		l.takeReserve()
		return nil, false, nil
	}
	c, err = l.Listener.Accept()
	l.takeReserve()
	if err != nil || l.holdsReserve() {
		return c, false, err
	}
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = io.WriteString(c, noFilesResponse)
	c.Close()
	l.takeReserve()
	l.g.refusedConns.Add(1)
	return nil, true, nil
}
