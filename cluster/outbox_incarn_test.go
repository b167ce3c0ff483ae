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

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/jobs"
	pgsink "github.com/runnel-dev/runnel/sinks/postgres"
	s3sink "github.com/runnel-dev/runnel/sinks/s3"
)

// outboxJob parses a job named name that writes every record of topic in
// of brokers through a sink's outbox into the PostgreSQL table rows_out
// of dsn, or, with dsn "", the S3 bucket lake of endpoint under rows/.
func outboxJob(t *testing.T, name string, brokers []string, dsn, endpoint string) *jobs.Spec {
	t.Helper()
	sink := fmt.Sprintf(`postgres: {dsn: "%s", table: rows_out, create_table: true}`, dsn)
	if dsn == "" {
		sink = fmt.Sprintf(`s3: {endpoint: "%s", path_style: true, bucket: lake, prefix: rows/, format: jsonl}`, endpoint)
	}
	spec, err := jobs.Parse(fmt.Appendf(nil, `name: %[1]s
source:
  kafka: {brokers: [%[2]s], topics: [in]}
operators:
  - id: all
    filter: "r => true"
sinks:
  - id: out
    input: all
    %[3]s
`, name, strings.Join(brokers, ","), sink))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// A job run again under its name on a new Kafka cluster (its outbox topic
// new, its offsets from 0 again) while the target and its progress
// records stay: the new run's rows reach the target, each once, as the
// first run's did, and the first run's stay.
func TestOutboxOfNewKafkaClusterDelivered(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake, PostgreSQL, versitygw and workers")
	}
	pg := testsrv.StartPostgres(t)
	s3p := testsrv.StartS3(t, "lake")
	for _, kv := range s3p.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := context.Background()
	conn := pg.Connect(t)
	defer conn.Close(ctx)
	tableNs := func() []int64 {
		rows, err := conn.Query(ctx, `SELECT n FROM rows_out ORDER BY n`)
		if err != nil {
			return nil // not created yet
		}
		ns, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	bucketNs := func() []int64 {
		var ns []int64
		for _, k := range s3p.Objects(t, "lake", "rows/") {
			rows, err := s3sink.ReadObject(k, s3p.Get(t, "lake", k))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				ns = append(ns, int64(r["n"].(float64)))
			}
		}
		slices.Sort(ns)
		return ns
	}
	seq := func(n int) []int64 {
		s := make([]int64, n)
		for i := range s {
			s[i] = int64(i)
		}
		return s
	}
	for _, c := range []struct {
		target string
		dsn    string
		got    func() []int64
	}{{"postgres", pg.DSN, tableNs}, {"s3", "", bucketNs}} {
		t.Run(c.target, func(t *testing.T) {
			// life runs a worker of the job on a Kafka cluster of its
			// own, sends it records n in [from, to) and waits for the
			// target to hold want.
			life := func(from, to int, want []int64) {
				var log testutil.Buffer
				brokers := testsrv.Kafka(t, 1, "in")
				cfg := Config{Brokers: brokers, DataDir: t.TempDir(), Spec: outboxJob(t, "again-"+c.target, brokers, c.dsn, s3p.Endpoint),
					Log: slog.New(slog.NewTextHandler(&log, nil))}
				_, stop := runWorker(t, cfg)
				defer stop()
				prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
				if err != nil {
					t.Fatal(err)
				}
				defer prod.Close()
				for i := from; i < to; i++ {
					b, _ := json.Marshal(map[string]any{"n": i})
					if err := prod.ProduceSync(ctx, &kgo.Record{Value: b}).FirstErr(); err != nil {
						t.Fatal(err)
					}
				}
				var got []int64
				if !testutil.Within(time.Minute, func() bool {
					got = c.got()
					return slices.Equal(got, want)
				}) {
					t.Fatalf("after a minute the %s target holds %v, want %v\n%s", c.target, got, want, log.String())
				}
			}
			life(0, 20, seq(20))
			// The new cluster's outbox has fewer offsets than the first
			// one's.
			life(20, 25, seq(25))
		})
	}
}

// A progress row written before outbox tasks named the topic's ID
// (outbox/P) is the partition's position for the first deliverer that
// names the ID, so an upgraded worker neither writes the delivered rows
// again nor fails on a row it does not know; it is taken over once: a
// topic of another ID (created again later) starts from 0.
func TestOutboxProgressOfOldNameTakenOverOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL")
	}
	pg := testsrv.StartPostgres(t)
	ctx := context.Background()
	sink, err := pgsink.New(ctx, pgsink.Config{DSN: pg.DSN, Table: "rows_out", CreateTable: true, Columns: testColumns, Job: "job", Sink: "out"})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	legacy := outboxTask(kadm.TopicID{}, 0)
	if _, err := sink.CommitAt(ctx, legacy, 0, 7, []any{map[string]any{"n": 1, "k": "a"}}); err != nil {
		t.Fatal(err)
	}
	ob := &outbox{sink: "out", topic: testOutbox, pg: sink}
	first, second := outboxTask(kadm.TopicID{1}, 0), outboxTask(kadm.TopicID{2}, 0)
	if first == legacy || first == second {
		t.Fatalf("tasks of topic IDs 1, 2 and none: %q, %q, %q", first, second, legacy)
	}
	for i := range 2 { // a second look (a later sync) finds the same
		if pos, err := ob.position(ctx, first, 0); err != nil || pos != 7 {
			t.Fatalf("look %d: the topic's position is %d (%v), want the old row's 7", i, pos, err)
		}
	}
	if done, err := sink.CommitAt(ctx, first, 7, 9, []any{map[string]any{"n": 2, "k": "b"}}); err != nil || done != 9 {
		t.Fatalf("delivering 7 to 9 after the takeover: %d, %v", done, err)
	}
	if pos, err := ob.position(ctx, second, 0); err != nil || pos != 0 {
		t.Errorf("a topic created again starts at %d (%v), want 0", pos, err)
	}
}

// The S3 position of the name outbox/P is taken over once as well.
func TestOutboxPositionOfOldNameTakenOverOnceS3(t *testing.T) {
	if testing.Short() {
		t.Skip("runs versitygw")
	}
	s3p := testsrv.StartS3(t, "lake")
	ctx := context.Background()
	sink, err := s3sink.New(ctx, s3sink.Config{Bucket: "lake", Prefix: "rows/", Format: s3sink.FormatJSONLines, Columns: testColumns,
		Job: "job", Sink: "out", Client: s3p.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	legacy := outboxTask(kadm.TopicID{}, 0)
	if err := sink.SetPosition(ctx, legacy, 7); err != nil {
		t.Fatal(err)
	}
	ob := &outbox{sink: "out", topic: testOutbox, s3: sink}
	first, second := outboxTask(kadm.TopicID{1}, 0), outboxTask(kadm.TopicID{2}, 0)
	for i := range 2 {
		if pos, err := ob.position(ctx, first, 0); err != nil || pos != 7 {
			t.Fatalf("look %d: the topic's position is %d (%v), want the old one's 7", i, pos, err)
		}
	}
	if pos, err := ob.position(ctx, second, 0); err != nil || pos != 0 {
		t.Errorf("a topic created again starts at %d (%v), want 0", pos, err)
	}
}
