package jobs

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"

	pgsink "github.com/runnel-dev/runnel/sinks/postgres"
	"github.com/runnel-dev/runnel/streams"
)

// A job submitted again under a used name, after a delete or a replace
// without a savepoint, is a fresh start: its checkpoint epochs count from
// 1 again, and the progress rows of the earlier run (here pushed far
// ahead, as a long-lived job leaves them) must not make its sink skip
// them. Each run writes its own rows, exactly once, to PostgreSQL and to
// a stream sink.
func TestFreshStartUnderUsedNameWritesSinks(t *testing.T) {
	e := newBootEnv(t)
	m := startManager(t, e.cfg)
	// Each run reads a stream of its own (a1-in, a2-in, a3-in) into
	// table a, so that it writes only its own rows.
	file := func(run string) []byte {
		f := strings.Replace(e.job("a", ""), "{stream: a-in}", "{stream: "+run+"-in}", 1)
		return []byte(strings.Replace(f, "sinks:\n", "sinks:\n  - {id: st, stream: {name: a-out}}\n", 1))
	}
	run := func(in string, from, to int) {
		t.Helper()
		e.put(in, from, to)
		e.waitRows("a", to)
		if !testutil.Within(30*time.Second, func() bool { return streamCount(t, e.st, "a-out") >= to }) || streamCount(t, e.st, "a-out") != to {
			t.Fatalf("stream a-out holds %d records, want %d", streamCount(t, e.st, "a-out"), to)
		}
	}
	for _, in := range []string{"a1", "a2", "a3"} {
		if _, err := e.st.CreateStream(in+"-in", 1, streams.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Submit(file("a1")); err != nil {
		t.Fatal(err)
	}
	run("a1", 0, 10)
	ahead := func() {
		t.Helper()
		conn := e.pg.Connect(t)
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "UPDATE "+pgsink.ProgressTable+" SET epoch = 1000000"); err != nil {
			t.Fatal(err)
		}
	}
	ahead()
	if err := m.Stop("a"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Submit(file("a2")); err != nil {
		t.Fatal(err)
	}
	run("a2", 10, 20)
	ahead()
	if _, err := m.Deploy("a", file("a3"), DeployNone); err != nil {
		t.Fatal(err)
	}
	run("a3", 20, 30)
}

// lastCheckpoint is the epoch of job id's latest complete checkpoint.
func lastCheckpoint(t *testing.T, m *Manager, id string) uint64 {
	t.Helper()
	cs, err := m.Checkpoints(id)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, c := range cs {
		if c.Status == "complete" {
			last = max(last, c.Epoch)
		}
	}
	return last
}

// A PostgreSQL sink's state holds its incarnation even with nothing
// staged; a deploy from a checkpoint whose file drops that sink has
// nothing of it to commit, and must start without connecting to its
// database (here stopped).
func TestDeployDropsPostgresSinkWithNothingStaged(t *testing.T) {
	e := newBootEnv(t)
	m := startManager(t, e.cfg)
	file := strings.Replace(e.job("a", ""), "sinks:\n", "sinks:\n  - {id: st, stream: {name: a-out}}\n", 1)
	if _, err := m.Submit([]byte(file)); err != nil {
		t.Fatal(err)
	}
	e.put("a", 0, 5)
	e.waitRows("a", 5)
	// Two checkpoints later every staged epoch is committed and gone
	// from the checkpoint's state.
	after := lastCheckpoint(t, m, "a") + 2
	if !testutil.Within(30*time.Second, func() bool { return lastCheckpoint(t, m, "a") >= after }) {
		t.Fatal("the job took no more checkpoints")
	}
	if err := m.Stop("a"); err != nil {
		t.Fatal(err)
	}
	e.pg.Stop(t)
	without := strings.Replace(file, fmt.Sprintf("  - {id: pg, postgres: {dsn: %q, table: a}}\n", e.pg.DSN), "", 1)
	if without == file {
		t.Fatal("the job file kept its postgres sink")
	}
	if _, err := m.Deploy("a", []byte(without), DeploySavepoint); err != nil {
		t.Fatal(err)
	}
	e.put("a", 5, 8)
	if !testutil.Within(30*time.Second, func() bool { return streamCount(t, e.st, "a-out") >= 8 }) {
		info, _ := m.Get("a")
		t.Fatalf("stream a-out holds %d records, want 8; job %s %s", streamCount(t, e.st, "a-out"), info.State, info.Reason)
	}
}
