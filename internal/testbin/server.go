package testbin

import (
	"errors"
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

	"github.com/runnel-dev/runnel/internal/testutil"
)

// Options say how a Server runs `runnel serve`. The zero value is a server
// on a fresh data directory and a free loopback address, logging warnings
// and errors.
type Options struct {
	// Data is --data; "" is a fresh t.TempDir(). Restarts keep it.
	Data string
	// Addr is --addr; "" is a free loopback address. Restarts keep it,
	// so clients of the server reach the restarted process.
	Addr string
	// LogLevel is --log-level; "" is warn.
	LogLevel string
	// Flags come after serve's --data, --addr and --log-level.
	Flags []string
	// Env is added to the test process's environment.
	Env []string
	// Dir is the process's working directory; "" is the test's.
	Dir string
	// NoFile > 0 runs the server under `ulimit -n NoFile`.
	NoFile int
	// Scheme is the URL scheme, "http" or (with --tls-self-signed and a
	// Client that trusts the certificate) "https"; "" is http.
	Scheme string
	// Client sends the readiness checks and Do's requests; nil is
	// http.DefaultClient for requests and a client with a 5 s timeout for
	// the readiness checks.
	Client *http.Client
	// Token, when set, is sent as a bearer token with Do's requests.
	Token string
	// Ready is how long Start waits for /healthz to answer 200; 0 is 30 s.
	Ready time.Duration
}

// ErrExited is the error TryStart wraps when the process ended before it
// was ready.
var ErrExited = errors.New("runnel serve exited before it was ready")

// Server is a `runnel serve` process of a test: started, killed (SIGKILL),
// stopped (SIGTERM) and started again on the same data directory and
// address as often as the test likes. Its output is kept for the test to
// read, and its tail is logged when the test fails. The test's cleanup
// kills it.
//
// The Options may be changed between a kill or stop and the next start
// (a failpoint in Env, another flag), except Data and Addr.
type Server struct {
	Options
	// URL is scheme://Addr (0.0.0.0 read as 127.0.0.1): the base URL of
	// the server's API and of a Kinesis client.
	URL string

	t    testing.TB
	logs testutil.Buffer
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has ended
	mark int           // where in logs the latest start's output begins
}

// New returns a Server with the options filled in, not yet started.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Data == "" {
		o.Data = t.TempDir()
	}
	if o.Addr == "" {
		o.Addr = FreeAddr(t)
	}
	if o.Scheme == "" {
		o.Scheme = "http"
	}
	s := &Server{Options: o, t: t, URL: o.Scheme + "://" + strings.Replace(o.Addr, "0.0.0.0", "127.0.0.1", 1)}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("runnel serve output (tail):\n%s", testutil.Tail(s.AllLogs(), 6000))
		}
	})
	return s
}

// Start is New followed by Start. On a free address of its own choice
// that another process took before the server could (its port was free
// a moment before), it starts again on another.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	for try := 1; ; try++ {
		s := New(t, o)
		err := s.TryStart()
		if err == nil {
			return s
		}
		if o.Addr != "" || try == 3 || !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("runnel serve could not listen on %s, taken in between; trying another address", s.Addr)
	}
}

// Start starts the process and waits until it is ready; the test fails,
// with the process's output, when it does not get there.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.TryStart(); err != nil {
		s.t.Fatal(err)
	}
}

// TryStart starts the process and waits until /healthz answers 200. It
// returns an error wrapping ErrExited when the process ends first, and an
// error when it is not ready within Ready; either holds the output.
func (s *Server) TryStart() error {
	if s.Running() {
		return errors.New("runnel serve is already running")
	}
	cmd := s.command()
	cmd.Stdout, cmd.Stderr = &s.logs, &s.logs
	mark := s.logs.Len()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.mark = cmd, done, mark
	s.mu.Unlock()

	ready := s.Ready
	if ready <= 0 {
		ready = 30 * time.Second
	}
	exited := false
	ok := testutil.Within(ready, func() bool {
		select {
		case <-done:
			exited = true
			return true
		default:
		}
		return s.healthy() && listens(cmd.Process.Pid, s.Addr)
	})
	switch {
	case exited:
		return fmt.Errorf("%w (%v); output:\n%s", ErrExited, cmd.ProcessState, s.Logs())
	case !ok:
		return fmt.Errorf("runnel serve %v did not become healthy within %v; output:\n%s", s.Flags, ready, s.Logs())
	}
	return nil
}

