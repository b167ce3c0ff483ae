package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sources"
	kinesissrc "github.com/runnel-dev/runnel/sources/kinesis"
)

// TestKinesisExampleJob runs examples/kinesis-to-kinesis.yaml on the real
// binary with its endpoint pointed at a second runnel serve: the job reads
// the remote stream through the Kinesis API, counts per key in 10-second
// windows and writes the counts back there; each window's count, with
// repeats dropped by record id, equals a batch count of the input.
func TestKinesisExampleJob(t *testing.T) {
	testsrv.AWSTestKeys(t)
	remote := testsrv.StartRunnel(t, "--streams", "clicks:2,counts:1")
	c := remote.Client()
	ctx := context.Background()
	want := map[string]int{}
	in := &kinesis.PutRecordsInput{StreamName: aws.String("clicks")}
	base := int64(1_767_225_600_000)
	for i := range 300 {
		k := fmt.Sprintf("k%d", i%5)
		ts := base + int64(i)*200 // 60 s of event time: six windows
		want[fmt.Sprintf("%s@%d", k, ts/10000*10000)]++
		in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: fmt.Appendf(nil, `{"k":%q,"ts":%d}`, k, ts)})
	}
	// A late-enough record moves the watermark past every window above.
	in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String("end"), Data: fmt.Appendf(nil, `{"k":"end","ts":%d}`, base+600_000)})
	out, err := c.PutRecords(ctx, in)
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("put: %v %v", err, out)
	}
	job := exampleJob(t, "../../examples/kinesis-to-kinesis.yaml", "http://127.0.0.1:7071", remote.URL)
	local := testsrv.StartRunnel(t)
	req, _ := http.NewRequest("POST", local.URL+"/api/v1/jobs", strings.NewReader(job))
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	src, err := kinesissrc.New(ctx, kinesissrc.Config{Stream: "counts", Conn: kinesisconn.Conn{Endpoint: remote.URL, Region: "us-east-1"},
		PollInterval: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Open(ctx, sources.Shard{ID: "shardId-000000000000"}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := map[string]int{}
	ids := map[string]bool{}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	buf := make([]sources.Record, 100)
	for len(got) < len(want) {
		n, err := r.Read(rctx, buf)
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("after 3 minutes %d of %d window counts arrived: %v", len(got), len(want), got)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range buf[:n] {
			row := rec.Value.(map[string]any)
			id, _ := row["runnel_id"].(string)
			if id == "" || ids[id] {
				continue // a repeat of an at-least-once write
			}
			ids[id] = true
			got[fmt.Sprintf("%v@%.0f", row["key"], row["window_start"])] += int(row["n"].(float64))
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("window %s: count %d, want %d", k, got[k], n)
		}
	}
}
