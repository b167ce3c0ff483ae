// Package testbin gives tests the real runnel binary and a free loopback
// address to start it on. Only tests import it: the crash, attack and
// real-client tests run `runnel serve` as users do.
package testbin

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var build struct {
	sync.Once
	path string
	err  error
}

// Runnel builds cmd/runnel once per test process and returns its path.
func Runnel(t testing.TB) string {
	t.Helper()
	build.Do(func() {
		dir, err := os.MkdirTemp("", "runnel-bin")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "runnel")
		out, err := exec.Command("go", "build", "-o", build.path, "github.com/runnel-dev/runnel/cmd/runnel").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
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
