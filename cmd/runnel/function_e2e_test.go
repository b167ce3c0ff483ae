package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// The function job of TestFunctionJobEndToEnd: records pass through with
// their shard and sequence number; a batch holding the poison record
// throws, is bisected down to it and sends it to the on-failure stream;
// record 13 is filtered out.
const functionJob = `name: fn-e2e
source: {stream: orders, start: trim_horizon}
operators:
  - id: handle
    function:
      handler: |
        (batch, ctx) => {
          if (batch.some(r => r.data.poison)) throw new Error("poison record in batch");
          return {records: batch.map(r => ({partitionKey: r.partitionKey,
            data: {n: r.data.n, key: r.partitionKey, shard: r.shardId, seq: r.sequenceNumber}}))};
        }
      batch_size: 8
      bisect_batch_on_error: true
      maximum_retry_attempts: 1
      on_failure: orders-failed
      filter_criteria:
        - {data: {n: [{anything-but: [13]}]}}
sinks:
  - {id: out, input: handle, stream: {name: orders-handled}}
checkpoint: {every: 300ms}
`

// putOrders puts records n0..n1-1 (key k<n%5>) into orders; poison marks
// one of them.
func putOrders(n *node, n0, n1, poison int) {
	n.t.Helper()
	var recs []map[string]any
	for i := n0; i < n1; i++ {
		data := map[string]any{"n": i}
		if i == poison {
			data["poison"] = true
		}
		recs = append(recs, map[string]any{"key": fmt.Sprintf("k%d", i%5), "json": data})
	}
	n.putRecords("orders", recs)
}

type handled struct {
	N     int    `json:"n"`
	Key   string `json:"key"`
	Shard string `json:"shard"`
	Seq   string `json:"seq"`
}

func (n *node) handledRecords() []handled {
	var out []handled
	for _, b := range n.streamRecords("orders-handled") {
		var h handled
		if err := json.Unmarshal(b, &h); err != nil {
			n.t.Fatalf("output record %s: %v", b, err)
		}
		out = append(out, h)
	}
	return out
}

// TestFunctionJobEndToEnd submits a job with a function over HTTP to the
// real binary: every record but the filtered one reaches the output
// stream once, in order per partition key; the poison record alone
// reaches the on-failure stream as Lambda's record; and after a kill -9
// the job resumes from its checkpoint without repeating an output.
func TestFunctionJobEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("function end-to-end test skipped in -short mode: it runs the real binary")
	}
	t0 := time.Now()
	n := newNode(t)
	n.Start()
	t.Logf("started at %s", time.Since(t0))
	if code, b := n.Do("POST", "/api/v1/streams", "application/json", `{"name":"orders","shards":2}`); code != 201 {
		t.Fatalf("create stream: %d %s", code, b)
	}
	const poison = 21
	putOrders(n, 0, 60, poison)
	n.submit(functionJob)
	want := func(upTo int) []int {
		var w []int
		for i := range upTo {
			if i != 13 && i != poison {
				w = append(w, i)
			}
		}
		return w
	}
	check := func(upTo int) []handled {
		t.Helper()
		var got []handled
		if !testutil.Within(60*time.Second, func() bool { got = n.handledRecords(); return len(got) >= len(want(upTo)) }) {
			t.Fatalf("%d output records after 60 s, want %d; job %+v", len(got), len(want(upTo)), n.job("fn-e2e"))
		}
		var ns []int
		last := map[string]int{}
		for _, h := range got {
			ns = append(ns, h.N)
			if p, ok := last[h.Key]; ok && h.N <= p {
				t.Errorf("key %s: %d after %d", h.Key, h.N, p)
			}
			last[h.Key] = h.N
			if !strings.HasPrefix(h.Shard, "shardId-") || h.Seq == "" {
				t.Errorf("output %+v lacks its shard or sequence number", h)
			}
		}
		slices.Sort(ns)
		if d := testutil.Diff(want(upTo), ns); d != "" {
			t.Fatalf("output records (each once):\n%s", d)
		}
		return got
	}
	check(60)
	t.Logf("first 60 checked at %s", time.Since(t0))

	var failed []map[string]any
	if !testutil.Within(30*time.Second, func() bool {
		failed = nil
		for _, b := range n.streamRecords("orders-failed") {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("on-failure record %s: %v", b, err)
			}
			failed = append(failed, m)
		}
		return len(failed) > 0
	}) {
		t.Fatal("no on-failure record after 30 s")
	}
	if len(failed) != 1 {
		t.Fatalf("%d on-failure records, want 1: %v", len(failed), failed)
	}
	info, _ := failed[0]["KinesisBatchInfo"].(map[string]any)
	rc, _ := failed[0]["requestContext"].(map[string]any)
	resp, _ := failed[0]["responseContext"].(map[string]any)
	if info["batchSize"] != 1.0 || info["startSequenceNumber"] != info["endSequenceNumber"] ||
		!strings.HasPrefix(fmt.Sprint(info["shardId"]), "shardId-") || info["approximateArrivalOfFirstRecord"] == nil {
		t.Errorf("on-failure batch info %v, want the poison record alone", info)
	}
	if rc["condition"] != "RetryAttemptsExhausted" || rc["approximateInvokeCount"] != 2.0 ||
		!strings.Contains(fmt.Sprint(resp["errorMessage"]), "poison record in batch") {
		t.Errorf("on-failure record %v", failed[0])
	}
	n.errorLogged("on-failure destination", "fn-e2e")
	for _, op := range n.job("fn-e2e").Operators {
		if op.ID == "handle" && op.DeadLettered != 1 {
			t.Errorf("job status: operator handle dead_lettered %d, want 1", op.DeadLettered)
		}
	}
	t.Logf("on-failure checked at %s", time.Since(t0))

	// A crash while records flow: the job resumes after its last
	// checkpoint; the outputs it committed are not written again, and
	// the ones it had not committed are written once.
	putOrders(n, 60, 70, -1)
	n.Kill()
	t.Logf("killed at %s", time.Since(t0))
	n.Start()
	putOrders(n, 70, 80, -1)
	check(80)
	t.Logf("80 checked at %s", time.Since(t0))
	if got := n.handledRecords(); len(got) != len(want(80)) {
		t.Fatalf("%d output records after the restart, want %d", len(got), len(want(80)))
	}
}

