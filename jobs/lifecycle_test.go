package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

const lifeJob = `name: life
source: {stream: life-in}
operators:
  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 1h
      aggregate: {views: count}
sinks:
  - {id: board, dashboard: {}}
`

type lifeEnv struct {
	t  *testing.T
	st *streams.Store
	m  *Manager
}

func newLifeEnv(t *testing.T) *lifeEnv {
	st, dir, log := managerStore(t)
	m := startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log})
	return &lifeEnv{t: t, st: st, m: m}
}

func (e *lifeEnv) put(n int) {
	e.t.Helper()
	var recs []streams.PutRecord
	for i := range n {
		recs = append(recs, streams.PutRecord{PartitionKey: fmt.Sprint(i), Data: fmt.Appendf(nil, `{"page":"/p/%d"}`, i%2)})
	}
	if _, err := e.st.Put(context.Background(), "life-in", recs); err != nil {
		e.t.Fatal(err)
	}
}

// running submits the life job and waits until it has read n records
// put for it.
func (e *lifeEnv) running(n int) {
	e.t.Helper()
	if _, err := e.m.Submit([]byte(lifeJob)); err != nil {
		e.t.Fatal(err)
	}
	e.put(n)
	e.waitRead("life", int64(n))
}

// savepointAfter5 runs the life job over 5 records, takes a savepoint and
// lets it read 5 more.
func (e *lifeEnv) savepointAfter5() SavepointInfo {
	e.t.Helper()
	e.running(5)
	sp, err := e.m.Savepoint("life", false)
	if err != nil {
		e.t.Fatal(err)
	}
	e.put(5)
	e.waitRead("life", 10)
	return sp
}

// read is how many records the job's current run has read.
func (e *lifeEnv) read(id string) int64 {
	j, err := e.m.job(id)
	if err != nil {
		e.t.Fatal(err)
	}
	j.mu.Lock()
	rj := j.mu.run
	j.mu.Unlock()
	if rj == nil {
		return -1
	}
	for _, o := range rj.Status().Operators {
		if o.Kind == "source" {
			return o.Out
		}
	}
	return -1
}

func (e *lifeEnv) waitRead(id string, n int64) {
	e.t.Helper()
	testutil.Within(20*time.Second, func() bool { return e.read(id) >= n })
	if got := e.read(id); got != n {
		e.t.Fatalf("job %s read %d records, want %d", id, got, n)
	}
}

