package main

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// connectorExample is the example job the connectors' crash test runs,
// with its brokers and DSN replaced by the test's servers.
const connectorExample = "../../examples/kafka-to-postgres-and-kafka.yaml"

// TestConnectorsExactlyOnceKill9 runs connectorExample — a windowed job
// reading a Kafka topic (kfake, its own process) — on the real binary, SIGKILLs the server at
// random moments at least 5 times, and then compares the PostgreSQL table
// (insert mode: a duplicate would show) and what a read_committed
// consumer reads from the Kafka result topic with a batch computation over
// the input: nothing missing, nothing twice, nothing wrong.
func TestConnectorsExactlyOnceKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary, kfake and PostgreSQL; skipped in -short mode")
	}
	seed := int64(testutil.Seed(t))
	rng := rand.New(rand.NewSource(seed))
	kafka := testsrv.StartKafkaProcess(t, 2, "events", "results")
	pg := testsrv.StartPostgres(t)
	ctx := context.Background()

	// The input: 20 keys over 2 minutes of event time, per partition in
	// event-time order, then an end record per partition far ahead so
	// the watermark passes every window.
	want := map[windowKey]windowVal{}
	var recs []*kgo.Record
	for i := range 4000 {
		k := fmt.Sprintf("k%d", rng.Intn(20))
		ts := crashBase + int64(i)*30
		v := int64(rng.Intn(100))
		recs = append(recs, &kgo.Record{Topic: "events", Partition: int32(i % 2), Key: []byte(k),
			Value: fmt.Appendf(nil, `{"k":%q,"ts":%d,"v":%d}`, k, ts, v)})
		w := windowKey{k, ts - ts%10_000}
		want[w] = windowVal{want[w].N + 1, want[w].Total + v}
	}
	for p := range int32(2) {
		recs = append(recs, &kgo.Record{Topic: "events", Partition: p, Key: []byte("end"),
			Value: fmt.Appendf(nil, `{"k":"end","ts":%d,"v":0}`, crashBase+10_000_000)})
	}
	srv := newSupervised(t)
	srv.start()
	defer srv.Kill()
	base := srv.URL
	job := exampleJob(t, connectorExample, "localhost:9092", kafka.Addr, "host=/run/postgresql dbname=postgres", pg.DSN)
	resp, err := http.Post(base+"/api/v1/jobs", "application/yaml", strings.NewReader(job))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit: %s\n%s", resp.Status, srv.AllLogs())
	}
	// Produce while the server is being killed: in batches of 100, so the
	// windows fire (and the sinks commit) throughout the kills.
	produced := make(chan error, 1)
	go func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(kafka.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			produced <- err
			return
		}
		defer cl.Close()
		for len(recs) > 0 {
			n := min(len(recs), 100)
			if err := cl.ProduceSync(ctx, recs[:n]...).FirstErr(); err != nil {
				produced <- err
				return
			}
			recs = recs[n:]
			time.Sleep(150 * time.Millisecond)
		}
		produced <- nil
	}()
	kills := srv.killWhileProducing(rng, produced, 5)
	t.Logf("%d kills", kills)

	// Wait for the table to hold every window; then compare.
	conn := pg.Connect(t)
	defer conn.Close(ctx)
	var got map[windowKey][]windowVal
	if !testutil.Within(3*time.Minute, func() bool {
		got = tableWindows(t, conn)
		return len(got) >= len(want)
	}) {
		t.Logf("after 3 minutes the table holds %d of %d windows\n%s", len(got), len(want), srv.Logs())
	}
	compareWindows(t, "postgres table", want, got)
	noEndWindow(t, "postgres table", got)
	// The Kafka result topic, read_committed: the Kafka sink commits on
	// its own schedule.
	fromKafka := kafkaWindows(t, kafka.Addr, len(want))
	compareWindows(t, "kafka result topic (read_committed)", want, fromKafka)
	noEndWindow(t, "kafka result topic (read_committed)", fromKafka)
}

// noEndWindow fails t for a window of the end records' key: they are far
// ahead of the input, so no watermark closes their window (compareWindows
// passes such windows over).
func noEndWindow(t *testing.T, what string, got map[windowKey][]windowVal) {
	t.Helper()
	for k, v := range got {
		if k.Key == "end" {
			t.Errorf("%s: unexpected window %v: %v", what, k, v)
		}
	}
}
