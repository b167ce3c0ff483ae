package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
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
