package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/streams"
)

// The job of the connector figures: JS map and filter, a tumbling window,
// a sink; SOURCE and SINK are filled in per variant.
const connectorsBenchJob = `name: bench-connectors
source: {SOURCE, event_time: "r => r.ts", watermark: 1s}
operators:
  - id: parse
    map: "r => ({page: r.page, ms: r.ms, status: r.status, ts: r.ts})"
  - id: ok
    filter: "r => r.status === 200"
  - id: per-page
    window: {key: "r => r.page", tumbling: 10s, aggregate: {views: count, total_ms: sum(ms)}}
sinks: [{id: out, input: per-page, SINK}]
`

// BenchmarkConnectorsKafkaJob runs the job reading a 4-partition Kafka
// topic of kfake (in-process) and writing window results to another
// topic, then the same job over a 4-shard Runnel stream into a Runnel
// stream, and reports records/s of each and their ratio. Each iteration
// runs both over b.N × 100,000 records already in place; the rate is from
// the job's start to the window counting its last record.
//
//	go test -run '^$' -bench ConnectorsKafkaJob -benchtime 1x ./cmd/runnel
func BenchmarkConnectorsKafkaJob(b *testing.B) {
	n := b.N * 100_000
	dir := b.TempDir()
	st, err := streams.Open(dir, streams.Options{Logger: quietLogger(), SyncInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ok, err := fillBenchStream(st, n, 1000, 4)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.CreateStream("results", 1, streams.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	brokers := testsrv.Kafka(b, 4, "events", "results")
	if err := copyStreamToKafka(st, brokers, n); err != nil {
		b.Fatal(err)
	}
	run := func(source, sink string) float64 {
		yaml := strings.Replace(strings.Replace(connectorsBenchJob, "SOURCE", source, 1), "SINK", sink, 1)
		spec, err := jobs.Parse([]byte(yaml))
		if err != nil {
			b.Fatal(err)
		}
		built, err := jobs.Build(spec, jobs.Env{Store: st})
		if err != nil {
			b.Fatal(err)
		}
		rate, cpu, err := runJob(built.Graph, "per-page", int64(ok))
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s → %s: %.0f records/s, %.2f µs CPU/record", strings.TrimSuffix(strings.Fields(source)[0], ":"), strings.TrimSuffix(strings.Fields(sink)[0], ":"), rate, cpu.Seconds()*1e6/float64(ok))
		return rate
	}
	b.ResetTimer()
	kafka := run(fmt.Sprintf("kafka: {brokers: %q, topics: events}", brokers[0]), fmt.Sprintf("kafka: {brokers: %q, topic: results}", brokers[0]))
	stream := run("stream: bench", "stream: {name: results}")
	b.StopTimer()
	b.ReportMetric(kafka, "kafka-records/s")
	b.ReportMetric(stream, "stream-records/s")
	b.ReportMetric(kafka/stream, "kafka/stream")
}

// copyStreamToKafka produces the records of stream bench into topic
// events, shard i to partition i, keeping order and timestamps.
func copyStreamToKafka(st *streams.Store, brokers []string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	info, err := st.DescribeStream("bench")
	if err != nil {
		return err
	}
	for p, sh := range info.Shards {
		for next := uint64(0); ; {
			res, err := st.Read("bench", sh.ID, next, 5000, 4<<20)
			if err != nil {
				return err
			}
			if len(res.Records) == 0 {
				break
			}
			recs := make([]*kgo.Record, len(res.Records))
			for i, r := range res.Records {
				recs[i] = &kgo.Record{Topic: "events", Partition: int32(p), Key: []byte(r.PartitionKey), Value: r.Data,
					Timestamp: time.UnixMilli(r.Arrival)}
			}
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				return err
			}
			next = res.Next
		}
	}
	return nil
}
