package jobs

import (
	"context"
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
