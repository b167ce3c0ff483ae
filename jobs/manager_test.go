package jobs

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

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

func TestManagerPersistsAndRestartsJobs(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	st, err := streams.Open(dir, streams.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	open := func() *Manager {
		m, err := NewManager(ManagerConfig{Store: st, Dir: dir + "/jobs", Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := m.Dashboard("gen", "board")
		if err == nil {
			if n, _ := d.Rows(); n > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("restarted job produced no results")
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	st, err := streams.Open(dir, streams.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := NewManager(ManagerConfig{Store: st, Dir: dir + "/jobs", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
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
