package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

const genJob = `name: gen
source:
  generator: {rate: 500, keys: 5}
operators:
  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 1s
      aggregate: {views: count}
sinks:
  - {id: board, dashboard: {}}
`

// managerStore opens a store in a fresh data directory, for a Manager of
// that directory's jobs/.
func managerStore(t testing.TB) (st *streams.Store, dir string, log *slog.Logger) {
	t.Helper()
	log = slog.New(slog.NewTextHandler(io.Discard, nil))
	dir = t.TempDir()
	st, err := streams.Open(dir, streams.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dir, log
}

// startManager opens a Manager of cfg, closed when the test ends.
func startManager(t testing.TB, cfg ManagerConfig) *Manager {
	t.Helper()
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	waitBooted(t, m)
	return m
}

func TestManagerPersistsAndRestartsJobs(t *testing.T) {
	st, dir, log := managerStore(t)
	open := func() *Manager { return openManager(t, st, dir, log) }
	m := open()
	if _, err := m.Submit([]byte(genJob)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Submit([]byte(genJob)); err == nil {
		t.Fatal("a second job of a running job's name was accepted")
	}
	m.Close()

	m = open()
	in, err := m.Get("gen")
	if err != nil || in.State != "running" {
		t.Fatalf("after restart: %+v %v", in, err)
	}
	// It produces results again.
	testutil.Eventually(t, 10*time.Second, func() bool {
		d, err := m.Dashboard("gen", "board")
		if err != nil {
			return false
		}
		n, _ := d.Rows()
		return n > 0
	}, "restarted job produced no results")
	if err := m.Stop("gen"); err != nil {
		t.Fatal(err)
	}
	m.Close()
	m = open()
	defer m.Close()
	if in, _ := m.Get("gen"); in.State != StateStopped {
		t.Fatalf("a stopped job came back as %q", in.State)
	}
	if err := m.Stop("nope"); err == nil {
		t.Fatal("stopping an unknown job succeeded")
	}
}

func TestManagerFailedReplaceKeepsOldJob(t *testing.T) {
	st, dir, log := managerStore(t)
	m := startManager(t, ManagerConfig{Store: st, Dir: dir + "/jobs", Logger: log})
	if _, err := m.Submit([]byte(genJob)); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop("gen"); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(genJob, "dashboard: {}", "file: {path: /nonexistent-dir/out.jsonl}", 1)
	if _, err := m.Submit([]byte(bad)); err == nil {
		t.Fatal("a job whose file sink cannot be created was accepted")
	}
	in, err := m.Get("gen")
	if err != nil || in.State != StateStopped || !strings.Contains(in.Spec, "dashboard") {
		t.Fatalf("the stopped job was not kept after a failed replace: %+v %v", in, err)
	}
}

// TestWindowStateCacheThroughServer: a server job whose window keeps at most
// 1,024 window states in memory, over 3,000 keys, evicts to its Pebble
// state and still counts every key right.
func TestWindowStateCacheThroughServer(t *testing.T) {
	st, dir, log := managerStore(t)
	if _, err := st.CreateStream("many", 2, streams.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const keys = 3000
	var recs []streams.PutRecord
	for i := range 2 * keys {
		recs = append(recs, streams.PutRecord{PartitionKey: fmt.Sprint(i), Data: fmt.Appendf(nil, `{"k":"k%d","ts":%d}`, i%keys, 1000+i)})
	}
	for i := range 8 { // far ahead on both shards: fires the window
		recs = append(recs, streams.PutRecord{PartitionKey: fmt.Sprint("end", i), Data: []byte(`{"k":"end","ts":9000000}`)})
	}
	if _, err := st.Put(context.Background(), "many", recs); err != nil {
		t.Fatal(err)
	}
	m := startManager(t, ManagerConfig{Store: st, Dir: dir + "/jobs", Logger: log})
	job := `name: cache
source: {stream: many, event_time: "r => r.ts", watermark: 1s}
operators:
  - id: w
    window: {key: "r => r.k", tumbling: 1m, state_cache: 1024, aggregate: {n: count}}
sinks:
  - {id: board, dashboard: {}}
`
	if _, err := m.Submit([]byte(job)); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if !testutil.Within(time.Minute, func() bool {
		if d, err := m.Dashboard("cache", "board"); err == nil {
			rows = d.JSONRows()
		}
		return len(rows) >= keys
	}) {
		t.Fatalf("%d window rows after a minute, want %d", len(rows), keys)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		k := fmt.Sprint(r["key"])
		if seen[k] || fmt.Sprint(r["n"]) != "2" {
			t.Fatalf("row %v (seen before: %v), want one row per key with n 2", r, seen[k])
		}
		seen[k] = true
	}
}

// TestServerJobFilesStayBeneathRoot: a server job naming a file outside the
// files root is refused at submit with the line and field.
func TestServerJobFilesStayBeneathRoot(t *testing.T) {
	st, dir, log := managerStore(t)
	m := startManager(t, ManagerConfig{Store: st, Dir: dir + "/jobs", Logger: log})
	for _, tc := range []struct{ job, field string }{
		{"name: a\nsource:\n  file: /etc/passwd\nsinks:\n  - {id: o, log: {}}\n", "source.file"},
		{"name: a\nsource:\n  file: [in.jsonl, ../../x.jsonl]\nsinks:\n  - {id: o, log: {}}\n", "source.file[1]"},
		{"name: a\nsource:\n  generator: {count: 1}\nsinks:\n  - {id: o, log: {}}\n  - id: f\n    file: {path: ../streams.json}\n", "sinks[1].file.path"},
	} {
		_, err := m.Submit([]byte(tc.job))
		var se *SpecError
		if !errors.As(err, &se) || se.Problems[0].Field != tc.field || se.Problems[0].Line == 0 {
			t.Errorf("submit of\n%s: %v, want a SpecError at %s with its line", tc.job, err, tc.field)
		}
	}
}
