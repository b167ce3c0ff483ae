package engine

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/state"
)

// waitingSink is a txSink whose OpenState waits, as on a target that does
// not answer, until its context is done, when wait is set.
type waitingSink struct {
	txSink
	wait   bool
	opened chan struct{}
}

func (s *waitingSink) OpenState(ctx context.Context, sp *state.Space) error {
	if s.wait {
		close(s.opened)
		<-ctx.Done()
		return ctx.Err()
	}
	return s.txSink.OpenState(ctx, sp)
}

// TestStartSetupCanceled: a cancel of StartSetup's setup context cuts
// short a sink's OpenState waiting on its target, and Start says why; a
// cancel after StartSetup returned does nothing to the job, which runs to
// its end.
func TestStartSetupCanceled(t *testing.T) {
	rng := rand.New(rand.NewPCG(testutil.Seed(t), 4))
	for _, wait := range []bool{true, false} {
		shards := makeShards(rng, 1, 20, 3)
		f := newFeed(shards)
		db, err := state.Open(t.TempDir(), state.Options{})
		if err != nil {
			t.Fatal(err)
		}
		g := sumGraph(f, nil)
		sink := &waitingSink{txSink: txSink{out: &outside{commits: map[uint64]bool{}}}, wait: wait, opened: make(chan struct{})}
		g.Sinks[0].Sink = sink
		setup, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		cause := errors.New("the job was stopped")
		if wait {
			go func() {
				<-sink.opened
				cancel(cause)
			}()
		}
		j, err := StartSetup(context.Background(), setup, g, Options{State: db, Parallelism: 1})
		if wait {
			if !errors.Is(err, cause) || j != nil {
				t.Fatalf("a start canceled in OpenState: %v, want its cause", err)
			}
			db.Close()
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		cancel(cause)
		f.release(20)
		f.end()
		if err := j.Wait(); err != nil {
			t.Fatalf("a job whose setup context was canceled after its start: %v", err)
		}
		db.Close()
	}
}
