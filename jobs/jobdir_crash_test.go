package jobs

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/state"
)

// crash is what an armed failpoint panics with: the operation stops at
// that step, its files as the step left them, as if the process died
// there; the test then opens a new manager on the directory, as a restart
// does. (cmd/runnel's crash tests kill real processes at checkpoint steps;
// these steps are file operations, whose order is what a crash can cut.)
type crash struct{ step string }

// crashEnv is a lifeEnv whose manager crashes at the armed step.
type crashEnv struct {
	*lifeEnv
	dir   string
	log   *slog.Logger
	armed *atomic.Pointer[string]
}

func newCrashEnv(t *testing.T) *crashEnv {
	st, dir, log := managerStore(t)
	armed := &atomic.Pointer[string]{}
	cfg := ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log, Failpoint: func(step string) error {
		if p := armed.Load(); p != nil && *p == step {
			panic(crash{step})
		}
		return nil
	}}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &crashEnv{lifeEnv: &lifeEnv{t: t, st: st, m: m}, dir: cfg.Dir, log: log, armed: armed}
}

// crashIn runs op with the failpoint of step armed, checks that it
// crashed there, and restarts: the crashed manager is closed (none of its
// jobs runs, so closing writes nothing) and a new one opened.
func (e *crashEnv) crashIn(step string, op func() error) {
	e.t.Helper()
	e.armed.Store(&step)
	func() {
		defer func() {
			if r := recover(); r != (crash{step}) {
				e.t.Fatalf("want a crash at %s, got %v", step, r)
			}
		}()
		err := op()
		e.t.Fatalf("no crash at %s (err %v)", step, err)
	}()
	e.armed.Store(nil)
	e.m.Close()
	e.m = startManager(e.t, ManagerConfig{Store: e.st, Dir: e.dir, Logger: e.log})
}

// noneAside checks that recovery left nothing set aside.
func (e *crashEnv) noneAside() {
	e.t.Helper()
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range ents {
		if strings.HasSuffix(d.Name(), ".tmp") {
			e.t.Errorf("left after recovery: %s", d.Name())
		}
	}
}

// stoppedWithState runs the life job over 5 records and stops it (at a
// checkpoint).
func (e *crashEnv) stoppedWithState() {
	e.t.Helper()
	e.running(5)
	if err := e.m.Stop("life"); err != nil {
		e.t.Fatal(err)
	}
}

// TestDeleteCrash: a crash during a delete never brings the job back.
func TestDeleteCrash(t *testing.T) {
	e := newCrashEnv(t)
	e.stoppedWithState()
	e.crashIn("job-dir-aside", func() error { return e.m.Delete("life") })
	if _, err := e.m.Get("life"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("after a crash during its delete, the job: %v; want it gone", err)
	}
	e.noneAside()
}

// lifeJob2 is lifeJob with another window: the file that replaces it.
var lifeJob2 = strings.Replace(lifeJob, "tumbling: 1h", "tumbling: 30m", 1)

// TestSubmitReplaceCrash: a crash while a submit replaces a stopped job
// leaves the old job whole (file, state and checkpoints) or the new one
// whole (its file, starting from nothing), at every step.
func TestSubmitReplaceCrash(t *testing.T) {
	for _, c := range []struct {
		step    string
		replace bool // whether the new job is there after the restart
	}{
		{"job-dir-ready", false},
		{"job-dir-old-aside", true},
		{"job-dir-installed", true},
	} {
		t.Run(c.step, func(t *testing.T) {
			e := newCrashEnv(t)
			e.stoppedWithState()
			e.crashIn(c.step, func() error {
				_, err := e.m.SubmitWith([]byte(lifeJob2), SubmitOptions{Replace: true})
				return err
			})
			e.noneAside()
			in, err := e.m.Get("life")
			if err != nil {
				t.Fatal(err)
			}
			j, _ := e.m.job("life")
			if !c.replace {
				cp, _, err := state.ReadCheckpoint(vfs.Default, e.m.stateDir("life"), state.Latest)
				if string(j.Source) != lifeJob || in.State != StateStopped || err != nil {
					t.Fatalf("old job after the crash: state %s, latest checkpoint %+v (%v), file:\n%s", in.State, cp, err, j.Source)
				}
				// Its state is whole: resumed, it reads nothing again.
				if _, err := e.m.Resume("life"); err != nil {
					t.Fatal(err)
				}
				e.put(1)
				e.waitRead("life", 1)
				return
			}
			if string(j.Source) != lifeJob2 || in.State != string(engine.Running) {
				t.Fatalf("new job after the crash: state %s, file:\n%s", in.State, j.Source)
			}
			e.waitRead("life", 5) // from nothing: the 5 records again
		})
	}
}

