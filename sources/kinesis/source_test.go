package kinesis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sources"
)

// anyKeys makes the default credential chain find keys; a server without
// --auth accepts any.
func anyKeys(t *testing.T) { testsrv.AWSTestKeys(t) }

func newSource(t *testing.T, cfg Config) *Source {
	t.Helper()
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	s, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkOncePerKeyOrder checks that got holds each of the want records
// (key → values 0..n-1) once, and each key's values in order.
func checkOncePerKeyOrder(t *testing.T, got []readRecord, want map[string]int) {
	t.Helper()
	next := map[string]int{}
	bad := 0
	for _, r := range got {
		v, ok := r.Value.(map[string]any)
		if !ok {
			t.Fatalf("record %+v is not an object", r)
		}
		k, n := v["k"].(string), int(v["n"].(float64))
		if n != next[k] {
			if bad++; bad <= 10 {
				t.Errorf("key %s: read n=%d (shard %s at %s), want n=%d: lost, repeated or out of order", k, n, r.shard, r.Position, next[k])
			}
		}
		next[k] = n + 1
		if r.PartitionKey != k {
			t.Errorf("partition key %q, want %q", r.PartitionKey, k)
		}
	}
	for k, n := range want {
		if next[k] != n {
			t.Errorf("key %s: read up to n=%d, want %d", k, next[k], n)
		}
	}
}

// TestReadsEveryRecordOnceAcrossReshards puts records while the stream is
// split and merged, and reads them with the source scheduled as the
// runtime does it: every record once, each key's records in put order
// across splits and merges (parents before children).
func TestReadsEveryRecordOnceAcrossReshards(t *testing.T) {
	rng := testRand(t)
	srv, c := runnelWithStream(t, "clicks", int32(1+rng.IntN(3)))
	src := newSource(t, Config{Stream: "clicks", Conn: kinesisconn.Conn{Endpoint: srv.URL}})
	keys, total := 5+rng.IntN(20), 600+rng.IntN(600)
	want := map[string]int{}
	reshards := []func(){func() { split(t, c, "clicks", rng) }, func() { split(t, c, "clicks", rng) }, func() { merge(t, c, "clicks", rng) }}
	// The records go in PutRecords batches (each key's records keep
	// their order inside a batch), with the reshards between batches.
	var entries []putEntry
	for range total {
		k := fmt.Sprintf("k%d", rng.IntN(keys))
		entries = append(entries, putEntry{k, fmt.Sprintf(`{"k":%q,"n":%d}`, k, want[k])})
		want[k]++
	}
	// Half the records and two reshards go in before the read starts,
	// so parents and children all hold records when it does; the rest
	// and the last reshard while it runs.
	put := func(from, to int) error {
		for i := from; i < to; i += 25 {
			if i > 0 && len(reshards) > 0 && i/25%(total/25/(len(reshards)+1)+1) == 0 {
				reshards[0]()
				reshards = reshards[1:]
			}
			if err := putBatch(c, "clicks", entries[i:min(to, i+25)]); err != nil {
				return err
			}
		}
		return nil
	}
	half := total / 2 / 25 * 25
	if err := put(0, half); err != nil {
		t.Fatal(err)
	}
	putErr := make(chan error, 1)
	go func() { putErr <- put(half, total) }()
	got := readAll(t, src, total)
	if err := <-putErr; err != nil {
		t.Fatal(err)
	}
	checkOncePerKeyOrder(t, got, want)
	shards := map[string]bool{}
	for _, r := range got {
		shards[r.shard] = true
	}
	t.Logf("%d records of %d keys read from %d shards", len(got), keys, len(shards))
}

type putEntry struct{ key, data string }

// putBatch puts entries with PutRecords, retrying failed records (in
// order: a failed record and all after it go again).
func putBatch(c *kinesis.Client, stream string, entries []putEntry) error {
	for len(entries) > 0 {
		n := min(len(entries), 500)
		in := &kinesis.PutRecordsInput{StreamName: aws.String(stream)}
		for _, e := range entries[:n] {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(e.key), Data: []byte(e.data)})
		}
		out, err := c.PutRecords(context.Background(), in)
		if err != nil {
			if kinesisconn.Retryable(err) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return err
		}
		done := n
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				done = i
				break
			}
		}
		entries = entries[done:]
	}
	return nil
}

