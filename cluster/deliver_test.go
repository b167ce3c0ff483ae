package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/sinks"
	pgsink "github.com/runnel-dev/runnel/sinks/postgres"
	s3sink "github.com/runnel-dev/runnel/sinks/s3"
)

const testOutbox = "job.out.outbox"

// outboxRecords writes three transactions to a one-partition outbox on
// kfake, as a worker does: ten rows and a marker (committed), five rows
// and a marker (aborted), ten rows and a marker (committed); and returns
// what a read_committed reader of the partition gets.
func outboxRecords(t *testing.T) []*kgo.Record {
	t.Helper()
	brokers := testsrv.Kafka(t, 1, testOutbox)
	ctx := context.Background()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("test-outbox"), kgo.DefaultProduceTopic(testOutbox))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	txn := func(from, n int, commit kgo.TransactionEndTry) {
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := from; i < from+n; i++ {
			prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint("k", i)), Value: fmt.Appendf(nil, `{"n": %d, "k": "k%d"}`, i, i)}, nil)
		}
		prod.Produce(ctx, &kgo.Record{Headers: []kgo.RecordHeader{{Key: hdrOutboxEnd, Value: []byte("task/0")}}}, nil)
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := prod.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	txn(0, 10, kgo.TryCommit)
	txn(100, 5, kgo.TryAbort)
	txn(10, 10, kgo.TryCommit)
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{testOutbox: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var recs []*kgo.Record
	for len(recs) < 22 {
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		fs := cons.PollFetches(pctx)
		cancel()
		if err := fs.Err0(); err != nil {
			t.Fatalf("read the outbox: %v (%d records read)", err, len(recs))
		}
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func testDelivery() *delivery {
	return &delivery{w: &Worker{cfg: Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}}
}

var testColumns = []sinks.Column{{Name: "n", Type: sinks.Int64}, {Name: "k", Type: sinks.String}}

// A deliverer that crashed after its PostgreSQL commit, before anything
// else recorded how far it got, is followed by one that reads the outbox
// from an older position: the rows already in the table are skipped, the
// rest written once; and a stale deliverer committing its batch again
// afterwards writes nothing. The aborted transaction's rows never appear.
func TestDeliverPostgresReplayWritesNothingTwice(t *testing.T) {
	recs := outboxRecords(t)
	pg := testsrv.StartPostgres(t)
	ctx := context.Background()
	sink, err := pgsink.New(ctx, pgsink.Config{DSN: pg.DSN, Table: "rows_out", CreateTable: true, Columns: testColumns, Job: "job", Sink: "out"})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ob := &outbox{sink: "out", topic: testOutbox, pg: sink}
	d := testDelivery()
	id := tp{testOutbox, 0}
	last := recs[len(recs)-1].Offset + 1

	// The first life delivers the first transaction, then dies.
	first := &outPart{ob: ob, id: id, task: outboxTask(kadm.TopicID{}, 0), recs: slices.Clone(recs[:11])}
	if err := d.deliverPG(ctx, first); err != nil {
		t.Fatal(err)
	}
	if want := recs[10].Offset + 1; first.pos != want {
		t.Fatalf("after the first transaction the position is %d, want %d", first.pos, want)
	}
	// Its successor starts from offset 0 (its position came from
	// somewhere that had not heard of the first life's commit).
	second := &outPart{ob: ob, id: id, task: outboxTask(kadm.TopicID{}, 0), recs: slices.Clone(recs)}
	if err := d.deliverPG(ctx, second); err != nil {
		t.Fatal(err)
	}
	// The first life's zombie commits its batch again.
	zombie := &outPart{ob: ob, id: id, task: outboxTask(kadm.TopicID{}, 0), recs: slices.Clone(recs[:11])}
	if err := d.deliverPG(ctx, zombie); err != nil {
		t.Fatal(err)
	}
	if second.pos != last || zombie.pos != last || len(zombie.recs) != 0 {
		t.Errorf("positions: successor %d, zombie %d (%d records left), want both %d", second.pos, zombie.pos, len(zombie.recs), last)
	}
	if pos, err := sink.Position(ctx, outboxTask(kadm.TopicID{}, 0)); err != nil || pos != last {
		t.Errorf("the progress row holds %d (%v), want %d", pos, err, last)
	}
	conn := pg.Connect(t)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT n FROM rows_out ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	checkEachOnce(t, "table rows", got)
}

// checkEachOnce checks that got holds the committed rows' numbers, 0 to
// 19, each once (sorted).
func checkEachOnce(t *testing.T, what string, got []int64) {
	t.Helper()
	want := make([]int64, 20)
	for i := range want {
		want[i] = int64(i)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s %v, want each of 0..19 once", what, got)
	}
}

// A segment put again (a deliverer that died after putting it, before
// storing its position) replaces its objects: the bucket holds each row
// once, in one object per segment named by the segment's marker, and a
// segment whose marker was not read yet waits for it.
func TestDeliverS3ReplayReplacesSegments(t *testing.T) {
	recs := outboxRecords(t)
	s3p := testsrv.StartS3(t, "lake")
	ctx := context.Background()
	sink, err := s3sink.New(ctx, s3sink.Config{Bucket: "lake", Prefix: "rows/", Format: s3sink.FormatJSONLines, Columns: testColumns,
		Job: "job", Sink: "out", Client: s3p.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	ob := &outbox{sink: "out", topic: testOutbox, s3: sink}
	d := testDelivery()
	id := tp{testOutbox, 0}

	// The first life read the first segment and half the second.
	first := &outPart{ob: ob, id: id, task: outboxTask(kadm.TopicID{}, 0), recs: slices.Clone(recs[:16])}
	if err := d.deliverS3(ctx, first); err != nil {
		t.Fatal(err)
	}
	if want := recs[10].Offset + 1; first.pos != want || len(first.recs) != 5 {
		t.Fatalf("after the first segment: position %d with %d records waiting, want %d with 5", first.pos, len(first.recs), want)
	}
	before := dataKeys(t, s3p)
	if len(before) != 1 {
		t.Fatalf("after the first segment the bucket holds %v, want one object", before)
	}
	// It died before storing its position: the successor starts at 0.
	second := &outPart{ob: ob, id: id, task: outboxTask(kadm.TopicID{}, 0), recs: slices.Clone(recs)}
	if err := d.deliverS3(ctx, second); err != nil {
		t.Fatal(err)
	}
	after := dataKeys(t, s3p)
	if len(after) != 2 || after[0] != before[0] && after[1] != before[0] {
		t.Errorf("after the replay the bucket holds %v, want the first segment's %s and one more", after, before[0])
	}
	var got []int64
	for _, k := range after {
		rows, err := s3sink.ReadObject(k, s3p.Get(t, "lake", k))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			got = append(got, int64(r["n"].(float64)))
		}
	}
	slices.Sort(got)
	checkEachOnce(t, "rows in the bucket", got)
	last := recs[len(recs)-1].Offset + 1
	if pos, err := sink.Position(ctx, outboxTask(kadm.TopicID{}, 0)); err != nil || pos != last {
		t.Errorf("the stored position is %d (%v), want %d", pos, err, last)
	}
}

func dataKeys(t *testing.T, s3p *testsrv.S3Process) []string {
	var keys []string
	for _, k := range s3p.Objects(t, "lake", "") {
		if strings.HasPrefix(k, "rows/") {
			keys = append(keys, k)
		}
	}
	return keys
}

// Rows the outbox topic's retention deleted before they were delivered are
// a failure the worker reports: counted, logged and in its failure list,
// naming the partition and how far delivery had got.
func TestDeliverReportsRowsLostToRetention(t *testing.T) {
	const topic = "job.lost.outbox"
	brokers := testsrv.Kafka(t, 1, topic)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteRecords(ctx, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: 6}}}); err != nil {
		t.Fatal(err)
	}
	d := testDelivery()
	d.w.cfg.Spec = &jobs.Spec{Name: "job"}
	d.w.failures.changed = make(chan struct{}, 1)
	d.cl = cl
	id := tp{topic, 0}
	d.parts = map[tp]*outPart{id: {ob: &outbox{sink: "lost", topic: topic}, id: id, pos: 2}}
	d.checkRetention(ctx, []string{topic})
	got := d.w.Failures()
	if len(got) != 1 || got[0].Kind != FailOutboxLost || got[0].Task != id.String() ||
		!strings.Contains(got[0].Text, "delivered up to offset 2, oldest offset now 6") {
		t.Fatalf("failures after rows 2-5 were deleted undelivered: %+v", got)
	}
	// Delivered past the deleted rows: nothing is lost.
	d.parts[id].pos = 7
	d.checkRetention(ctx, []string{topic})
	if n := len(d.w.Failures()); n != 1 {
		t.Errorf("a partition delivered past the oldest offset was reported lost (%d failures)", n)
	}
}
