package kinesisbench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/web/kinesis"
)

// BenchIngest runs each server it measures in a child process, a copy of
// the running binary, so that the server's CPU time is measured in the
// server (getrusage there) instead of estimated from the clients'.

// benchServerEnv, when set, makes a process a benchmark server: its value
// is a JSON benchServerSpec.
const benchServerEnv = "RUNNEL_KINESIS_BENCH_SERVER"

// benchStatsPath answers the server process's CPU time so far, in
// nanoseconds, then its store's commit groups and syncs so far (0 0 for
// the decode-and-discard server), separated by spaces; every other path
// goes to the server under test.
const benchStatsPath = "/bench/stats"

type benchServerSpec struct {
	// Discard selects the decode-and-discard server; otherwise the API
	// handler over a durable store in Dir.
	Discard bool
	Dir     string
	// CPUProfile, when set, is where the server writes a CPU profile of
	// its whole run.
	CPUProfile string
	// Auth and AuthDir: see BenchConfig.
	Auth    string `json:",omitempty"`
	AuthDir string `json:",omitempty"`
}

// BenchServerMain makes this process a benchmark server and exits when
// BenchIngest started it as one; otherwise it returns at once. A binary
// that calls BenchIngest calls this first (runnel from an init function,
// this package's tests from TestMain).
func BenchServerMain() {
	spec := os.Getenv(benchServerEnv)
	if spec == "" {
		return
	}
	if err := runBenchServer(spec, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kinesis bench server:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runBenchServer serves on a loopback port it prints to out, until in
// ends (the parent closed it, or died).
func runBenchServer(specJSON string, in io.Reader, out io.Writer) error {
	var spec benchServerSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("read %s: %w", benchServerEnv, err)
	}
	if spec.CPUProfile != "" {
		f, err := os.Create(spec.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var h http.Handler
	var store *streams.Store
	if spec.Discard {
		h = discardHandler()
	} else {
		var err error
		if store, err = streams.Open(spec.Dir, streams.Options{}); err != nil {
			return err
		}
		defer store.Close()
		h = kinesis.New(store, kinesis.Options{CreateDelay: -1})
		if spec.Auth != "" {
			if BenchWrap == nil {
				return errors.New("bench server: Auth needs BenchWrap set")
			}
			var err error
			if h, err = BenchWrap(h, store, spec.Auth == "on", spec.AuthDir); err != nil {
				return err
			}
		}
		h = kinesis.H2C(h)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == benchStatsPath {
			var ws streams.WriteStats
			if store != nil {
				ws = store.WriteStats()
			}
			fmt.Fprintf(w, "%d %d %d", int64(cpuclock.Process()), ws.Groups, ws.Syncs)
			return
		}
		h.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	if _, err := fmt.Fprintln(out, ln.Addr().String()); err != nil {
		srv.Close()
		return err
	}
	io.Copy(io.Discard, in)
	return srv.Close()
}

// benchServer is a benchmark server process.
type benchServer struct {
	url   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	hc    *http.Client
}

// startBenchServer starts a copy of this binary as a benchmark server.
func startBenchServer(ctx context.Context, spec benchServerSpec) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start bench server: %w", err)
	}
	b, _ := json.Marshal(spec)
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), benchServerEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bench server: %w", err)
	}
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
	}()
	s := &benchServer{cmd: cmd, stdin: stdin, hc: &http.Client{}}
	select {
	case a := <-addr:
		if a == "" {
			s.stop()
			return nil, errors.New("start bench server: it printed no address (does this binary call kinesis.BenchServerMain first?)")
		}
		s.url = "http://" + a
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, errors.New("start bench server: no address after 30 s")
	}
	return s, nil
}

// serverStats is what a bench server reports of itself.
type serverStats struct {
	CPU           time.Duration // the process's CPU time so far
	Groups, Syncs int64         // its store's commit groups and syncs so far
}

// stats asks the server for its CPU time and write counts.
func (s *benchServer) stats(ctx context.Context) (serverStats, error) {
	var st serverStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+benchStatsPath, nil)
	if err != nil {
		return st, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return st, fmt.Errorf("ask the bench server for its CPU time: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	var cpu int64
	if _, err := fmt.Sscan(string(b), &cpu, &st.Groups, &st.Syncs); err != nil {
		return st, fmt.Errorf("bench server stats %q: %w", b, err)
	}
	st.CPU = time.Duration(cpu)
	return st, nil
}

// stop ends the server (it closes its store) and waits for it.
func (s *benchServer) stop() error {
	s.stdin.Close()
	return s.cmd.Wait()
}