// TestRestartFromCheckpointOrSavepoint: a stopped job restarted from an
// older checkpoint, or from a savepoint, reads again what came after it;
// a running job and an unknown checkpoint are refused.
func TestRestartFromCheckpointOrSavepoint(t *testing.T) {
	e := newLifeEnv(t)
	sp := e.savepointAfter5()
	if _, err := e.m.Restart("life", RestartFrom{Checkpoint: fmt.Sprint(sp.Epoch)}); !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("restart of a running job: %v", err)
	}
	if err := e.m.Stop("life"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Restart("life", RestartFrom{Checkpoint: "999"}); !errors.Is(err, ErrCheckpointNotFound) ||
		!strings.Contains(err.Error(), "no complete checkpoint 999 (GET /api/v1/jobs/life/checkpoints lists them)") || strings.Contains(err.Error(), e.m.dir) {
		t.Fatalf("restart from an unknown checkpoint (its message says what to do, and not the server's paths): %v", err)
	}
	if _, err := e.m.Restart("life", RestartFrom{Checkpoint: fmt.Sprint(sp.Epoch)}); err != nil {
		t.Fatal(err)
	}
	if st := e.m.List()[0].State; st != string(engine.Running) {
		t.Fatalf("restarted job is %s", st)
	}
	e.waitRead("life", 5) // the 5 records after the checkpoint, again
	if err := e.m.Stop("life"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Restart("life", RestartFrom{Savepoint: sp.Name}); err != nil {
		t.Fatal(err)
	}
	e.waitRead("life", 5)
	if _, err := e.m.Restart("life", RestartFrom{Savepoint: "nope"}); !errors.Is(err, ErrRunning) {
		t.Fatalf("restart of a running job from a savepoint: %v", err)
	}
}

// TestDeployCarriesStateOrRefuses: a deploy of a compatible file goes on
// from a savepoint of the job (nothing read twice); an incompatible one is
// refused while the job keeps running, with how to deploy anyway; with
// from=none it starts from nothing.
func TestDeployCarriesStateOrRefuses(t *testing.T) {
	e := newLifeEnv(t)
	e.running(6)
	withFilter := strings.Replace(lifeJob, "operators:\n", "operators:\n  - id: keep\n    filter: \"r => r.page != ''\"\n", 1)
	d, err := e.m.Deploy("life", []byte(withFilter), DeploySavepoint)
	if err != nil {
		t.Fatal(err)
	}
	if d.Savepoint == "" || len(e.m.List()[0].Operators) == 0 {
		t.Fatalf("deploy: %+v", d)
	}
	if in, _ := e.m.Get("life"); !strings.Contains(in.Spec, "id: keep") || in.State != string(engine.Running) {
		t.Fatalf("after deploy: %s %s", in.State, in.Spec)
	}
	e.put(2)
	e.waitRead("life", 2) // only the new records: the positions came over

	renamed := strings.Replace(withFilter, "id: per-page", "id: by-page", 1)
	_, err = e.m.Deploy("life", []byte(renamed), DeploySavepoint)
	if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), `"per-page"`) || !strings.Contains(err.Error(), "from=none") {
		t.Fatalf("incompatible deploy: %v", err)
	}
	if in, _ := e.m.Get("life"); in.State != string(engine.Running) || strings.Contains(in.Spec, "by-page") {
		t.Fatalf("a refused deploy changed the job: %s", in.State)
	}
	if _, err := e.m.Deploy("life", []byte(strings.Replace(lifeJob, "name: life", "name: other", 1)), DeploySavepoint); !errors.Is(err, ErrNameMismatch) {
		t.Fatalf("deploy of another job's file: %v", err)
	}
	if _, err := e.m.Deploy("life", []byte(renamed), DeployNone); err != nil {
		t.Fatal(err)
	}
	e.waitRead("life", 8) // from the stream's start
}

// TestDeleteJob: a running job is not deleted; a stopped one goes with its
// directory.
func TestDeleteJob(t *testing.T) {
	e := newLifeEnv(t)
	if _, err := e.m.Submit([]byte(lifeJob)); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Delete("life"); !errors.Is(err, ErrRunning) {
		t.Fatalf("delete of a running job: %v", err)
	}
	if err := e.m.Stop("life"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Delete("life"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Get("life"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("deleted job: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.m.dir, "life")); !os.IsNotExist(err) {
		t.Fatalf("the deleted job's directory: %v", err)
	}
	if _, err := e.m.Submit([]byte(lifeJob)); err != nil {
		t.Fatalf("submit after delete (no replace needed): %v", err)
	}
}

// TestShardsMismatchWarns: a job file asking for 4 shards of a stream that
// exists with 2 runs on the 2, and its status says so.
func TestShardsMismatchWarns(t *testing.T) {
	e := newLifeEnv(t)
	if _, err := e.st.CreateStream("life-in", 2, streams.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	j, err := e.m.Submit([]byte(strings.Replace(lifeJob, "{stream: life-in}", "{stream: life-in, shards: 4}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(j.Info(false).Warnings, "; "); !strings.Contains(w, "source.shards is 4 but stream life-in exists with 2 open shards") {
		t.Fatalf("warnings: %q", w)
	}
	if err := e.m.Stop("life"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.SubmitWith([]byte(lifeJob), SubmitOptions{Replace: true}); err != nil {
		t.Fatal(err)
	}
	if w := e.m.List()[0].Warnings; len(w) != 0 {
		t.Fatalf("a file without shards warns: %q", w)
	}
}
