package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testBatch encodes a record batch starting at offset first whose records
// have the given offset deltas (a compacted batch keeps some), with the
// given attributes (its compression codec among them).
func testBatch(t *testing.T, first int64, lastDelta int32, attrs int16, producer int64, deltas ...int64) []byte {
	t.Helper()
	var recs []byte
	for _, d := range deltas {
		var body []byte
		body = append(body, 0)               // attributes
		body = binary.AppendVarint(body, 0)  // timestamp delta
		body = binary.AppendVarint(body, d)  // offset delta
		body = binary.AppendVarint(body, -1) // no key
		body = binary.AppendVarint(body, 1)  // value length
		body = append(body, 'v')             // value
		body = binary.AppendVarint(body, 0)  // headers
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	if codec := attrs & 0x07; codec != 0 {
		c, err := kgo.DefaultCompressor(kgo.CompressionCodec(kgo.SnappyCompression()))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		var got kgo.CompressionCodecType
		if recs, got = c.Compress(&buf, recs); int16(got) != codec {
			t.Fatalf("compressed with codec %d, want %d", got, codec)
		}
		recs = bytes.Clone(recs)
	}
	b := (&kmsg.RecordBatch{FirstOffset: first, Magic: 2, Attributes: attrs, LastOffsetDelta: lastDelta,
		ProducerID: producer, NumRecords: int32(len(deltas)), Records: recs}).AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	return b
}

// A changelog read that got nothing more for a while is complete only if
// the partition holds no record it did not get below the end: the answer
// of a fetch from where the read stopped says so.
func TestTailHeld(t *testing.T) {
	const snappy, transactional, control = 2, 0x10, 0x20
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, c := range []struct {
		name      string
		lso       int64
		batches   []byte
		aborted   []int64 // producers whose transaction from offset 0 aborted
		errCode   int16
		next, end int64
		gone      bool
	}{
		{name: "nothing left", lso: 10, next: 4, end: 10, gone: true},
		{name: "the end moved back", lso: 8, next: 4, end: 10},
		{name: "an error", lso: 10, errCode: 6, next: 4, end: 10},
		{name: "a record left", lso: 10, batches: testBatch(t, 4, 2, 0, -1, 0, 1, 2), next: 4, end: 10},
		{name: "a compressed record left", lso: 10, batches: testBatch(t, 4, 2, snappy, -1, 2), next: 4, end: 10},
		{name: "a compacted batch read up to its last record", lso: 10, batches: testBatch(t, 0, 9, 0, -1, 0, 3), next: 4, end: 10, gone: true},
		{name: "a compacted batch with a record left", lso: 10, batches: testBatch(t, 0, 9, 0, -1, 0, 3, 7), next: 4, end: 10},
		{name: "an empty batch", lso: 10, batches: testBatch(t, 4, 5, transactional, 9), next: 4, end: 10, gone: true},
		{name: "an aborted transaction's records", lso: 10, batches: testBatch(t, 4, 1, transactional, 9, 0, 1), aborted: []int64{9}, next: 4, end: 10, gone: true},
		{name: "a committed transaction's records", lso: 10, batches: testBatch(t, 4, 1, transactional, 8, 0, 1), aborted: []int64{9}, next: 4, end: 10},
		{name: "a transaction marker", lso: 10, batches: testBatch(t, 9, 0, transactional|control, 9, 0), aborted: []int64{9}, next: 4, end: 10},
		{name: "records past the end", lso: 12, batches: cat(testBatch(t, 4, 5, 0, -1), testBatch(t, 10, 1, 0, -1, 0, 1)), next: 4, end: 10, gone: true},
		{name: "a cut batch", lso: 10, batches: testBatch(t, 4, 0, 0, -1, 0)[:30], next: 4, end: 10},
	} {
		p := kmsg.NewFetchResponseTopicPartition()
		p.ErrorCode, p.LastStableOffset, p.HighWatermark, p.RecordBatches = c.errCode, c.lso, c.lso, c.batches
		for _, pid := range c.aborted {
			a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			a.ProducerID, a.FirstOffset = pid, 0
			p.AbortedTransactions = append(p.AbortedTransactions, a)
		}
		if err := tailHeld(p, c.next, c.end); (err == nil) != c.gone {
			t.Errorf("%s: %v, want the tail gone: %v", c.name, err, c.gone)
		}
	}
}

// A changelog read that gets nothing while the partition holds records
// below its end (a broker that does not deliver them) fails, rather than
// restore a task without them.
func TestReadChangelogThatStalls(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake and waits 10s")
	}
	c, brokers := kafkaCluster(t, 1, "cl")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("cl"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 5 {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte{'w', byte(i)}, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	w := &Worker{cfg: Config{Log: slog.New(slog.DiscardHandler)}, opts: []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DisableFetchSessions()},
		admin: kadm.NewClient(cl), adminCl: cl}
	// The read's fetches (which wait for records) get no answer; the
	// one that asks the partition what it holds (which does not) does.
	c.ControlKey(int16(kmsg.Fetch), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if r.(*kmsg.FetchRequest).MaxWaitMillis == 0 {
			return nil, nil, false
		}
		return nil, nil, true
	})
	n := 0
	began := time.Now()
	end, err := w.readChangelog(context.Background(), "cl", 0, 0, func(Change) error { n++; return nil })
	if err == nil || !strings.Contains(err.Error(), "holds a record at offset 0") {
		t.Fatalf("read %d records up to %d, err %v after %v; want an error saying the partition holds a record at offset 0", n, end, err, time.Since(began))
	}
}

// A worker that creates an internal topic another worker created
// meanwhile with another partition count refuses it, as it refuses one
// that existed before.
func TestSetupTopicsChecksATopicCreatedMeanwhile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake")
	}
	c, brokers := kafkaCluster(t, 1, "in", "out")
	// Every topic the worker creates comes out with 3 partitions, as if
	// a worker with --partitions 3 had created it first.
	c.ControlKey(int16(kmsg.CreateTopics), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for i := range r.(*kmsg.CreateTopicsRequest).Topics {
			r.(*kmsg.CreateTopicsRequest).Topics[i].NumPartitions = 3
		}
		return nil, nil, false
	})
	w := adminWorker(t, Config{Brokers: brokers, ID: "w1", Spec: windowJob(t, "meanwhile", brokers), Log: slog.New(slog.DiscardHandler)})
	if err := w.setupTopics(context.Background()); err == nil || !strings.Contains(err.Error(), "has 3 partitions, the job's workers use 1") {
		t.Fatalf("setup: %v; want the topics of 3 partitions refused", err)
	}
}

// adminWorker is a worker made from cfg that is not run, with the admin
// client its topic set-up uses.
func adminWorker(t *testing.T, cfg Config) *Worker {
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.closeSinks)
	cl, err := kgo.NewClient(w.opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	w.admin, w.adminCl = kadm.NewClient(cl), cl
	return w
}
