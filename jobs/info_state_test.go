package jobs

import "testing"

// A job that is being submitted (or started by the server) has no run
// yet; it reports a state a client can act on, not an empty one.
func TestInfoStartingBeforeTheRun(t *testing.T) {
	spec, err := Parse([]byte(genJob))
	if err != nil {
		t.Fatal(err)
	}
	j := &Job{ID: spec.Name, Spec: spec, Source: []byte(genJob)}
	if got := j.Info(false).State; got != StateStarting {
		t.Fatalf("state before the run = %q, want %q", got, StateStarting)
	}
	j.mu.stopped = true
	if got := j.Info(false).State; got != StateStopped {
		t.Fatalf("state of a stopped job with no run = %q, want %q", got, StateStopped)
	}
}
