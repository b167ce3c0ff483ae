package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// A changelog topic deleted and created again under a running worker:
// the worker does not go on writing the state it holds of the old topic
// into the new one, nor bind its local state and snapshots to the old
// topic for the rest of its life (restores ignore them): its task drops
// that state, restores from the new topic, and its next snapshot copies
// the new topic. Brokers before Kafka 4.1 take produced records by topic
// name, later ones by topic ID: the worker survives both.
func TestChangelogRecreatedUnderARunningWorker(t *testing.T) {
	s3p := snapshotS3(t)
	for _, c := range []struct {
		job      string
		versions *kversion.Versions
	}{
		{"recreated-kafka39", kversion.V3_9_0()},
		{"recreated-kafka4", nil},
	} {
		t.Run(c.job, func(t *testing.T) {
			opts := []kfake.Opt{kfake.SeedTopics(1, "in", "out")}
			if c.versions != nil {
				opts = append(opts, kfake.MaxVersions(c.versions))
			}
			r := newRelifeOn(t, testsrv.KafkaWith(t, opts...), c.job,
				snapshotStore(s3p))
			var log testutil.Buffer
			cfg := r.cfg(t.TempDir())
			cfg.Spec = windowJob(t, r.job, r.brokers)
			cfg.Log = slog.New(slog.NewTextHandler(&log, nil))
			_, stop := runWorker(t, cfg)

			send := sendKeys(t, r.brokers)
			key := c.job + "/per-k/0"
			// snapshot returns the task's snapshot's head and window keys.
			snapshot := func() (snapHead, []string) {
				if len(s3p.Objects(t, "snaps", key)) == 0 {
					return snapHead{upTo: -1}, nil
				}
				h, changes, err := decodeSnapshot(s3p.Get(t, "snaps", key))
				if err != nil {
					t.Fatal(err)
				}
				var keys []string
				for _, ch := range changes {
					if ch.Key[0] == keyWindow {
						k, _, err := decodeWindowKey(ch.Key)
						if err != nil {
							t.Fatal(err)
						}
						keys = append(keys, k)
					}
				}
				slices.Sort(keys)
				return h, slices.Compact(keys)
			}

			oldKeys := send("old-")
			oldID := r.topicID(t)
			testutil.Eventually(t, time.Minute, func() bool {
				h, keys := snapshot()
				return h.id == oldID && slices.Equal(keys, oldKeys)
			}, "a snapshot of the task's windows of %v", oldKeys)

			newID := r.recreateTopic(t)
			newKeys := send("new-")
			var h snapHead
			var keys []string
			if !testutil.Within(time.Minute, func() bool {
				h, keys = snapshot()
				return h.id == newID && slices.Equal(keys, newKeys)
			}) {
				t.Fatalf("after a minute the task's snapshot copies topic %s (the old one is %s, the new one %s) up to offset %d, windows of %v; want the new topic's, windows of %v\n%s",
					kafkaID(h.id), kafkaID(oldID), kafkaID(newID), h.upTo, keys, newKeys, log.String())
			}
			if keys, _ := r.changelog(t); !slices.Equal(keys, newKeys) {
				t.Errorf("the new changelog topic holds windows of %v, want %v", keys, newKeys)
			}
			stop()
			if !strings.Contains(log.String(), `msg="changelog topic deleted and created again under the task`) {
				t.Errorf("the worker does not say that its task's changelog topic was created again:\n%s", log.String())
			}
		})
	}
}

// A changelog topic deleted and created again while its task is on
// another worker: when the task comes back, the worker's producer, which
// wrote to the old topic, writes to the new one (it keeps the ID it saw
// of a topic, and Kafka 4.1 and later take records by topic ID).
func TestChangelogRecreatedWhileItsTaskIsAway(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake and two workers")
	}
	r := newRelife(t, "recreated-away", nil)
	spec := windowJob(t, r.job, r.brokers)
	var log testutil.Buffer
	w1, stop1 := runWorker(t, Config{Brokers: r.brokers, Spec: spec, IdleTimeout: -1,
		Log: slog.New(slog.NewTextHandler(&log, nil))})
	assigned := func(w *Worker) int {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.mu.assigned)
	}
	send := sendKeys(t, r.brokers)
	oldKeys := send("old-")
	testutil.Eventually(t, time.Minute, func() bool { keys, _ := r.changelog(t); return slices.Equal(keys, oldKeys) },
		"the changelog holds windows of %v", oldKeys)

	// A second worker takes one of the two partitions (the first drops
	// its tasks) and leaves again.
	testutil.Eventually(t, time.Minute, func() bool { return assigned(w1) == 2 }, "worker 1 holds both partitions")
	w2, stop2 := runWorker(t, Config{Brokers: r.brokers, Spec: windowJob(t, r.job, r.brokers), ID: "w2", IdleTimeout: -1})
	testutil.Eventually(t, time.Minute, func() bool { return assigned(w1) == 1 && assigned(w2) == 1 }, "the workers share the partitions")
	stop2()
	testutil.Eventually(t, time.Minute, func() bool { return assigned(w1) == 2 }, "worker 1 holds both partitions again")

	r.recreateTopic(t)
	newKeys := send("new-")
	if !testutil.Within(time.Minute, func() bool { keys, _ := r.changelog(t); return slices.Equal(keys, newKeys) }) {
		keys, _ := r.changelog(t)
		t.Fatalf("the new changelog topic holds windows of %v, want %v:\n%s", keys, newKeys, log.String())
	}
	stop1()
}

// sendKeys returns a function that writes 10 records of keys PREFIX0 …
// PREFIX4 to topic "in", in one window that stays open, and returns those
// keys sorted.
func sendKeys(t *testing.T, brokers []string) func(prefix string) []string {
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return func(prefix string) []string {
		var keys []string
		for i := range 10 {
			b, _ := json.Marshal(map[string]any{"k": fmt.Sprint(prefix, i%5), "ts": int64(1_700_000_000_000) + int64(i)})
			if err := prod.ProduceSync(context.Background(), &kgo.Record{Value: b}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, fmt.Sprint(prefix, i%5))
		}
		slices.Sort(keys)
		return slices.Compact(keys)
	}
}