// TestResumesAfterPositionAndStarts covers the starts and resuming after a
// checkpointed position.
func TestResumesAfterPositionAndStarts(t *testing.T) {
	srv, c := runnelWithStream(t, "s", 1)
	ctx := context.Background()
	var seqs []string
	var times []time.Time
	for i := range 5 {
		times = append(times, time.Now())
		time.Sleep(20 * time.Millisecond)
		out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: fmt.Appendf(nil, "%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, *out.SequenceNumber)
	}
	first := func(cfg Config, after string) sources.Record {
		t.Helper()
		cfg.Stream, cfg.Endpoint = "s", srv.URL
		s := newSource(t, cfg)
		r, err := s.Open(ctx, sources.Shard{ID: "shardId-000000000000"}, after)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		buf := make([]sources.Record, 1)
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := r.Read(rctx, buf); err != nil {
			t.Fatal(err)
		}
		return buf[0]
	}
	for _, c := range []struct {
		name  string
		cfg   Config
		after string
		want  float64
	}{
		{"trim_horizon", Config{}, "", 0},
		{"after a checkpointed position", Config{}, seqs[2], 3},
		{"at_timestamp", Config{Start: StartAtTimestamp, Timestamp: times[1]}, "", 1},
		{"at_sequence_number", Config{Start: StartAtSequence, Sequences: map[string]string{"shardId-000000000000": seqs[3]}}, "", 3},
		{"after_sequence_number", Config{Start: StartAfterSequence, Sequences: map[string]string{"shardId-000000000000": seqs[3]}}, "", 4},
		{"position beats start", Config{Start: StartLatest}, seqs[0], 1},
	} {
		if got := first(c.cfg, c.after); got.Value != c.want || got.Arrival == 0 {
			t.Errorf("%s: first record %+v, want value %v", c.name, got, c.want)
		}
	}
	// latest: only what is put after opening.
	s := newSource(t, Config{Stream: "s", Conn: kinesisconn.Conn{Endpoint: srv.URL}, Start: StartLatest})
	if _, err := s.Shards(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctx, sources.Shard{ID: "shardId-000000000000"}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("5")}); err != nil {
		t.Fatal(err)
	}
	buf := make([]sources.Record, 10)
	if n, err := r.Read(ctx, buf); err != nil || buf[0].Value != float64(5) {
		t.Fatalf("latest read %v (%d, %v), want the record put after opening", buf[0].Value, n, err)
	}

	// latest, checkpointed before its first record: the resume position
	// starts where the first opening did, so a record put while the job
	// was down is read, and none from before. (Positions are whole
	// milliseconds: a record that arrived in the millisecond the shard
	// was opened counts as after it, so the opening waits one out.)
	time.Sleep(5 * time.Millisecond)
	r2, err := s.Open(ctx, sources.Shard{ID: "shardId-000000000000"}, "")
	if err != nil {
		t.Fatal(err)
	}
	resume := r2.(sources.Resumer).ResumePosition()
	r2.Close()
	if !strings.HasPrefix(resume, "@") {
		t.Fatalf("a shard opened at latest resumes at %q, want @EPOCH_MS", resume)
	}
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("6")}); err != nil {
		t.Fatal(err)
	}
	r3, err := s.Open(ctx, sources.Shard{ID: "shardId-000000000000"}, resume)
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	if n, err := r3.Read(ctx, buf); err != nil || n != 1 || buf[0].Value != float64(6) {
		t.Fatalf("resumed at %s: read %d records starting %v (%v), want only the record put after the first opening", resume, n, buf[0].Value, err)
	}
	if got := r3.(sources.Resumer).ResumePosition(); got != resume {
		t.Errorf("a reader opened at %s says it resumes at %s", resume, got)
	}
}

// TestThrottlingIsRetried reads from a server that throttles a third of
// GetRecords and GetShardIterator calls and fails a third of ListShards
// calls: nothing is lost, and the source counts the throttling.
func TestThrottlingIsRetried(t *testing.T) {
	anyKeys(t)
	srv := testsrv.StartRunnel(t, "--inject", "GetRecords:throttle:0.3,GetShardIterator:throttle:0.3,ListShards:internal:0.3")
	c := srv.Client()
	createStream(t, c, "t", 2)
	want := map[string]int{}
	var entries []putEntry
	for i := range 300 {
		k := fmt.Sprintf("k%d", i%7)
		entries = append(entries, putEntry{k, fmt.Sprintf(`{"k":%q,"n":%d}`, k, want[k])})
		want[k]++
	}
	if err := putBatch(c, "t", entries); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, Config{Stream: "t", Conn: kinesisconn.Conn{Endpoint: srv.URL}, MaxRecords: 10})
	got := readAll(t, src, len(entries))
	checkOncePerKeyOrder(t, got, want)
	// GetRecords is called dozens of times (10 records a call), so some
	// calls are throttled; the few ListShards calls may all get through.
	if src.Throttled() == 0 {
		t.Fatalf("throttled %d, retried %d: the injected throttling was not seen", src.Throttled(), src.Retried())
	}
}

// TestNamedProfileCredentials runs the endpoint with --auth and gives the
// source its keys only through a named profile of a shared credentials
// file: the profile's keys are used, and the default ones are refused.
func TestNamedProfileCredentials(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command(testbin.Runnel(t), "tokens", "create", "reader", "--role", "admin", "--aws", "--data", dir).Output()
	if err != nil {
		t.Fatalf("tokens create: %v", err)
	}
	lines := strings.SplitN(string(out), "\n", 2)
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[runnel-test]\n"+lines[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv := testsrv.StartRunnelOn(t, dir, "--auth", "--streams", "p:1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := newSource(t, Config{Stream: "p", Conn: kinesisconn.Conn{Endpoint: srv.URL, Profile: "runnel-test"}})
	if shards, err := good.Shards(ctx); err != nil || len(shards) != 1 {
		t.Fatalf("with the profile's keys: shards %v, %v", shards, err)
	}
	bad := newSource(t, Config{Stream: "p", Conn: kinesisconn.Conn{Endpoint: srv.URL}})
	if _, err := bad.Shards(ctx); err == nil {
		t.Fatal("the default profile's wrong keys were accepted")
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{},
		{Stream: "s", Start: "yesterday"},
		{Stream: "s", Start: StartAtTimestamp},
		{Stream: "s", Start: StartAtSequence},
		{Stream: "s", Start: StartAfterSequence, Sequences: map[string]string{"shardId-000000000000": "12x"}},
		{Stream: "s", Conn: kinesisconn.Conn{Endpoint: "localhost:7070"}},
		{Stream: "s", MaxRecords: 10001},
		{Stream: "s", Format: "xml"},
	} {
		if err := c.Validate(); !errors.Is(err, sources.ErrConfig) {
			t.Errorf("Validate(%+v) = %v, want a configuration error", c, err)
		}
	}
}
