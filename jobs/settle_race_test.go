package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestResumeDuringDeleteSettling: a Resume of a stopped job made while
// its Delete settles what the last run staged (which may wait on a sink's
// target for minutes) does not start a run that the Delete then removes
// from under it: one of the two is refused, and a job the Delete removed
// has no run and no directory.
func TestResumeDuringDeleteSettling(t *testing.T) {
	e := newLifeEnv(t)
	if _, err := e.m.Submit([]byte(lifeJob)); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Stop("life"); err != nil {
		t.Fatal(err)
	}
	// As a run that did not end at a committed checkpoint leaves it.
	if err := os.WriteFile(filepath.Join(e.m.dir, "life", stagedMarker), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	settling, release := make(chan struct{}), make(chan struct{})
	settleHook = func(*Job) {
		close(settling)
		<-release
	}
	t.Cleanup(func() { settleHook = nil })
	j, err := e.m.job("life")
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	stoppedRun := j.mu.run
	j.mu.Unlock()

	deleted := make(chan error, 1)
	go func() { deleted <- e.m.Delete("life") }()
	<-settling
	resumed := make(chan error, 1)
	go func() {
		_, err := e.m.Resume("life")
		resumed <- err
	}()
	close(release)
	derr, rerr := <-deleted, <-resumed
	t.Logf("delete: %v; resume: %v", derr, rerr)
	if derr == nil && rerr == nil {
		t.Fatal("both the delete and a resume made while it settled succeeded: the resumed run is the deleted job's")
	}
	if derr == nil {
		if _, err := e.m.Get("life"); !errors.Is(err, ErrJobNotFound) {
			t.Fatalf("deleted job: %v", err)
		}
		j.mu.Lock()
		run := j.mu.run
		j.mu.Unlock()
		if run != stoppedRun {
			t.Fatal("the deleted job has a new run")
		}
		if _, err := os.Stat(filepath.Join(e.m.dir, "life")); !os.IsNotExist(err) {
			t.Fatalf("the deleted job's directory: %v", err)
		}
	}
}
