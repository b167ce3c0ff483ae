package kafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
)

// readAll reads n committed records of topic, failing after 20 s.
func readAll(t *testing.T, brokers []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := testsrv.ReadCommitted(t, topic, brokers...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), n, topic)
		}
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// The sink's rows land in the partition its partitioner names, with the
// headers the job file maps from row fields, through the transactional
// path a checkpointed job takes.
func TestPartitionersAndHeaders(t *testing.T) {
	brokers := testsrv.Kafka(t, 4, "murmur", "robin", "byfield")
	rows := make([]sinks.Row, 40)
	for i := range rows {
		key := fmt.Sprintf("user-%d", i%7)
		rows[i] = sinks.Row{Key: key, Value: map[string]any{"key": key, "n": float64(i), "p": float64(i % 4),
			"trace": fmt.Sprintf("t%d", i), "meta": map[string]any{"i": float64(i)}}}
	}
	for _, tc := range []struct {
		topic, partitioner string
		check              func(r *kgo.Record, i int) string
	}{
		{"murmur", PartitionerMurmur2, func(r *kgo.Record, _ int) string {
			// Kafka's Java client: toPositive(murmur2(key)) % partitions.
			if want := int32(murmur2(r.Key)&0x7fffffff) % 4; r.Partition != want {
				return fmt.Sprintf("key %s in partition %d, the Java client puts it in %d", r.Key, r.Partition, want)
			}
			return ""
		}},
		{"robin", PartitionerRoundRobin, func(*kgo.Record, int) string { return "" }},
		{"byfield", PartitionerField, func(r *kgo.Record, i int) string {
			if r.Partition != int32(i%4) {
				return fmt.Sprintf("row %d in partition %d, its field p says %d", i, r.Partition, i%4)
			}
			return ""
		}},
	} {
		t.Run(tc.partitioner, func(t *testing.T) {
			cfg := Config{Brokers: brokers, Topic: tc.topic, Job: "j", Sink: tc.topic, Partitioner: tc.partitioner,
				Headers: map[string]string{"trace-id": "trace", "meta": "meta", "absent": "nope"}}
			if tc.partitioner == PartitionerField {
				cfg.PartitionField = "p"
			}
			j := newJob(t, cfg)
			j.Start()
			defer j.S.Close()
			defer j.DB.Close()
			j.Epoch(1, true, rows...)
			parts := map[int32]int{}
			for _, r := range readAll(t, brokers, tc.topic, len(rows)) {
				var i int
				fmt.Sscanf(strings.Split(string(r.Value), `"n":`)[1], "%d", &i)
				parts[r.Partition]++
				if msg := tc.check(r, i); msg != "" {
					t.Error(msg)
				}
				h := map[string]string{}
				for _, x := range r.Headers {
					h[x.Key] = string(x.Value)
				}
				if len(h) != 2 || h["trace-id"] != fmt.Sprintf("t%d", i) || h["meta"] != fmt.Sprintf(`{"i":%d}`, i) {
					t.Errorf("row %d has headers %v, want trace-id and meta only", i, h)
				}
			}
			if tc.partitioner == PartitionerRoundRobin && len(parts) != 4 {
				t.Errorf("round_robin used partitions %v, want all 4", parts)
			}
		})
	}
}

// A row whose partition field is not a partition of the topic fails when
// it is written, naming the field, before any checkpoint can hold it.
func TestPartitionFieldOutOfRange(t *testing.T) {
	brokers := testsrv.Kafka(t, 2, "two")
	j := newJob(t, Config{Brokers: brokers, Topic: "two", Job: "j", Sink: "s",
		Partitioner: PartitionerField, PartitionField: "p"})
	j.Start()
	defer j.S.Close()
	defer j.DB.Close()
	for _, v := range []any{float64(2), float64(-1), 1.5, "1", nil} {
		err := j.S.Write(context.Background(), []sinks.Row{{Key: "k", Value: map[string]any{"p": v}}})
		if err == nil || !strings.Contains(err.Error(), "row field p") {
			t.Errorf("partition field %v: error %v, want one naming the field", v, err)
		}
	}
	if err := j.S.Write(context.Background(), []sinks.Row{{Key: "k", Value: map[string]any{"p": float64(1)}}}); err != nil {
		t.Fatal(err)
	}
}

func TestPartitionerConfig(t *testing.T) {
	for _, c := range []Config{
		{Partitioner: "crc32"},
		{Partitioner: PartitionerField},
		{PartitionField: "p"},
		{Headers: map[string]string{"h": ""}},
	} {
		c.Brokers, c.Topic, c.Job, c.Sink = []string{"x:1"}, "t", "j", "s"
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
}

// murmur2 is the hash of Kafka's Java client (Utils.murmur2), written from
// its published definition, to check the sink against it rather than
// against franz-go's own.
func murmur2(data []byte) uint32 {
	const m, r = 0x5bd1e995, 24
	h := uint32(0x9747b28c) ^ uint32(len(data))
	n := len(data) / 4
	for i := range n {
		k := uint32(data[4*i]) | uint32(data[4*i+1])<<8 | uint32(data[4*i+2])<<16 | uint32(data[4*i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[4*n:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
