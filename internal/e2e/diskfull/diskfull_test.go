package diskfull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

const (
	baseTs    = int64(1_700_000_000_000)
	stepMs    = 5    // event time between records
	windowMs  = 1000 // tumbling window
	lagMs     = 2000 // the job's watermark
	jobName   = "agg"
	pgTable   = "agg_out"
	keysCount = 3
)

func jobFile(dsn string) string {
	return fmt.Sprintf(`name: %s
source: {stream: in, shards: 2, format: json, event_time: "r => r.ts", watermark: 2s}
operators:
  - id: w
    window:
      key: "r => r.k"
      tumbling: 1s
      aggregate: {n: count}
sinks:
  - {id: out, input: w, stream: {name: out}}
  - {id: pg, input: w, postgres: {dsn: %q, table: %s, create_table: true}}
checkpoint: {every: 200ms}
restart: {strategy: exponential-delay, initial_backoff: 200ms, max_backoff: 2s, attempts: 1000}
`, jobName, dsn, pgTable)
}

// producer puts records i = 0, 1, ... with PutRecords, as an application
// does: entries a call failed are put again first. It keeps what each
// acknowledged entry was given as its sequence number and the error
// codes it saw.
type producer struct {
	c    *kinesis.Client
	stop chan struct{}
	done chan struct{}

	mu struct {
		sync.Mutex
		next     int
		acked    map[int]string // i → sequence number
		codes    map[string]int // per-entry error codes and whole-call errors
		lastOK   time.Time
		lastFail time.Time
	}
}

func startProducer(c *kinesis.Client) *producer {
	p := &producer{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	p.mu.acked = map[int]string{}
	p.mu.codes = map[string]int{}
	go p.run()
	return p
}

func (p *producer) run() {
	defer close(p.done)
	var pending []int
	pad := strings.Repeat("x", 200)
	for {
		select {
		case <-p.stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
		p.mu.Lock()
		for len(pending) < 20 {
			pending = append(pending, p.mu.next)
			p.mu.next++
		}
		p.mu.Unlock()
		var entries []types.PutRecordsRequestEntry
		for _, i := range pending {
			entries = append(entries, types.PutRecordsRequestEntry{
				PartitionKey: aws.String(strconv.Itoa(i)),
				Data:         fmt.Appendf(nil, `{"i":%d,"k":"k%d","ts":%d,"pad":%q}`, i, i%keysCount, baseTs+int64(i)*stepMs, pad),
			})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := p.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("in"), Records: entries})
		cancel()
		p.mu.Lock()
		if err != nil {
			p.mu.codes["call: "+errorCode(err)]++
			p.mu.lastFail = time.Now()
			p.mu.Unlock()
			continue
		}
		var again []int
		for k, r := range out.Records {
			if r.ErrorCode != nil {
				p.mu.codes[*r.ErrorCode]++
				p.mu.lastFail = time.Now()
				again = append(again, pending[k])
				continue
			}
			p.mu.acked[pending[k]] = aws.ToString(r.SequenceNumber)
			p.mu.lastOK = time.Now()
		}
		p.mu.Unlock()
		pending = again
	}
}

func (p *producer) Stop() {
	close(p.stop)
	<-p.done
}

func (p *producer) acked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.mu.acked)
}

func (p *producer) failures() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.mu.codes {
		out[k] = v
	}
	return out
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return err.Error()
}

// jobInfo is what the test reads of GET /api/v1/jobs/{id}.
type jobInfo struct {
	State    string   `json:"state"`
	Reason   string   `json:"reason"`
	Warnings []string `json:"warnings"`
}

func getJob(t *testing.T, s *testbin.Server) jobInfo {
	t.Helper()
	st, b := s.Do("GET", "/api/v1/jobs/"+jobName, "", "")
	if st != 200 {
		t.Fatalf("GET job: %d %s", st, b)
	}
	var j jobInfo
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// metric returns the value of the first line of /metrics that starts
// with name (labels included), -1 when there is none.
func metric(t *testing.T, s *testbin.Server, name string) float64 {
	t.Helper()
	st, b := s.Do("GET", "/metrics", "", "")
	if st != 200 {
		t.Fatalf("GET /metrics: %d", st)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(l[len(name):]), 64)
			return v
		}
	}
	return -1
}