// TestFunctionOverKinesisSource runs a function over a Kinesis source (a
// second Runnel as the Kinesis endpoint): the function gets the records'
// partition keys and sequence numbers from the Kinesis API, and its
// outputs reach a stream of the job's server.
func TestFunctionOverKinesisSource(t *testing.T) {
	if testing.Short() {
		t.Skip("function end-to-end test skipped in -short mode: it runs the real binary")
	}
	testsrv.AWSTestKeys(t)
	remote := testsrv.StartRunnel(t, "--streams", "remote:2")
	kc := remote.Client()
	var seqs = map[string]string{}
	for i := range 30 {
		out, err := kc.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("remote"),
			PartitionKey: aws.String(fmt.Sprintf("k%d", i%4)), Data: []byte(fmt.Sprintf(`{"n": %d}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		seqs[fmt.Sprint(i)] = aws.ToString(out.SequenceNumber)
	}
	n := newNode(t)
	n.Start()
	n.submit(`name: fn-kinesis
source:
  kinesis: {stream: remote, endpoint: "` + remote.URL + `", region: us-east-1, poll_interval: 100ms}
operators:
  - id: handle
    function:
      handler: "(batch) => ({records: batch.map(r => ({partitionKey: r.partitionKey, data: {n: r.data.n, key: r.partitionKey, shard: r.shardId, seq: r.sequenceNumber}}))})"
      batch_size: 7
      filter_criteria: ['{"data": {"n": [{"numeric": ["<", 25]}]}}']
sinks:
  - {id: out, input: handle, stream: {name: orders-handled}}
checkpoint: {every: 300ms}
`)
	var got []handled
	if !testutil.Within(60*time.Second, func() bool { got = n.handledRecords(); return len(got) >= 25 }) {
		t.Fatalf("%d output records after 60 s, want 25; job %+v", len(got), n.job("fn-kinesis"))
	}
	var ns []int
	for _, h := range got {
		ns = append(ns, h.N)
		if h.Key != fmt.Sprintf("k%d", h.N%4) || h.Seq != seqs[fmt.Sprint(h.N)] || !strings.HasPrefix(h.Shard, "shardId-") {
			t.Errorf("output %+v: want key k%d and sequence number %s", h, h.N%4, seqs[fmt.Sprint(h.N)])
		}
	}
	slices.Sort(ns)
	var want []int
	for i := range 25 {
		want = append(want, i)
	}
	if d := testutil.Diff(want, ns); d != "" {
		t.Fatalf("output records (each once):\n%s", d)
	}
}
