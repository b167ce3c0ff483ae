package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestServeAnswersWhileJobsStart: `runnel serve` restarted while the
// PostgreSQL its job writes to is paused (SIGSTOP) answers /healthz, the
// jobs API and a Kinesis PutRecords at once, the job showing starting and
// /readyz 503; once PostgreSQL is resumed the job runs on from its
// checkpoint, /readyz answers 200, and the table holds every record put
// before and during the start exactly once.
func TestServeAnswersWhileJobsStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary and PostgreSQL; skipped in -short mode")
	}
	testsrv.AWSTestKeys(t)
	pg := testsrv.StartPostgres(t)
	conn := pg.Connect(t)
	if _, err := conn.Exec(context.Background(), "CREATE TABLE out (i bigint NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	srv := testbin.Start(t, testbin.Options{LogLevel: "info", Client: &http.Client{Timeout: 10 * time.Second}})
	job := fmt.Sprintf(`name: boot
source: {stream: boot-in, shards: 1}
operators:
  - {id: m, map: "r => ({i: r.i})"}
sinks:
  - {id: pg, postgres: {dsn: %q, table: out}}
checkpoint: {every: 100ms}
`, pg.DSN)
	if st, b := srv.Do("POST", "/api/v1/jobs", "application/yaml", job); st != http.StatusCreated {
		t.Fatalf("submit: %d %s", st, b)
	}
	kc := testsrv.KinesisClient(srv.URL)
	put := func(from, to int) {
		t.Helper()
		in := &kinesis.PutRecordsInput{StreamName: aws.String("boot-in")}
		for i := from; i < to; i++ {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(i)), Data: fmt.Appendf(nil, `{"i":%d}`, i)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := kc.PutRecords(ctx, in)
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("put %d..%d: %v", from, to, err)
		}
	}
	rows := func(n int) {
		t.Helper()
		var got map[int]int
		testutil.Within(60*time.Second, func() bool {
			got = pgRows(t, pg)
			return len(got) >= n
		})
		for i := range n {
			if got[i] != 1 {
				t.Fatalf("table out holds row %d %d times, want once (%d distinct rows)", i, got[i], len(got))
			}
		}
		if len(got) != n {
			t.Fatalf("table out holds %d distinct rows, want %d", len(got), n)
		}
	}
	put(0, 50)
	rows(50)
	srv.Kill()

	pids := pg.Processes()
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGSTOP)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGCONT)
			}
		}
	}
	t.Cleanup(resume)
	srv.Start() // returns once /healthz answers 200
	var ready struct {
		Status       string `json:"status"`
		JobsStarting int    `json:"jobs_starting"`
	}
	st, b := srv.Do("GET", "/readyz", "", "")
	if err := json.Unmarshal(b, &ready); err != nil || st != http.StatusServiceUnavailable || ready.Status != "starting" || ready.JobsStarting != 1 {
		t.Fatalf("/readyz while the job starts: %d %s", st, b)
	}
	var info struct{ State, Reason string }
	st, b = srv.Do("GET", "/api/v1/jobs/boot", "", "")
	if err := json.Unmarshal(b, &info); err != nil || st != http.StatusOK || info.State != "starting" {
		t.Fatalf("job while PostgreSQL is paused: %d %s", st, b)
	}
	put(50, 100)
	resume()
	if !testutil.Within(60*time.Second, func() bool {
		_, b = srv.Do("GET", "/api/v1/jobs/boot", "", "")
		return json.Unmarshal(b, &info) == nil && info.State == "running"
	}) {
		t.Fatalf("job after PostgreSQL resumed: %s", b)
	}
	if st, b := srv.Do("GET", "/readyz", "", ""); st != http.StatusOK {
		t.Fatalf("/readyz once the job runs: %d %s", st, b)
	}
	rows(100)
}

// pgRows counts the rows of table out by i (none while the cluster does
// not answer).
func pgRows(t *testing.T, pg *testsrv.Postgres) map[int]int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn := pg.Connect(t)
	defer conn.Close(context.Background())
	rs, err := conn.Query(ctx, "SELECT i FROM out")
	got := map[int]int{}
	if err != nil {
		return got
	}
	defer rs.Close()
	for rs.Next() {
		var i int
		if rs.Scan(&i) == nil {
			got[i]++
		}
	}
	return got
}
