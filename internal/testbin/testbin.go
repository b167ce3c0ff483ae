// Package testbin gives tests the real runnel binary, a free loopback
// address, and Server: the one way a test runs `runnel serve` (options for
// the data directory, flags, environment, token and open-file limit;
// kill -9, stop and restart on the same data directory; the output kept
// and the readiness wait). Only tests import it: the crash, attack and
// real-client tests run `runnel serve` as users do.
package testbin

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var runnelBin = Binary{Pkg: "github.com/runnel-dev/runnel/cmd/runnel"}

// Runnel builds cmd/runnel once per test process and returns its path.
func Runnel(t testing.TB) string {
	t.Helper()
	return runnelBin.Path(t)
}

// Binary is a Go command that tests run as a process, built once per
// test process.
type Binary struct {
	// Pkg is the command's import path.
	Pkg string

	once sync.Once
	path string
	err  error
}

var removeStale sync.Once

// Path builds the command, the first time it is called in the test
// process, into a directory of its own (which a later test process
// removes once this one has ended) and returns the executable's path.
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		removeStale.Do(removeStaleBuilds)
		dir, err := os.MkdirTemp("", fmt.Sprintf("runnel-bin-%d-", os.Getpid()))
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, path.Base(b.Pkg))
		out, err := exec.Command("go", "build", "-o", b.path, b.Pkg).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", b.Pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// removeStaleBuilds removes the binaries built by test processes that
// have ended: a test binary cannot remove its own build when it is killed
// or times out, so each build clears up after the ones before it. A
// directory is named runnel-bin-PID-RANDOM by the process that built it.
func removeStaleBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "runnel-bin-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "runnel-bin-%d-", &pid); err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if processRuns(pid) {
			continue
		}
		os.RemoveAll(d)
	}
}

// processRuns reports whether a process with this id exists.
func processRuns(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TrustOnRead is a transport for a server started with --tls-self-signed:
// it adds the certificate the server writes to File into Pool (the pool of
// Next's TLS config) once the file is there, then sends requests on to
// Next. Until then each request fails, so a health poll simply retries.
type TrustOnRead struct {
	File string
	Pool *x509.CertPool
	Next http.RoundTripper
	done bool
}

func (r *TrustOnRead) RoundTrip(req *http.Request) (*http.Response, error) {
	if !r.done {
		b, err := os.ReadFile(r.File)
		if err != nil || !r.Pool.AppendCertsFromPEM(b) {
			return nil, errors.New("certificate not written yet")
		}
		r.done = true
	}
	return r.Next.RoundTrip(req)
}

// Run runs the runnel binary with args, stdin as its standard input and
// env added to the test's environment, and returns its standard output,
// standard error and exit code. A binary that cannot be run fails the test.
func Run(t testing.TB, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(Runnel(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}
