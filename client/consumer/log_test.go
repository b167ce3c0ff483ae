package consumer

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestDefaultLoggerIsQuiet: without Options.Logger a worker logs to
// slog.Default()'s handler at WARN and above only, so lease changes
// (INFO) do not fill a program's output; a Logger given is used as is.
func TestDefaultLoggerIsQuiet(t *testing.T) {
	var out testutil.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(prev) })

	var o Options
	o.EnsureDefaults()
	l := o.Logger.With("worker", "w")
	l.Info("shard lease taken", "shard", "s0")
	l.Debug("debug line")
	l.Warn("consumer group sync failed; retrying")
	l.WithGroup("g").Error("shard reader stopped")
	got := out.String()
	for _, quiet := range []string{"shard lease taken", "debug line"} {
		if strings.Contains(got, quiet) {
			t.Errorf("the default logger wrote %q below WARN:\n%s", quiet, got)
		}
	}
	for _, loud := range []string{"level=WARN msg=\"consumer group sync failed; retrying\" worker=w", "level=ERROR msg=\"shard reader stopped\" worker=w"} {
		if !strings.Contains(got, loud) {
			t.Errorf("the default logger did not write %q:\n%s", loud, got)
		}
	}

	var mine testutil.Buffer
	o = Options{Logger: slog.New(slog.NewTextHandler(&mine, nil))}
	o.EnsureDefaults()
	o.Logger.Info("shard lease taken")
	if !strings.Contains(mine.String(), "shard lease taken") {
		t.Errorf("a Logger given was not used at INFO: %q", mine.String())
	}
}

// hangStore answers its first Sync with no leases and a lease duration
// of lease; later Syncs hang until their context ends, as a paused
// server's do.
type hangStore struct {
	lease time.Duration
	syncs atomic.Int32
}

func (s *hangStore) Sync(ctx context.Context, worker string) (SyncResult, error) {
	if s.syncs.Add(1) == 1 {
		return SyncResult{LeaseDuration: s.lease, Start: "trim_horizon"}, nil
	}
	<-ctx.Done()
	return SyncResult{}, ctx.Err()
}

func (s *hangStore) Checkpoint(context.Context, string, string, uint64, consumergroups.Checkpoint) error {
	return nil
}

func (s *hangStore) Release(context.Context, string, string, uint64, *consumergroups.Checkpoint) error {
	return nil
}

func (s *hangStore) Leave(context.Context, string) error { return nil }

// TestHungSyncIsRetriedAndLogged: a Sync that gets no answer (the server
// is paused) is given up after the lease duration, logged at WARN, and
// tried again; the worker does not return.
func TestHungSyncIsRetriedAndLogged(t *testing.T) {
	var out testutil.Buffer
	store := &hangStore{lease: 300 * time.Millisecond}
	g := Group{Stream: "s", Kinesis: noKinesis{}, Leases: store, Options: Options{Worker: "w",
		Logger: slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, g, func(context.Context, Batch) error { return nil }) }()
	ok := testutil.Within(20*time.Second, func() bool {
		return store.syncs.Load() >= 3 && strings.Count(out.String(), "consumer group sync failed; retrying") >= 2
	})
	select {
	case err := <-done:
		t.Fatalf("Run returned while the store hung: %v", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !ok {
		t.Fatalf("a worker whose Syncs hang did not retry them and say so (%d Syncs); log:\n%s", store.syncs.Load(), out.String())
	}
	if !strings.Contains(out.String(), "no answer within the lease duration (300ms)") {
		t.Errorf("the warning does not say why the Sync failed:\n%s", out.String())
	}
}

// noKinesis is a KinesisAPI for workers that hold no lease.
type noKinesis struct{ KinesisAPI }
