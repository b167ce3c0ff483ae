package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators/window"
)

// A task's local state, restored unchanged, comes back from the local
// copy plus the changelog tail; once its changelog topic is deleted and
// created again, and the new topic has grown past the local state's
// offset, the task holds the new topic's state alone, and the local state
// it then keeps is bound to the new topic.
func TestRestoreLocalStateOfARecreatedChangelog(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake and a worker")
	}
	r := newRelife(t, "relife-local", nil)
	cfg := r.cfg(t.TempDir())
	r.firstLife(t, cfg)

	keys, log := r.restore(t, cfg)
	if !slices.Equal(keys, r.oldKeys) || !restoredFromLocal(log) {
		t.Fatalf("unchanged changelog: the task holds windows of %v, want %v, restored from local state:\n%s", keys, r.oldKeys, log)
	}

	r.recreate(t)
	keys, log = r.restore(t, cfg)
	if !slices.Equal(keys, r.newKeys) {
		t.Fatalf("re-created changelog: the task holds windows of %v, want the new topic's %v only:\n%s", keys, r.newKeys, log)
	}
	if !strings.Contains(log, `msg="local state discarded: it copies another topic of the same name`) {
		t.Errorf("the discarded local state is not logged with its reason:\n%s", log)
	}

	// What the task kept is the new topic's: a restart uses it.
	keys, log = r.restore(t, cfg)
	if !slices.Equal(keys, r.newKeys) || !restoredFromLocal(log) || strings.Contains(log, "discarded") {
		t.Fatalf("restart after the re-created changelog: the task holds windows of %v, want %v, restored from local state:\n%s", keys, r.newKeys, log)
	}
}

// The same for a snapshot, restored by a worker with an empty data
// directory: used while its changelog topic is the one it copies,
// ignored once the topic is deleted and created again.
func TestRestoreSnapshotOfARecreatedChangelog(t *testing.T) {
	s3p := snapshotS3(t)
	r := newRelife(t, "relife-snap", snapshotStore(s3p))
	r.firstLife(t, r.cfg(t.TempDir()))
	testutil.Eventually(t, time.Minute, func() bool {
		return len(s3p.Objects(t, "snaps", "relife-snap/per-k/")) == 1
	}, "a snapshot of the task")

	keys, log := r.restore(t, r.cfg(t.TempDir()))
	if !slices.Equal(keys, r.oldKeys) || !strings.Contains(log, `msg="task state read from its snapshot"`) {
		t.Fatalf("unchanged changelog: the task holds windows of %v, want %v, restored from its snapshot:\n%s", keys, r.oldKeys, log)
	}

	r.recreate(t)
	keys, log = r.restore(t, r.cfg(t.TempDir()))
	if !slices.Equal(keys, r.newKeys) {
		t.Fatalf("re-created changelog: the task holds windows of %v, want the new topic's %v only:\n%s", keys, r.newKeys, log)
	}
	if !strings.Contains(log, `msg="snapshot ignored: it copies another topic of the same name`) {
		t.Errorf("the ignored snapshot is not logged with its reason:\n%s", log)
	}
}

// relife is a window job on one partition whose changelog topic a test
// deletes and creates again between two lives.
type relife struct {
	brokers []string
	job     string
	topic   string // the window's changelog topic
	snap    *SnapshotStore
	admin   *kadm.Client
	reader  *Worker // reads changelogs
	oldKeys []string
	newKeys []string
	old     []Change // window records of the first life (states valid for the job's codec)
	oldEnd  int64
}

func newRelife(t *testing.T, job string, snap *SnapshotStore) *relife {
	return newRelifeOn(t, testsrv.Kafka(t, 1, "in", "out"), job, snap)
}

// newRelifeOn is newRelife on the brokers of a cluster started by the
// test, with topics "in" and "out" of one partition.
func newRelifeOn(t *testing.T, brokers []string, job string, snap *SnapshotStore) *relife {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	r := &relife{brokers: brokers, job: job, topic: job + ".per-k.changelog", snap: snap, admin: kadm.NewClient(cl)}
	r.reader = &Worker{cfg: Config{Log: slog.New(slog.DiscardHandler)}, opts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, admin: r.admin, adminCl: cl}
	return r
}

func (r *relife) cfg(dataDir string) Config {
	return Config{Brokers: r.brokers, DataDir: dataDir, Snapshot: r.snap, SnapshotEvery: 1}
}

