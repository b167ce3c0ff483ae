package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// limited is a runnel serve process started with extra flags, optionally
// under a shell-set open-file limit.
type limited struct {
	t      *testing.T
	bin    string
	data   string
	addr   string
	args   []string
	nofile int // > 0: run under `ulimit -n nofile`
	cmd    *exec.Cmd
	logs   *lockedBuffer
	// client sends do and kinesis requests (nil: http.DefaultClient).
	client *http.Client
	exited chan struct{}
}

func newLimited(t *testing.T, data string, args ...string) *limited {
	return &limited{t: t, bin: runnelBinary(t), data: data, addr: freeAddr(t), args: args}
}

func (s *limited) command() *exec.Cmd {
	args := append([]string{"serve", "--data", s.data, "--addr", s.addr, "--log-level", "info"}, s.args...)
	if s.nofile > 0 {
		// exec keeps the shell's pid, so s.cmd.Process is the server.
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		return exec.Command("sh", "-c", fmt.Sprintf("ulimit -n %d && exec '%s' %s", s.nofile, s.bin, strings.Join(q, " ")))
	}
	return exec.Command(s.bin, args...)
}

// start starts the server and waits until it is healthy.
func (s *limited) start() {
	s.t.Helper()
	if err := s.tryStart(); err != nil {
		s.t.Fatal(err)
	}
}

// tryStart starts the server; it fails when the server exits or does not
// become healthy.
func (s *limited) tryStart() error {
	s.cmd = s.command()
	s.logs = &lockedBuffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	cmd, exited := s.cmd, s.exited
	go func() { cmd.Wait(); close(exited) }()
	s.t.Cleanup(func() { s.stopWith(syscall.SIGKILL) })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if healthy(s.addr) {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("server exited: %v; logs:\n%s", cmd.ProcessState, s.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("server did not become healthy; logs:\n%s", s.logs.String())
}

// stop stops the server cleanly (SIGTERM) and waits for it.
func (s *limited) stop() { s.stopWith(syscall.SIGTERM) }

func (s *limited) stopWith(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *limited) httpClient() *http.Client {
	if s.client != nil {
		return s.client
	}
	return http.DefaultClient
}

func (s *limited) url(path string) string { return "http://" + s.addr + path }

// do sends a JSON request and returns the status, headers and body.
func (s *limited) do(method, path string, body any) (int, http.Header, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url(path), rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.httpClient().Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// kinesis sends a Kinesis API call and returns the status and body.
func (s *limited) kinesis(op string, body any) (int, []byte) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.url("/"), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	sum := sha256.Sum256(b)
	creds := aws.Credentials{AccessKeyID: "AKIDATTACKTEST", SecretAccessKey: "attack-test-secret"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", time.Now()); err != nil {
		s.t.Fatal(err)
	}
	resp, err := s.httpClient().Do(req)
	if err != nil {
		s.t.Fatalf("kinesis %s: %v", op, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// createStream creates a stream over REST.
func (s *limited) createStream(name string, shards int) {
	s.t.Helper()
	st, _, b := s.do("POST", "/api/v1/streams", map[string]any{"name": name, "shards": shards})
	if st != 201 {
		s.t.Fatalf("create stream %s: %d %s", name, st, b)
	}
}

// readAll reads every record of a stream over REST, shard by shard.
func (s *limited) readAll(name string) map[string]bool {
	s.t.Helper()
	st, _, b := s.do("GET", "/api/v1/streams/"+name, nil)
	if st != 200 {
		s.t.Fatalf("describe %s: %d %s", name, st, b)
	}
	var d struct {
		Shards []struct {
			ID string `json:"id"`
		} `json:"shards"`
	}
	json.Unmarshal(b, &d)
	got := map[string]bool{}
	for _, sh := range d.Shards {
		q := "from=trim_horizon"
		for {
			st, _, b := s.do("GET", fmt.Sprintf("/api/v1/streams/%s/records?shard=%s&%s&limit=10000", name, sh.ID, q), nil)
			if st != 200 {
				s.t.Fatalf("read %s/%s: %d %s", name, sh.ID, st, b)
			}
			var page struct {
				Records []struct {
					Data string `json:"data"`
				} `json:"records"`
				Next uint64 `json:"next_position"`
			}
			if err := json.Unmarshal(b, &page); err != nil {
				s.t.Fatalf("read %s/%s: %v: %s", name, sh.ID, err, b)
			}
			for _, r := range page.Records {
				got[r.Data] = true
			}
			if len(page.Records) == 0 {
				break
			}
			q = fmt.Sprintf("position=%d", page.Next)
		}
	}
	return got
}

// openFDs counts the server process's open file descriptors.
func (s *limited) openFDs() int {
	s.t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cmd.Process.Pid))
	if err != nil {
		s.t.Fatal(err)
	}
	return len(ents)
}

// countLines counts the log lines containing substr.
func countLines(logs, substr string) int {
	n := 0
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}
