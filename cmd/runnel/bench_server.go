package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// benchServer is a `runnel serve` child process that a whole-system
// benchmark drives over loopback.
type benchServer struct {
	cmd  *exec.Cmd
	addr string // host:port
	url  string // http://addr
	logs *bytes.Buffer
	tmp  string // a data directory made for this server, removed by stop
}

// startBenchServer starts `runnel serve` on data with extra flags and waits
// until it answers /healthz.
func startBenchServer(data string, extra []string) (*benchServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &benchServer{addr: addr, url: "http://" + addr, logs: &bytes.Buffer{}}
	s.cmd = exec.Command(self, append([]string{"serve", "--data", data, "--addr", addr, "--log-level", "warn"}, extra...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			return s, nil
		}
	}
	s.stop()
	return nil, fmt.Errorf("runnel serve did not start: %s", s.logs.String())
}

// startBenchServerIn starts a server on a fresh data directory made in dir.
func startBenchServerIn(dir string) (*benchServer, error) {
	data, err := os.MkdirTemp(dir, "runnel-bench")
	if err != nil {
		return nil, err
	}
	s, err := startBenchServer(data, nil)
	if err != nil {
		os.RemoveAll(data)
		return nil, err
	}
	s.tmp = data
	return s, nil
}

func (s *benchServer) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
	}
}
