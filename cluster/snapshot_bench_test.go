package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/operators/window"
	"github.com/runnel-dev/runnel/state"
)

// BenchmarkRestore restores one task with a large state (RUNNEL_RESTORE_WINDOWS
// windows of about 100 bytes, 200,000 by default, each changed twice in
// its changelog) from a kfake broker and versitygw: from the whole
// changelog, and from a snapshot plus the last 1,000 changelog records.
// It reports the records read and the wall time per restore.
func BenchmarkRestore(b *testing.B) {
	windows := 200_000
	if s := os.Getenv("RUNNEL_RESTORE_WINDOWS"); s != "" {
		fmt.Sscan(s, &windows)
	}
	const topic, tail = "state.changelog", 1000
	brokers := testsrv.Kafka(b, 1, topic)
	s3p := testsrv.StartS3(b, "snaps")
	b.Setenv("AWS_ACCESS_KEY_ID", testsrv.S3AccessKey)
	b.Setenv("AWS_SECRET_ACCESS_KEY", testsrv.S3SecretKey)
	b.Setenv("AWS_REGION", testsrv.S3Region)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	db, err := state.Open(filepath.Join(b.TempDir(), "local"), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sp, err := db.Namespace("op", "t")
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 80)
	var batch []Change
	var recs []*kgo.Record
	flush := func(upTo int64, local bool) {
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
		recs = recs[:0]
		if local {
			if err := writeLocal(sp, batch, upTo, kadm.TopicID{}, false); err != nil {
				b.Fatal(err)
			}
		}
		batch = batch[:0]
	}
	// Each window twice (a first state, then its latest), then the tail.
	n := int64(0)
	for range 2 {
		for i := range windows {
			k := encodeWindowKey(fmt.Sprint("key-", i), window.Window{End: 1000})
			batch = append(batch, Change{Key: k, Value: value})
			recs = append(recs, &kgo.Record{Key: k, Value: value})
			n++
			if len(recs) == 5000 {
				flush(n-1, true)
			}
		}
	}
	flush(n-1, true)
	snap, _, err := encodeSnapshot(n-1, kadm.TopicID{}, sp)
	if err != nil {
		b.Fatal(err)
	}
	for i := range tail {
		recs = append(recs, &kgo.Record{Key: encodeWindowKey(fmt.Sprint("key-", i), window.Window{End: 1000}), Value: value})
	}
	flush(0, false)
	w := &Worker{cfg: Config{Log: slog.New(slog.DiscardHandler)}, opts: []kgo.Opt{kgo.SeedBrokers(brokers...)}, admin: kadm.NewClient(cl)}
	if w.snap, err = newSnapshots(context.Background(), &SnapshotStore{Bucket: "snaps", Endpoint: s3p.Endpoint, PathStyle: true}, "job", 1); err != nil {
		b.Fatal(err)
	}
	if _, err := w.snap.cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("snaps"),
		Key: aws.String(w.snap.key("op", 0)), Body: bytes.NewReader(snap)}); err != nil {
		b.Fatal(err)
	}
	b.Logf("changelog: %d records; snapshot: %d bytes up to offset %d, then %d records", n+tail, len(snap), n-1, tail)
	var getTime time.Duration
	restore := func(useSnap bool) (records int) {
		ctx := context.Background()
		store := NewLogStore(emptyCodec{})
		from := int64(0)
		if useSnap {
			start := time.Now()
			h, changes, ok, err := w.snap.get(ctx, "op", 0)
			if err != nil || !ok {
				b.Fatalf("snapshot: %v %v", ok, err)
			}
			getTime += time.Since(start)
			for _, c := range changes {
				if err := store.Apply(c); err != nil {
					b.Fatal(err)
				}
			}
			records, from = len(changes), h.upTo+1
		}
		_, err := w.readChangelog(ctx, topic, 0, from, func(c Change) error {
			records++
			return store.Apply(c)
		})
		if err != nil {
			b.Fatal(err)
		}
		if store.Len() != windows {
			b.Fatalf("restored %d windows, want %d", store.Len(), windows)
		}
		return records
	}
	for _, mode := range []struct {
		name string
		snap bool
	}{{"changelog", false}, {"snapshot+tail", true}} {
		b.Run(mode.name, func(b *testing.B) {
			var recs int
			start := time.Now()
			for b.Loop() {
				recs = restore(mode.snap)
			}
			b.ReportMetric(float64(recs), "records")
			b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/restore")
			if mode.snap {
				b.ReportMetric(getTime.Seconds()/float64(b.N), "s/snapshot-get")
			}
			getTime = 0
		})
	}
}

// emptyCodec stands for a window's state codec: the benchmark measures
// reading, not aggregate decoding.
type emptyCodec struct{}

func (emptyCodec) Marshal(*window.State) ([]byte, error)   { return nil, nil }
func (emptyCodec) Unmarshal([]byte) (*window.State, error) { return &window.State{}, nil }
