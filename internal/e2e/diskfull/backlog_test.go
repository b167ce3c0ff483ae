package diskfull

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestDiskFillsUnderBacklog fills the disk while a job works through a
// backlog whose every record is a key of its own: the job's state grows
// past a memtable on the full disk, where Pebble cannot flush it. The
// server must not end (Pebble panics when it switches logs after a failed
// log write), the job must say the disk is full, and once space is freed
// it must go on by itself, its results each once.
func TestDiskFillsUnderBacklog(t *testing.T) {
	disk := smallDisk(t, "96m")
	testsrv.AWSTestKeys(t)
	s := testbin.Start(t, testbin.Options{Data: disk + "/data", LogLevel: "info"})
	c := testsrv.KinesisClient(s.URL)
	s.CreateStream("in", 2)
	job := `name: agg
source: {stream: in, shards: 2, format: json, event_time: "r => r.ts", watermark: 2s}
operators:
  - id: w
    window:
      key: "r => r.k"
      tumbling: 1s
      aggregate: {n: count}
sinks:
  - {id: out, input: w, stream: {name: out}}
checkpoint: {every: 200ms}
restart: {strategy: exponential-delay, initial_backoff: 200ms, max_backoff: 2s, attempts: 1000}
`
	if st, b := s.Do("POST", "/api/v1/jobs", "application/yaml", job); st != 201 {
		t.Fatalf("submit: %d %s", st, b)
	}
	testutil.Eventually(t, 30*time.Second, func() bool { return getJob(t, s).State == "running" }, "job running")
	if st, b := s.Do("DELETE", "/api/v1/jobs/agg", "", ""); st != 200 {
		t.Fatalf("stop: %d %s", st, b)
	}
	// The backlog: every record a key of its own, a second of event time
	// apart per 100 records.
	p := &producer{c: c}
	p.mu.acked = map[int]string{}
	p.mu.codes = map[string]int{}
	const n = 120000
	pad := strings.Repeat("x", 40)
	for from := 0; from < n; from += 500 {
		var entries []types.PutRecordsRequestEntry
		for i := from; i < from+500; i++ {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(i)),
				Data: fmt.Appendf(nil, `{"i":%d,"k":"key-%d","ts":%d,"pad":%q}`, i, i, baseTs+int64(i)*10, pad)})
		}
		out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("in"), Records: entries})
		if err != nil {
			// Stored or not, unknown: putting them again could store them
			// twice, the second copy late for its window. Not acknowledged,
			// so the model does not count on them.
			t.Logf("put the backlog (records %d-%d): %v", from, from+499, err)
			continue
		}
		if aws.ToInt32(out.FailedRecordCount) > 0 {
			t.Fatalf("put the backlog: %d records failed", aws.ToInt32(out.FailedRecordCount))
		}
		for k, r := range out.Records {
			p.mu.acked[from+k] = aws.ToString(r.SequenceNumber)
		}
	}
	p.mu.next = n
	if st, b := s.Do("POST", "/api/v1/jobs/agg/resume", "", ""); st != 200 {
		t.Fatalf("resume: %d %s", st, b)
	}
	testutil.Eventually(t, 30*time.Second, func() bool { return getJob(t, s).State == "running" }, "job running")
	ball := ballast(t, disk)
	var j jobInfo
	if !testutil.Within(60*time.Second, func() bool { j = getJob(t, s); return saysDiskFull(j) }) {
		t.Errorf("the job does not say the disk is full: %+v", j)
	}
	time.Sleep(5 * time.Second) // the job works on (or fails) on the full disk
	if !s.Running() || !s.Healthy() {
		t.Fatalf("the server ended (or is not healthy) on a full disk")
	}
	t.Logf("while full: %+v", getJob(t, s))
	if err := os.Remove(ball); err != nil {
		t.Fatal(err)
	}
	if !testutil.Within(60*time.Second, func() bool { j = getJob(t, s); return j.State == "running" && !saysDiskFull(j) }) {
		t.Fatalf("the job does not run again once space is freed: %+v", j)
	}
	settled(t, s)
	want, wm := inputModel(t, c, p)
	var bad []string
	testutil.Within(60*time.Second, func() bool {
		bad = compare("stream out", want, wm, streamResults(t, c))
		return len(bad) == 0
	})
	if len(bad) > 0 {
		t.Errorf("%d differences:\n%s", len(bad), strings.Join(bad[:min(len(bad), 30)], "\n"))
	}
}