func (s *Server) command() *exec.Cmd {
	level := s.LogLevel
	if level == "" {
		level = "warn"
	}
	args := append([]string{"serve", "--data", s.Data, "--addr", s.Addr, "--log-level", level}, s.Flags...)
	var cmd *exec.Cmd
	if s.NoFile > 0 {
		// exec keeps the shell's pid, so the process is the server's.
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		cmd = exec.Command("sh", "-c", fmt.Sprintf("ulimit -n %d && exec '%s' %s", s.NoFile, Runnel(s.t), strings.Join(q, " ")))
	} else {
		cmd = exec.Command(Runnel(s.t), args...)
	}
	if len(s.Env) > 0 {
		cmd.Env = append(os.Environ(), s.Env...)
	}
	cmd.Dir = s.Dir
	return cmd
}

// readyClient sends the readiness checks of a server without a Client.
var readyClient = &http.Client{Timeout: 5 * time.Second}

func (s *Server) healthy() bool { return healthy(s.Client, readyClient, s.URL) }

// Healthy says whether /healthz answers 200 now (asked with Client, or
// http.DefaultClient).
func (s *Server) Healthy() bool { return healthy(s.Client, http.DefaultClient, s.URL) }

func healthy(hc, fallback *http.Client, base string) bool {
	if hc == nil {
		hc = fallback
	}
	resp, err := hc.Get(base + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// Running says whether the latest process started is still running.
func (s *Server) Running() bool {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Exited is closed when the latest process started has ended (by a kill,
// a stop or by itself); nil before the first start.
func (s *Server) Exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// Pid is the latest process's id.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// Signal sends sig to the process when it runs.
func (s *Server) Signal(sig os.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if s.Running() {
		cmd.Process.Signal(sig)
	}
}

// Kill kills the process (SIGKILL, as a crash) and waits until it has
// ended; nothing when it does not run.
func (s *Server) Kill() {
	if !s.Running() {
		return
	}
	s.Signal(syscall.SIGKILL)
	<-s.Exited()
}

// Stop stops the process the way an operator does (SIGTERM) and waits
// until it has ended. A process that has not ended 30 s later is killed,
// and Stop says so.
func (s *Server) Stop() error {
	if !s.Running() {
		return nil
	}
	s.Signal(syscall.SIGTERM)
	select {
	case <-s.Exited():
		return nil
	case <-time.After(30 * time.Second):
		s.Kill()
		return errors.New("runnel serve did not stop within 30 s of SIGTERM; killed")
	}
}

// Restart kills the process and starts it again on the same data
// directory and address.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.Start()
}

// Logs returns the output of the latest process started.
func (s *Server) Logs() string {
	s.mu.Lock()
	mark := s.mark
	s.mu.Unlock()
	return s.logs.String()[mark:]
}

// AllLogs returns the output of every process started, in order.
func (s *Server) AllLogs() string { return s.logs.String() }

// Request is a request to path on the server, with the bearer token of
// Options.Token when set and contentType when not "".
func (s *Server) Request(method, path, contentType string, body io.Reader) *http.Request {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	return req
}

// Send sends req with the server's Client and returns the status, headers
// and body; a request that gets no answer fails the test.
func (s *Server) Send(req *http.Request) (int, http.Header, []byte) {
	s.t.Helper()
	hc := s.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// Do sends a request with body (of contentType, when not "") and returns
// the status and body.
func (s *Server) Do(method, path, contentType, body string) (int, []byte) {
	s.t.Helper()
	st, _, b := s.Send(s.Request(method, path, contentType, strings.NewReader(body)))
	return st, b
}

// CreateStream creates a stream of shards shards through the REST API;
// any answer but 201 fails the test.
func (s *Server) CreateStream(name string, shards int) {
	s.t.Helper()
	body := fmt.Sprintf(`{"name":%q,"shards":%d}`, name, shards)
	if st, b := s.Do("POST", "/api/v1/streams", "application/json", body); st != 201 {
		s.t.Fatalf("create stream %s: %d %s", name, st, b)
	}
}

// CLI runs the runnel command ARGS --server URL and returns its combined
// output and its error (an *exec.ExitError when it exits non-zero).
func (s *Server) CLI(args ...string) (string, error) { return s.CLIInput("", args...) }

// CLIInput is CLI with stdin as the command's standard input.
func (s *Server) CLIInput(stdin string, args ...string) (string, error) {
	s.t.Helper()
	cmd := exec.Command(Runnel(s.t), append(args, "--server", s.URL)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
