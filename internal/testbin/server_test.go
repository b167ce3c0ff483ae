package testbin

import (
	"errors"
	"strings"
	"testing"
)

// TestServerRestartKeepsDataAndAddress kills the server (SIGKILL) and
// starts it again: the restarted process answers on the same address with
// the stream created before the kill, and Logs holds only its own output
// while AllLogs holds both processes'.
func TestServerRestartKeepsDataAndAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	s := Start(t, Options{LogLevel: "info"})
	if st, b := s.Do("POST", "/api/v1/streams", "application/json", `{"name":"kept","shards":1}`); st != 201 {
		t.Fatalf("create stream: %d %s", st, b)
	}
	first := s.Exited()
	s.Kill()
	select {
	case <-first:
	default:
		t.Fatal("Kill returned before the process ended")
	}
	if s.Running() || s.Healthy() {
		t.Fatal("the server still runs after Kill")
	}
	s.Start()
	if st, b := s.Do("GET", "/api/v1/streams/kept", "", ""); st != 200 {
		t.Fatalf("the stream created before the kill: %d %s", st, b)
	}
	if n := strings.Count(s.Logs(), "msg=listening"); n != 1 {
		t.Errorf("Logs holds %d listening lines, want the restarted process's one:\n%s", n, s.Logs())
	}
	if n := strings.Count(s.AllLogs(), "msg=listening"); n != 2 {
		t.Errorf("AllLogs holds %d listening lines, want both processes':\n%s", n, s.AllLogs())
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatal("the server still runs after Stop")
	}
}

// TestServerStartReportsExit starts a server that cannot start: TryStart
// says it exited, with its output, rather than waiting out the readiness
// time.
func TestServerStartReportsExit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	s := New(t, Options{Flags: []string{"--no-such-flag"}})
	err := s.TryStart()
	if !errors.Is(err, ErrExited) {
		t.Fatalf("TryStart: %v; want ErrExited", err)
	}
	if !strings.Contains(err.Error(), "no-such-flag") {
		t.Errorf("the error does not hold the server's output: %v", err)
	}
}

// TestServerNoFile runs the server under a low open-file limit: the
// server sees it and warns at start.
func TestServerNoFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	s := Start(t, Options{NoFile: 200, Flags: []string{"--max-shards", "400"}})
	if !strings.Contains(s.Logs(), "open-file limit is too low") {
		t.Errorf("no warning about the low open-file limit; the limit did not reach the server:\n%s", s.Logs())
	}
}