// settled waits until the restarted job has taken two checkpoints, each
// of which commits what its sinks wrote since the one before: what it
// replayed from its last checkpoint is then in its sinks, duplicates too.
func settled(t *testing.T, s *testbin.Server) {
	t.Helper()
	var from float64
	testutil.Eventually(t, 30*time.Second, func() bool {
		from = metric(t, s, `runnel_job_checkpoint_epoch{job="agg"}`)
		return from > 0
	}, "the restarted job reports its checkpoint epoch")
	testutil.Eventually(t, 30*time.Second, func() bool {
		return metric(t, s, `runnel_job_checkpoint_epoch{job="agg"}`) >= from+2
	}, "the restarted job takes two checkpoints")
}

// saysDiskFull reports whether the job's state, reason or warnings say
// that the disk is full.
func saysDiskFull(j jobInfo) bool {
	for _, m := range append([]string{j.Reason}, j.Warnings...) {
		if strings.Contains(m, "disk is full") || strings.Contains(m, "no space left") {
			return true
		}
	}
	return false
}

type window struct {
	Key   string
	Start int64
}

// inputModel reads stream in and checks it against the producer's
// acknowledgements; it returns the window counts of what the stream holds
// and the watermark its records allow.
func inputModel(t *testing.T, c *kinesis.Client, p *producer) (map[window]int, int64) {
	t.Helper()
	recs := testsrv.ReadKinesis(t, c, "in")
	seen := map[int][]string{}
	counts := map[window]int{}
	shardMax := map[string]int64{}
	for _, r := range recs {
		var v struct {
			I  int    `json:"i"`
			K  string `json:"k"`
			Ts int64  `json:"ts"`
		}
		if err := json.Unmarshal(r.Data, &v); err != nil {
			t.Fatalf("record %s/%s: %v", r.Shard, r.Seq, err)
		}
		seen[v.I] = append(seen[v.I], r.Seq)
		counts[window{v.K, v.Ts - v.Ts%windowMs}]++
		shardMax[r.Shard] = max(shardMax[r.Shard], v.Ts)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var lost []int
	for i, seq := range p.mu.acked {
		found := false
		for _, s := range seen[i] {
			found = found || s == seq
		}
		if !found {
			lost = append(lost, i)
		}
	}
	sort.Ints(lost)
	if len(lost) > 0 {
		t.Errorf("%d acknowledged records are not in the stream (of %d acknowledged, %d read): %v", len(lost), len(p.mu.acked), len(recs), lost[:min(len(lost), 20)])
	}
	for i := range seen {
		if i >= p.mu.next {
			t.Errorf("record %d read, never put", i)
		}
	}
	wm := int64(1 << 62)
	for _, m := range shardMax {
		wm = min(wm, m-lagMs)
	}
	if len(shardMax) < 2 {
		wm = 0
	}
	return counts, wm
}

// streamResults reads the window results of stream out.
func streamResults(t *testing.T, c *kinesis.Client) map[window][]int {
	t.Helper()
	out := map[window][]int{}
	for _, r := range testsrv.ReadKinesis(t, c, "out") {
		var v struct {
			Start int64  `json:"window_start"`
			Key   string `json:"key"`
			N     int    `json:"n"`
		}
		if err := json.Unmarshal(r.Data, &v); err != nil {
			t.Fatalf("result %s: %v", r.Data, err)
		}
		w := window{v.Key, v.Start}
		out[w] = append(out[w], v.N)
	}
	return out
}

func pgResults(t *testing.T, pg *testsrv.Postgres) map[window][]int {
	t.Helper()
	conn := pg.Connect(t)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), "SELECT key, (extract(epoch from window_start)*1000)::bigint, n FROM "+pgTable)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[window][]int{}
	for rows.Next() {
		var w window
		var n int64
		if err := rows.Scan(&w.Key, &w.Start, &n); err != nil {
			t.Fatal(err)
		}
		out[w] = append(out[w], int(n))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// compare checks that results hold each window the watermark passed once,
// with the input's count, and no other window.
func compare(what string, want map[window]int, wm int64, got map[window][]int) []string {
	var bad []string
	for w, ns := range got {
		switch {
		case len(ns) != 1:
			bad = append(bad, fmt.Sprintf("%s: window %v written %d times: %v", what, w, len(ns), ns))
		case w.Start+windowMs > wm:
			bad = append(bad, fmt.Sprintf("%s: window %v fired before the watermark %d passed it", what, w, wm))
		case ns[0] != want[w]:
			bad = append(bad, fmt.Sprintf("%s: window %v counts %d, the input holds %d", what, w, ns[0], want[w]))
		}
	}
	for w := range want {
		if w.Start+windowMs <= wm && len(got[w]) == 0 {
			bad = append(bad, fmt.Sprintf("%s: window %v (count %d) missing", what, w, want[w]))
		}
	}
	sort.Strings(bad)
	return bad
}

// TestDiskFillsUnderLoad fills the disk of a real server's data directory
// while a producer puts and a job with checkpoints writes window results
// to a stream and PostgreSQL; frees it; kills the server; fills it again
// and restarts the server on the full disk.
func TestDiskFillsUnderLoad(t *testing.T) {
	t0 := time.Now()
	disk := smallDisk(t, "64m")
	testsrv.AWSTestKeys(t)
	pg := testsrv.StartPostgres(t)
	s := testbin.Start(t, testbin.Options{Data: disk + "/data", LogLevel: "info"})
	c := testsrv.KinesisClient(s.URL)
	s.CreateStream("in", 2)
	if st, b := s.Do("POST", "/api/v1/jobs", "application/yaml", jobFile(pg.DSN)); st != 201 {
		t.Fatalf("submit: %d %s", st, b)
	}
	testutil.Eventually(t, 30*time.Second, func() bool { return getJob(t, s).State == "running" }, "job running")

	t.Logf("%v: job running", time.Since(t0))
	p := startProducer(c)
	defer func() {
		select {
		case <-p.done:
		default:
			p.Stop()
		}
	}()
	testutil.Eventually(t, 30*time.Second, func() bool { return p.acked() >= 500 }, "500 records acknowledged")
	testutil.Eventually(t, 30*time.Second, func() bool { return metric(t, s, `runnel_job_checkpoint_epoch{job="agg"}`) >= 2 }, "two checkpoints")

	// The disk fills.
	ball := ballast(t, disk)
	epochFull := metric(t, s, `runnel_job_checkpoint_epoch{job="agg"}`)
	t.Logf("disk full at %d acknowledged records, checkpoint epoch %v", p.acked(), epochFull)
	full := func() bool {
		f := p.failures()
		return f["ProvisionedThroughputExceededException"]+f["call: ProvisionedThroughputExceededException"] > 0
	}
	testutil.Eventually(t, 30*time.Second, full, "puts refused with a retryable error")
	// The job says so: its checkpoints fail (they used to wait without
	// end, the job running without a word), as a warning while it runs, or
	// as the reason it failed (its state refuses writes on a full disk).
	var j jobInfo
	if !testutil.Within(30*time.Second, func() bool { j = getJob(t, s); return saysDiskFull(j) }) {
		t.Errorf("the job does not say the disk is full: %+v", j)
	}
	if m := metric(t, s, `runnel_job_checkpoints_failed{job="agg"}`); m < 1 && j.State == "running" {
		t.Errorf("runnel_job_checkpoints_failed = %v while the disk is full, want >= 1", m)
	}
	if !s.Healthy() {
		t.Errorf("the server is not healthy while the disk is full")
	}
	t.Logf("while full: job %+v; put failures %v", j, p.failures())
	if m := metric(t, s, "runnel_store_disk_full_shards"); m < 1 {
		t.Errorf("runnel_store_disk_full_shards = %v while puts are refused, want >= 1", m)
	}
	if !strings.Contains(s.Logs(), "disk full") {
		t.Errorf("no log line says the disk is full")
	}
	for code := range p.failures() {
		if !strings.Contains(code, "ProvisionedThroughputExceeded") {
			t.Errorf("a put failed with %q while the disk was full: want ProvisionedThroughputExceededException (retryable)", code)
		}
	}

	// Space is freed: everything resumes by itself.
	if err := os.Remove(ball); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	before := p.acked()
	epoch := metric(t, s, `runnel_job_checkpoint_epoch{job="agg"}`)
	testutil.Eventually(t, 30*time.Second, func() bool { return p.acked() >= before+500 }, "puts succeed again after space is freed")
	if !testutil.Within(30*time.Second, func() bool {
		j = getJob(t, s)
		return j.State == "running" && !saysDiskFull(j) && metric(t, s, `runnel_job_checkpoint_epoch{job="agg"}`) >= epoch+2
	}) {
		t.Fatalf("the job does not checkpoint again after space is freed: %+v", j)
	}
	t.Logf("resumed %v after space was freed", time.Since(freed))
	p.Stop()

	check := func(stage string) {
		t.Helper()
		t.Logf("%v: check %s", time.Since(t0), stage)
		defer func() { t.Logf("%v: checked", time.Since(t0)) }()
		want, wm := inputModel(t, c, p)
		var bad []string
		testutil.Within(30*time.Second, func() bool {
			bad = append(compare("stream out", want, wm, streamResults(t, c)), compare("postgres", want, wm, pgResults(t, pg))...)
			return len(bad) == 0
		})
		if len(bad) > 0 {
			t.Errorf("%s: %d differences:\n%s", stage, len(bad), strings.Join(bad[:min(len(bad), 30)], "\n"))
		}
	}
	check("after space was freed")

	s.Kill()
	s.Start()
	testutil.Eventually(t, 30*time.Second, func() bool { return getJob(t, s).State == "running" }, "job running after kill -9")
	settled(t, s)
	check("after kill -9 and restart")

	// Filled again, the server restarts on the full disk.
	s.Kill()
	ball = ballast(t, disk)
	if err := s.TryStart(); err != nil {
		t.Fatalf("the server does not start on a full disk: %v", err)
	}
	if !testutil.Within(30*time.Second, func() bool { j = getJob(t, s); return saysDiskFull(j) }) {
		t.Errorf("after a start on a full disk the job does not say the disk is full: %+v", j)
	}
	t.Logf("after a start on a full disk: job %+v", j)
	// SIGTERM on the full disk: the server stops (a job's last checkpoint
	// fails at once) and starts again.
	if err := s.Stop(); err != nil {
		t.Errorf("SIGTERM on a full disk: %v", err)
	}
	if err := s.TryStart(); err != nil {
		t.Fatalf("the server does not start again on a full disk: %v", err)
	}
	if err := os.Remove(ball); err != nil {
		t.Fatal(err)
	}
	if !testutil.Within(30*time.Second, func() bool { j = getJob(t, s); return j.State == "running" && !saysDiskFull(j) }) {
		t.Fatalf("the job does not run again once space is freed after a start on a full disk: %+v", j)
	}
	settled(t, s)
	check("after a start on a full disk")

	// SIGTERM while the disk is full under a running job: the server
	// stops (the job's last checkpoint fails at once) and, once space is
	// freed, starts with nothing lost.
	ball = ballast(t, disk)
	if !testutil.Within(30*time.Second, func() bool { j = getJob(t, s); return saysDiskFull(j) }) {
		t.Errorf("filled again, the job does not say the disk is full: %+v", j)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("SIGTERM on a full disk: %v", err)
	}
	if err := os.Remove(ball); err != nil {
		t.Fatal(err)
	}
	s.Start()
	testutil.Eventually(t, 30*time.Second, func() bool { return getJob(t, s).State == "running" }, "job running after SIGTERM on a full disk")
	settled(t, s)
	check("after SIGTERM on a full disk")
}
