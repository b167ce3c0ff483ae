package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A build left by a test process that has ended is removed by the next
// build; one whose process still runs is kept.
func TestRemoveStaleBuilds(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	ended := cmd.Process.Pid
	dead, err := os.MkdirTemp("", fmt.Sprintf("runnel-bin-%d-", ended))
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dead)
	os.WriteFile(filepath.Join(dead, "runnel"), []byte("x"), 0o755)
	live, err := os.MkdirTemp("", fmt.Sprintf("runnel-bin-%d-", os.Getppid()))
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(live)

	removeStaleBuilds()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the build of ended process %d is still there (%v)", ended, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the build of running process %d was removed: %v", os.Getppid(), err)
	}
}