// firstLife runs a worker of cfg over records of keys old-0 … old-4, all
// in one window that stays open, until its changelog holds them all.
func (r *relife) firstLife(t *testing.T, cfg Config) {
	t.Helper()
	cfg.Spec = windowJob(t, r.job, r.brokers)
	_, stop := runWorker(t, cfg)
	prod, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const base = int64(1_700_000_000_000)
	for i := range 50 {
		b, _ := json.Marshal(map[string]any{"k": fmt.Sprint("old-", i%5), "ts": base + int64(i)})
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	r.oldKeys = []string{"old-0", "old-1", "old-2", "old-3", "old-4"}
	testutil.Eventually(t, time.Minute, func() bool {
		var keys []string
		keys, r.old = r.changelog(t)
		return slices.Equal(keys, r.oldKeys)
	}, "the first life's changelog holds windows of %v", r.oldKeys)
	stop()
	end, err := r.reader.lastStable(context.Background(), r.topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.oldEnd = end
}

// changelog returns the window keys in the changelog (sorted, once each)
// and its window records.
func (r *relife) changelog(t *testing.T) (keys []string, wins []Change) {
	t.Helper()
	_, err := r.reader.readChangelog(context.Background(), r.topic, 0, 0, func(c Change) error {
		if len(c.Key) == 0 || c.Key[0] != keyWindow || c.Value == nil {
			return nil
		}
		k, _, err := decodeWindowKey(c.Key)
		keys = append(keys, k)
		wins = append(wins, Change{Key: bytes.Clone(c.Key), Value: bytes.Clone(c.Value)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return slices.Compact(keys), wins
}

// recreate deletes the changelog topic, creates it again, and writes it
// window states of keys new-0 … new-2 past the old topic's end.
func (r *relife) recreate(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	r.recreateTopic(t)
	prod, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.DefaultProduceTopic(r.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	r.newKeys = []string{"new-0", "new-1", "new-2"}
	var recs []*kgo.Record
	for i := range int(r.oldEnd) + 10 {
		// An old record's window and state under a new key.
		old := r.old[i%len(r.old)]
		_, win, err := decodeWindowKey(old.Key)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Partition: 0, Key: encodeWindowKey(r.newKeys[i%len(r.newKeys)], win), Value: old.Value})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if keys, _ := r.changelog(t); !slices.Equal(keys, r.newKeys) {
		t.Fatalf("the re-created changelog holds windows of %v, want %v", keys, r.newKeys)
	}
}

// recreateTopic deletes the changelog topic and creates it again, empty,
// and returns its new topic ID.
func (r *relife) recreateTopic(t *testing.T) kadm.TopicID {
	t.Helper()
	ctx := context.Background()
	before := r.topicID(t)
	if resp, err := r.admin.DeleteTopic(ctx, r.topic); err != nil || resp.Err != nil {
		t.Fatalf("delete %s: %v %v", r.topic, err, resp.Err)
	}
	compact := "compact"
	testutil.Eventually(t, time.Minute, func() bool {
		resp, err := r.admin.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, r.topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Fatal(err)
		}
		return err == nil
	}, "%s created again", r.topic)
	after := r.topicID(t)
	if after == before {
		t.Fatalf("the re-created %s has the old topic ID %v", r.topic, after)
	}
	return after
}

func (r *relife) topicID(t *testing.T) kadm.TopicID {
	t.Helper()
	id, err := r.reader.changelogID(context.Background(), r.topic)
	if err != nil {
		t.Fatal(err)
	}
	if id == (kadm.TopicID{}) {
		t.Fatalf("kfake gives %s no topic ID", r.topic)
	}
	return id
}

// restore makes the job's window task of partition 0 as a worker of cfg
// does when the partition's first record comes, and returns the keys of
// its windows (sorted, once each) and the worker's log.
func (r *relife) restore(t *testing.T, cfg Config) ([]string, string) {
	t.Helper()
	keys, log, failures := r.restoreFailing(t, cfg)
	if len(failures) > 0 {
		t.Errorf("failures: %+v", failures)
	}
	return keys, log
}

// restoreFailing is restore that returns the failures the worker
// reported too.
func (r *relife) restoreFailing(t *testing.T, cfg Config) ([]string, string, []Failure) {
	t.Helper()
	var log testutil.Buffer
	cfg.ID, cfg.Spec, cfg.Metrics = "w1", windowJob(t, r.job, r.brokers), NewMetrics()
	cfg.Log = slog.New(slog.NewTextHandler(&log, nil))
	w := adminWorker(t, cfg)
	ctx := context.Background()
	if err := w.setupTopics(ctx); err != nil {
		t.Fatal(err)
	}
	w.openLocal()
	if w.local == nil {
		t.Fatalf("local state does not open:\n%s", log.String())
	}
	defer w.closeLocal()
	if cfg.Snapshot != nil {
		var err error
		if w.snap, err = newSnapshots(ctx, cfg.Snapshot, cfg.Spec.Name, cfg.SnapshotEvery); err != nil {
			t.Fatal(err)
		}
	}
	tk, err := w.newTask(ctx, tp{w.plan.Repartition["per-k"], 0})
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, log.String())
	}
	defer tk.close()
	entries, err := tk.store.Range(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.Key)
	}
	slices.Sort(keys)
	return slices.Compact(keys), log.String(), w.Failures()
}

// restoredFromLocal says whether the log's task restored records from its
// local state.
func restoredFromLocal(log string) bool {
	i := strings.Index(log, `msg="task restored"`)
	return i >= 0 && !strings.Contains(log[i:], " local=0 ")
}

// A local state or snapshot of the changelog topic a task restores from
// (the same topic ID) that goes past the topic's end means that the topic
// lost records it had committed: that is damage, a changelog_lost failure
// (an ERROR, a metric, an entry in the cluster view), not a deliberate
// discard; the task restores from what the changelog holds.
func TestRestoreFromAChangelogThatLostRecords(t *testing.T) {
	s3p := snapshotS3(t)
	r := newRelife(t, "relife-lost", snapshotStore(s3p))
	cfg := r.cfg(t.TempDir())
	r.firstLife(t, cfg)
	id := r.topicID(t)
	ghost := []Change{{Key: encodeWindowKey("ghost", window.Window{End: 1000}), Value: r.old[0].Value}}

	// ahead writes a copy of the changelog with a window of its own, 100
	// offsets past the topic's end, into a local state in dir and
	// returns its snapshot.
	ahead := func(dir string) []byte {
		l, err := openLocal(dir, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer l.close()
		sp, err := l.space("per-k", r.job+".per-k.repartition/0")
		if err != nil {
			t.Fatal(err)
		}
		if err := writeLocal(sp, ghost, r.oldEnd+100, id, true); err != nil {
			t.Fatal(err)
		}
		b, _, err := encodeSnapshot(r.oldEnd+100, id, sp)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	check := func(what string, keys []string, log string, failures []Failure) {
		t.Helper()
		if !slices.Equal(keys, r.oldKeys) {
			t.Errorf("%s: the task holds windows of %v, want the changelog's %v:\n%s", what, keys, r.oldKeys, log)
		}
		if len(failures) != 1 || failures[0].Kind != FailChangelogLost || !strings.Contains(failures[0].Text, kafkaID(id)) {
			t.Errorf("%s: failures %+v, want one %s naming topic ID %s", what, failures, FailChangelogLost, kafkaID(id))
		}
		if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "kind="+FailChangelogLost) {
			t.Errorf("%s: no ERROR of kind %s:\n%s", what, FailChangelogLost, log)
		}
	}

	snap := ahead(cfg.DataDir)
	keys, log, failures := r.restoreFailing(t, cfg)
	check("local state ahead", keys, log, failures)

	if _, err := s3p.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("snaps"),
		Key: aws.String(r.job + "/per-k/0"), Body: bytes.NewReader(snap)}); err != nil {
		t.Fatal(err)
	}
	keys, log, failures = r.restoreFailing(t, r.cfg(t.TempDir()))
	check("snapshot ahead", keys, log, failures)
}

// snapshotS3 starts versitygw with a bucket "snaps" for a test of snapshots
// (skipped in -short mode), its credentials in the environment.
func snapshotS3(t *testing.T) *testsrv.S3Process {
	if testing.Short() {
		t.Skip("runs kfake, versitygw and a worker")
	}
	s3p := testsrv.StartS3(t, "snaps")
	for _, kv := range s3p.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return s3p
}

// snapshotStore is the snapshot store of bucket "snaps" of s3p.
func snapshotStore(s3p *testsrv.S3Process) *SnapshotStore {
	return &SnapshotStore{Bucket: "snaps", Endpoint: s3p.Endpoint, PathStyle: true}
}
