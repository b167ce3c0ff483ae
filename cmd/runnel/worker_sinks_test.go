package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	s3sink "github.com/runnel-dev/runnel/sinks/s3"
)

// The sinks of the worker job with PostgreSQL and S3 sinks, in place of
// workerJob's Kafka sink: the same windows upserted into a table by
// (key, window_start), inserted into a second table (where a duplicate
// would be a second row), and written as Parquet objects to a bucket.
const workerSinks = `sinks:
  - id: pg
    input: per-page
    postgres: {dsn: "%[2]s", table: views, key: [key, window_start], create_table: true}
  - id: pglog
    input: per-page
    postgres: {dsn: "%[2]s", table: views_log, create_table: true}
  - id: lake
    input: per-page
    s3: {endpoint: "%[3]s", path_style: true, bucket: lake, prefix: views/, format: parquet}
`

// sinksCluster is workerCluster with PostgreSQL, versitygw and the sinks
// job.
type sinksCluster struct {
	*workerCluster
	pg  *testsrv.Postgres
	s3  *testsrv.S3Process
	env []string
}

func newSinksCluster(t *testing.T) *sinksCluster {
	c := &sinksCluster{workerCluster: newWorkerCluster(t), pg: testsrv.StartPostgres(t), s3: testsrv.StartS3(t, "lake")}
	c.env = c.s3.Env()
	c.job = filepath.Join(t.TempDir(), "sinks-job.yaml")
	jobSrc, _, ok := strings.Cut(workerJob, "sinks:\n")
	if !ok {
		t.Fatal("workerJob has no sinks")
	}
	job := fmt.Sprintf(jobSrc+workerSinks, c.kafka.Addr, c.pg.DSN, c.s3.Endpoint)
	if err := os.WriteFile(c.job, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// supervised starts a worker that a supervisor starts again when it
// exits by itself (see workerProc).
func (c *sinksCluster) supervised(t *testing.T, id string, extra ...string) *workerProc {
	w := &workerProc{t: t, id: id, supervised: true, env: c.env, args: append([]string{"worker", "--cluster", "kafka://" + c.kafka.Addr,
		"--job", c.job, "--id", id, "--log-level", "info", "--session-timeout", "6s"}, extra...)}
	w.start(c.bin)
	t.Cleanup(w.kill)
	return w
}

// tableRows reads a sink table as window rows.
func (c *sinksCluster) tableRows(t *testing.T, table string) []windowRow {
	t.Helper()
	ctx := context.Background()
	conn := c.pg.Connect(t)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT key, window_start, window_end, views, total FROM `+table)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil
		}
		t.Fatalf("read %s: %v", table, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (windowRow, error) {
		var w windowRow
		var start, end time.Time
		err := r.Scan(&w.Key, &start, &end, &w.Views, &w.Total)
		w.Start, w.End = start.UnixMilli(), end.UnixMilli()
		return w, err
	})
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	sortRows(out)
	return out
}

// lakeRows reads every object under the bucket's data prefix, and
// returns the keys of the objects outside it.
func (c *sinksCluster) lakeRows(t *testing.T) (rows []windowRow, others []string) {
	t.Helper()
	for _, k := range c.s3.Objects(t, "lake", "") {
		if !strings.HasPrefix(k, "views/") {
			others = append(others, k)
			continue
		}
		recs, err := s3sink.ReadObject(k, c.s3.Get(t, "lake", k))
		if err != nil {
			t.Fatalf("object %s: %v", k, err)
		}
		for _, m := range recs {
			rows = append(rows, windowRow{Start: wholeNumber(m["window_start"]), End: wholeNumber(m["window_end"]),
				Key: fmt.Sprint(m["key"]), Views: wholeNumber(m["views"]), Total: float64(wholeNumber(m["total"]))})
		}
	}
	sortRows(rows)
	return rows, others
}

// waitSinks waits until both tables and the bucket hold want rows each
// (or the timeout passes), then a little longer to catch duplicates, and
// checks each against the batch computation.
func (c *sinksCluster) waitSinks(t *testing.T, want []windowRow, timeout time.Duration) {
	t.Helper()
	full := func() bool {
		lake, _ := c.lakeRows(t)
		return len(c.tableRows(t, "views")) >= len(want) && len(c.tableRows(t, "views_log")) >= len(want) && len(lake) >= len(want)
	}
	if !testutil.Within(timeout, full) {
		t.Errorf("the sinks did not get all %d windows within %s", len(want), timeout)
	}
	// Duplicates would come from a replay: give one a commit interval
	// and a delivery round to show.
	time.Sleep(3 * time.Second)
	checkResults(t, c.tableRows(t, "views"), want, nil)
	t.Log("views_log (inserts):")
	checkResults(t, c.tableRows(t, "views_log"), want, nil)
	lake, others := c.lakeRows(t)
	t.Log("lake (Parquet objects):")
	checkResults(t, lake, want, nil)
	for _, k := range others {
		if !strings.HasPrefix(k, s3sink.DefaultStagingPrefix+"page-views/lake/positions/") {
			t.Errorf("object %s is outside the sink's prefix and is not a delivery position", k)
		}
	}
}

// One worker runs the windowed job from Kafka into PostgreSQL (upsert and
// insert) and S3 (Parquet): each equals the batch computation.
func TestWorkerSinksPostgresS3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake, PostgreSQL, versitygw and a worker")
	}
	c := newSinksCluster(t)
	gen := &clickGen{rng: testutil.Rand(t, 1)}
	startWorkerEnv(t, c.bin, c.kafka.Addr, c.job, "w1", c.env, "--session-timeout", "6s")
	produceClicks(t, c.prod, gen.make(3000))
	produceEnd(t, c.prod, workerPartitions)
	c.waitSinks(t, batchWindows(gen.all), 2*time.Minute)
}

// Three workers run the job with PostgreSQL and S3 sinks while workers
// are killed with SIGKILL at random moments (seeded: -seed) and started
// again, after a scale-out from one worker to three and before a scale-in
// to two: both tables and the bucket's published objects equal the batch
// computation, with nothing missing, duplicated or wrong, and nothing
// but the sink's objects and its delivery positions in the bucket.
func TestWorkerSinksKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake, PostgreSQL, versitygw and three workers")
	}
	c := newSinksCluster(t)
	rng := testutil.Rand(t, 1)
	gen := &clickGen{rng: rng}
	dataRoot := t.TempDir()
	workers := killScenario(t, rng, gen, c.prod, c.bin, func(id string) *workerProc {
		if id == "w3" {
			return c.supervised(t, id) // restores from changelogs only
		}
		return c.supervised(t, id, "--data", filepath.Join(dataRoot, id))
	})
	c.waitSinks(t, batchWindows(gen.all), 3*time.Minute)
	logRestarts(t, workers)
}

// The job of BenchmarkWorkerPostgres: every click into a table.
const workerPGBenchJob = `name: page-views
source:
  kafka: {brokers: [%[1]s], topics: [clicks]}
operators:
  - id: real
    filter: "r => !r.end"
sinks:
  - id: pg
    input: real
    postgres: {dsn: "%[2]s", table: clicks_out, create_table: true}
`

// BenchmarkWorkerPostgres runs one worker over 100,000 clicks already in
// Kafka into a PostgreSQL table (through the sink's outbox) and reports
// rows/s from the worker's start until the table holds them all, and the
// worker process's CPU time per row (PostgreSQL's and the broker's not
// counted).
func BenchmarkWorkerPostgres(b *testing.B) {
	const n = 100_000
	for range b.N {
		c := newWorkerCluster(b)
		pg := testsrv.StartPostgres(b)
		job := filepath.Join(b.TempDir(), "pg-job.yaml")
		if err := os.WriteFile(job, []byte(fmt.Sprintf(workerPGBenchJob, c.kafka.Addr, pg.DSN)), 0o644); err != nil {
			b.Fatal(err)
		}
		gen := &clickGen{rng: testutil.Rand(b, 1)}
		for range n / 10_000 {
			produceClicks(b, c.prod, gen.make(10_000))
		}
		ctx := context.Background()
		conn := pg.Connect(b)
		count := func() int {
			var k int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM clicks_out`).Scan(&k); err != nil {
				return -1
			}
			return k
		}
		start := time.Now()
		w := startWorker(b, c.bin, c.kafka.Addr, job, "w1")
		ok := testutil.Within(10*time.Minute, func() bool { return count() >= n })
		elapsed := time.Since(start)
		got := count()
		conn.Close(ctx)
		w.cmd.Process.Signal(syscall.SIGTERM)
		w.cmd.Wait()
		st := w.cmd.ProcessState
		w.cmd = nil
		if !ok || got != n {
			log, _ := os.ReadFile(w.log.Name())
			b.Fatalf("%d rows in the table, want %d; worker log:\n%s", got, n, testutil.Tail(string(log), 3000))
		}
		cpu := st.UserTime() + st.SystemTime()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "rows/s")
		b.ReportMetric(float64(cpu.Microseconds())/n, "worker-cpu-µs/row")
	}
}
