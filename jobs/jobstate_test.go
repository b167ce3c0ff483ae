package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestReadJobState(t *testing.T) {
	for _, c := range []struct {
		name, file string
		want       string // state, or "" for damage
	}{
		{"running", `{"version":1,"created":"2026-01-02T03:04:05Z","state":"running"}`, persistRunning},
		{"finished", `{"version":1,"created":"2026-01-02T03:04:05Z","state":"finished","ended":"2026-01-02T04:00:00Z"}`, persistFinished},
		{"stopped", `{"version":1,"created":"2026-01-02T03:04:05Z","state":"stopped"}`, persistStopped},
		{"before versions, stopped", `{"created":"2026-01-02T03:04:05Z","stopped":true}`, persistStopped},
		{"before versions, running", `{"created":"2026-01-02T03:04:05Z","stopped":false}`, persistRunning},
		{"cut short", `{"created":"2026-01-0`, ""},
		{"empty", ``, ""},
		{"unknown field", `{"version":1,"created":"2026-01-02T03:04:05Z","state":"running","paused":true}`, ""},
		{"unknown state", `{"version":1,"created":"2026-01-02T03:04:05Z","state":"sleeping"}`, ""},
		{"unknown version", `{"version":2,"created":"2026-01-02T03:04:05Z","state":"running"}`, ""},
		{"no created", `{"version":1,"state":"running"}`, ""},
		{"two objects", `{"version":1,"created":"2026-01-02T03:04:05Z","state":"running"} {}`, ""},
		{"stopped field in version 1", `{"version":1,"created":"2026-01-02T03:04:05Z","state":"running","stopped":true}`, ""},
		{"missing", "-", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if c.file != "-" {
				if err := os.WriteFile(path, []byte(c.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, err := readJobState(path)
			switch {
			case c.want == "" && !errors.Is(err, ErrStateDamaged):
				t.Fatalf("%q read as %+v, %v; want damage", c.file, p, err)
			case c.want != "" && (err != nil || p.State != c.want):
				t.Fatalf("%q read as %+v, %v; want state %s", c.file, p, err, c.want)
			}
		})
	}
}

// TestPersistAtOnce: a job's files written from several goroutines at
// once (a run that ends while a caller stops the job) are all written,
// and the state on disk is one of them. The writes shared a temporary
// file, and all but one rename failed.
func TestPersistAtOnce(t *testing.T) {
	m := &Manager{dir: t.TempDir()}
	j := &Job{ID: "j", Source: []byte("name: j\n"), Created: time.Now().UTC()}
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				j.mu.Lock()
				j.mu.stopped = (g+i)%2 == 0
				j.mu.Unlock()
				if err := m.persist(j); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("persist: %v", err)
	}
	if _, err := readJobState(filepath.Join(m.dir, "j", "state.json")); err != nil {
		t.Fatal(err)
	}
}
