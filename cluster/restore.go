package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readChangelog hands apply every committed record of a changelog
// partition from offset from, oldest first, up to its last stable offset
// (read committed: records of aborted transactions are skipped; an open
// transaction's are beyond the last stable offset), which it returns.
func (w *Worker) readChangelog(ctx context.Context, topic string, partition int32, from int64, apply func(Change) error) (int64, error) {
	end, err := w.lastStable(ctx, topic, partition)
	if err != nil {
		return 0, err
	}
	return end, w.readChangelogTo(ctx, topic, partition, from, end, apply)
}

func (w *Worker) readChangelogTo(ctx context.Context, topic string, partition int32, from, end int64, apply func(Change) error) error {
	if end <= from {
		return nil
	}
	cl, err := kgo.NewClient(append(slices.Clone(w.opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// The last offset below the stable one is a transaction's
		// marker: keeping control records shows that the end is reached.
		kgo.KeepControlRecords())...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			// Nothing more arrives below the end (its tail was
			// compacted away): what was read is all there is.
			w.cfg.Log.Warn("changelog read stopped short of its last stable offset", "topic", topic, "partition", partition, "end", end)
			return nil
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return fmt.Errorf("read %s/%d: %w", topic, partition, fe.Err)
			}
		}
		done := false
		var aerr error
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end-1 {
				done = true
			}
			if aerr != nil || r.Offset >= end || r.Attrs.IsControl() {
				return
			}
			aerr = apply(Change{Key: r.Key, Value: r.Value})
		})
		if aerr != nil {
			return aerr
		}
		if done {
			return nil
		}
	}
}

// lastStable returns the last stable offset of a partition, retrying while
// the broker does not list it yet (a topic just created).
func (w *Worker) lastStable(ctx context.Context, topic string, partition int32) (int64, error) {
	var err error
	for range 50 {
		var ends kadm.ListedOffsets
		if ends, err = w.admin.ListCommittedOffsets(ctx, topic); err == nil {
			o, ok := ends.Lookup(topic, partition)
			if ok && o.Err == nil {
				return o.Offset, nil
			}
			err = fmt.Errorf("%s/%d not listed (%v)", topic, partition, errOr(o.Err, fmt.Errorf("%d topics listed", len(ends))))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("last stable offset: %w", err)
}
