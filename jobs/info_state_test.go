package jobs

import (
	"context"
	"errors"
	"testing"
	"time"
)

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

// TestOutputWaitEndsWhenTheJobGoes: a reader waiting for a job's next
// output rows (a long poll) is answered as soon as the job is deleted
// ("not found") or replaced (what it had, so that it asks the new job),
// rather than waiting out its wait for rows that can no longer come.
func TestOutputWaitEndsWhenTheJobGoes(t *testing.T) {
	for _, how := range []string{"delete", "replace"} {
		t.Run(how, func(t *testing.T) {
			e := newLifeEnv(t)
			e.running(2)
			if err := e.m.Stop("life"); err != nil {
				t.Fatal(err)
			}
			page, err := e.m.Output(context.Background(), "life", "", 0, 10, 0)
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan error, 1)
			go func() {
				_, err := e.m.Output(context.Background(), "life", "", page.Next, 10, time.Hour)
				got <- err
			}()
			time.Sleep(100 * time.Millisecond) // (the wait has begun, or begins after the job went: either way it must end)
			if how == "delete" {
				err = e.m.Delete("life")
			} else {
				_, err = e.m.SubmitWith([]byte(lifeJob), SubmitOptions{Replace: true})
			}
			if err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-got:
				if want := how == "delete"; errors.Is(err, ErrJobNotFound) != want || (!want && err != nil) {
					t.Fatalf("the waiting read answered %v after the %s", err, how)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the waiting read was still waiting 30 s after the job went")
			}
		})
	}
}
