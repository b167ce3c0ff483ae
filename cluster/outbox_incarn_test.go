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
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/jobs"
)

// pgOutboxJob parses a job named name that writes every record of topic
// in of brokers into the PostgreSQL table rows_out (through the sink's
// outbox).
func pgOutboxJob(t *testing.T, name string, brokers []string, dsn string) *jobs.Spec {
	t.Helper()
	spec, err := jobs.Parse(fmt.Appendf(nil, `name: %[1]s
source:
  kafka: {brokers: [%[2]s], topics: [in]}
operators:
  - id: all
    filter: "r => true"
sinks:
  - id: pg
    input: all
    postgres: {dsn: "%[3]s", table: rows_out, create_table: true}
`, name, strings.Join(brokers, ","), dsn))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// A job run again under its name on a new Kafka cluster (its outbox topic
// new, its offsets from 0 again) while the PostgreSQL table and its
// progress rows stay: the new run's rows reach the table, each once, as
// the first run's did.
func TestOutboxOfNewKafkaClusterDelivered(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake, PostgreSQL and workers")
	}
	pg := testsrv.StartPostgres(t)
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
	// life runs a worker of the job on a Kafka cluster of its own,
	// sends it records n in [from, to) and waits for the table to hold
	// want.
	life := func(from, to int, want []int64) {
		var log testutil.Buffer
		brokers := testsrv.Kafka(t, 1, "in")
		cfg := Config{Brokers: brokers, DataDir: t.TempDir(), Spec: pgOutboxJob(t, "again", brokers, pg.DSN),
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
			got = tableNs()
			return slices.Equal(got, want)
		}) {
			t.Fatalf("after a minute the table holds %v, want %v\n%s", got, want, log.String())
		}
	}
	seq := func(n int) []int64 {
		s := make([]int64, n)
		for i := range s {
			s[i] = int64(i)
		}
		return s
	}
	life(0, 20, seq(20))
	// The new cluster's outbox has fewer offsets than the first one's.
	life(20, 25, seq(25))
}
