package jobs

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

// TestResumeAndFailedStaysFailed: a stopped job resumes from its latest
// checkpoint; a job whose run failed stays failed with its reason across a
// restart of the manager (and says so in the log, not "job started"),
// until it is resumed.
func TestResumeAndFailedStaysFailed(t *testing.T) {
	st, dir, log := managerStore(t)
	open := func() *Manager { return openManager(t, st, dir, log) }
	m := open()
	if _, err := m.Submit([]byte(genJob)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Resume("gen"); !errors.Is(err, ErrJobExists) {
		t.Fatalf("resume of a running job: %v", err)
	}
	if err := m.Stop("gen"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Resume("gen"); err != nil {
		t.Fatal(err)
	}
	if in, _ := m.Get("gen"); in.State != "running" {
		t.Fatalf("resumed job: %s %s", in.State, in.Reason)
	}

	// A job that fails at its first record.
	bad := "name: boom\nsource:\n  generator: {rate: 100}\noperators:\n  - {id: m, map: \"r => { throw new Error('boom') }\"}\nsinks:\n  - {id: o, log: {}}\n"
	if _, err := m.Submit([]byte(bad)); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "boom", "failed")
	m.Close()
	var logs strings.Builder
	log = slog.New(slog.NewTextHandler(&logs, nil))
	m = open()
	defer m.Close()
	in, _ := m.Get("boom")
	if in.State != "failed" || !strings.Contains(in.Reason, "boom") {
		t.Fatalf("after a restart the failed job is %s (%s)", in.State, in.Reason)
	}
	if in.Errors != 1 {
		t.Errorf("after a restart the failed job counts %d errors, want its failure: 1", in.Errors)
	}
	if l := logs.String(); !strings.Contains(l, "job stays failed") || strings.Contains(l, "job started job=boom") {
		t.Fatalf("boot log:\n%s", l)
	}
	if _, err := m.Resume("boom"); err != nil {
		t.Fatal(err)
	}
	if in, _ := m.Get("gen"); in.State != "running" {
		t.Fatalf("the resumed job did not run on across a restart: %s", in.State)
	}
}

// TestResubmitFinishedNeedsReplace: submitting a job whose name a finished
// job has is refused, saying so, unless the submit asks to replace it.
func TestResubmitFinishedNeedsReplace(t *testing.T) {
	st, dir, log := managerStore(t)
	m := openManager(t, st, dir, log)
	defer m.Close()
	job := []byte("name: once\nsource:\n  generator: {count: 5}\nsinks:\n  - {id: o, log: {}}\n")
	if _, err := m.Submit(job); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "once", "finished")
	_, err := m.Submit(job)
	if !errors.Is(err, ErrJobNameTaken) || !strings.Contains(err.Error(), `"once" is finished`) || !strings.Contains(err.Error(), "replace") {
		t.Fatalf("resubmit of a finished job's name: %v", err)
	}
	if _, err := m.SubmitWith(job, SubmitOptions{Replace: true}); err != nil {
		t.Fatalf("resubmit with replace: %v", err)
	}
}

// TestDashboardErrorsSayWhatToDo: asking for the dashboard of a job that
// has none names no empty sink and says where its rows are.
func TestDashboardErrorsSayWhatToDo(t *testing.T) {
	st, dir, log := managerStore(t)
	m := openManager(t, st, dir, log)
	defer m.Close()
	if _, err := m.Submit([]byte("name: nodash\nsource:\n  generator: {rate: 10}\nsinks:\n  - {id: o, log: {}}\n")); err != nil {
		t.Fatal(err)
	}
	_, err := m.Dashboard("nodash", "")
	if !errors.Is(err, ErrNoSink) || strings.Contains(err.Error(), `""`) || strings.Contains(err.Error(), "[]") || !strings.Contains(err.Error(), "/output") {
		t.Fatalf("dashboard of a job without one: %v", err)
	}
	if _, err := m.Dashboard("nope", ""); err == nil || strings.Count(err.Error(), "jobs:") != 1 {
		t.Fatalf("dashboard of a missing job: %v", err)
	}
}

// openManager opens a Manager of the jobs in dir.
func openManager(t *testing.T, st *streams.Store, dir string, log *slog.Logger) *Manager {
	t.Helper()
	m, err := NewManager(ManagerConfig{Store: st, Dir: dir + "/jobs", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	waitBooted(t, m)
	return m
}

// waitBooted waits until the jobs m found running have ended their
// starts, which run in the background.
func waitBooted(t testing.TB, m *Manager) {
	t.Helper()
	<-m.Booted()
}

// waitState waits up to 20 s for job id to be in state.
func waitState(t *testing.T, m *Manager, id, state string) {
	t.Helper()
	var in Info
	if !testutil.Within(20*time.Second, func() bool {
		in, _ = m.Get(id)
		return in.State == state
	}) {
		t.Fatalf("job %s is %s (%s) after 20s, want %s", id, in.State, in.Reason, state)
	}
}