// TestSubmitNewCrash: a crash while a new job's directory is readied
// leaves no directory without a job file; the job is there whole, started.
func TestSubmitNewCrash(t *testing.T) {
	e := newCrashEnv(t)
	e.crashIn("job-dir-ready", func() error { _, err := e.m.Submit([]byte(lifeJob)); return err })
	e.noneAside()
	if in, err := e.m.Get("life"); err != nil || in.State != string(engine.Running) {
		t.Fatalf("after the crash: %+v %v", in, err)
	}
}

// TestRestartCrash: a crash between the two renames that swap a restart's
// checkpoint in leaves the job with that checkpoint's state, not none.
func TestRestartCrash(t *testing.T) {
	e := newCrashEnv(t)
	sp := e.savepointAfter5()
	if err := e.m.Stop("life"); err != nil {
		t.Fatal(err)
	}
	e.crashIn("restart-state-aside", func() error {
		_, err := e.m.Restart("life", RestartFrom{Checkpoint: fmt.Sprint(sp.Epoch)})
		return err
	})
	if _, err := os.Stat(e.m.stateDir("life")); err != nil {
		t.Fatalf("the job's state after the crash: %v", err)
	}
	if cp, _, err := state.ReadCheckpoint(vfs.Default, e.m.stateDir("life"), state.Latest); err != nil || cp.Epoch != sp.Epoch {
		t.Fatalf("latest checkpoint after the crash: %+v %v; want epoch %d", cp, err, sp.Epoch)
	}
	if _, err := e.m.Resume("life"); err != nil {
		t.Fatal(err)
	}
	e.waitRead("life", 5) // the 5 records after the checkpoint, again
}

// TestSavepointCrash: a crash while a savepoint is written leaves no
// savepoint of that name, whole or in part.
func TestSavepointCrash(t *testing.T) {
	e := newCrashEnv(t)
	e.stoppedWithState()
	e.crashIn("savepoint-exported", func() error {
		_, err := e.m.Deploy("life", []byte(lifeJob2), DeploySavepoint)
		return err
	})
	if sps, err := e.m.Savepoints(); err != nil || len(sps) != 0 {
		t.Fatalf("savepoints after the crash: %+v %v", sps, err)
	}
	ents, _ := os.ReadDir(e.m.savepoints)
	for _, d := range ents {
		t.Errorf("left in the savepoints directory: %s", d.Name())
	}
	if in, err := e.m.Get("life"); err != nil || in.State != StateStopped {
		t.Fatalf("the job after a crash in its deploy: %+v %v; want it stopped, as it was", in, err)
	}
}

// TestSavepointNamesDiffer: savepoint names taken at once, in the same
// millisecond, differ (a savepoint's directory is its name).
func TestSavepointNamesDiffer(t *testing.T) {
	m := &Manager{}
	names := make(chan string, 800)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				names <- m.newSavepointName("job")
			}
		}()
	}
	wg.Wait()
	close(names)
	seen := map[string]bool{}
	for n := range names {
		if seen[n] {
			t.Fatalf("savepoint name %s given twice", n)
		}
		seen[n] = true
	}
}
