package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"sort"
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
	type wk struct {
		key   string
		start int64
	}
	type wv struct{ n, total int64 }
	want := map[wk]wv{}
	var recs []*kgo.Record
	for i := range 4000 {
		k := fmt.Sprintf("k%d", rng.Intn(20))
		ts := crashBase + int64(i)*30
		v := int64(rng.Intn(100))
		recs = append(recs, &kgo.Record{Topic: "events", Partition: int32(i % 2), Key: []byte(k),
			Value: fmt.Appendf(nil, `{"k":%q,"ts":%d,"v":%d}`, k, ts, v)})
		w := wk{k, ts - ts%10_000}
		want[w] = wv{want[w].n + 1, want[w].total + v}
	}
	for p := range int32(2) {
		recs = append(recs, &kgo.Record{Topic: "events", Partition: p, Key: []byte("end"),
			Value: fmt.Appendf(nil, `{"k":"end","ts":%d,"v":0}`, crashBase+10_000_000)})
	}
	srv := newSupervised(t)
	srv.start()
	defer srv.Kill()
	base := srv.URL
	example, err := os.ReadFile(connectorExample)
	if err != nil {
		t.Fatal(err)
	}
	job := strings.NewReplacer("localhost:9092", kafka.Addr, "host=/run/postgresql dbname=postgres", pg.DSN).Replace(string(example))
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

	// Wait for the table to hold as many rows as there are windows; then
	// compare. (A test that never gets there fails on its -timeout.)
	conn := pg.Connect(t)
	defer conn.Close(ctx)
	type row struct {
		key      string
		start    int64
		n, total int64
	}
	var got []row
	for {
		got = got[:0]
		rows, err := conn.Query(ctx, `SELECT key, (extract(epoch from window_start) * 1000)::bigint, n, total FROM results`)
		if err == nil {
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.key, &r.start, &r.n, &r.total); err != nil {
					t.Fatal(err)
				}
				got = append(got, r)
			}
			err = rows.Err()
		}
		if err != nil && !strings.Contains(err.Error(), "does not exist") {
			t.Fatal(err)
		}
		if len(got) >= len(want) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	check := func(what string, got []row) {
		t.Helper()
		seen := map[wk]bool{}
		var diff []string
		for _, r := range got {
			w := wk{r.key, r.start}
			switch exp, ok := want[w]; {
			case seen[w]:
				diff = append(diff, fmt.Sprintf("duplicate %s@%d", r.key, r.start))
			case !ok:
				diff = append(diff, fmt.Sprintf("unexpected %s@%d", r.key, r.start))
			case exp != (wv{r.n, r.total}):
				diff = append(diff, fmt.Sprintf("wrong %s@%d: n=%d total=%d, want %d %d", r.key, r.start, r.n, r.total, exp.n, exp.total))
			}
			seen[w] = true
		}
		for w := range want {
			if !seen[w] {
				diff = append(diff, fmt.Sprintf("missing %s@%d", w.key, w.start))
			}
		}
		sort.Strings(diff)
		if len(diff) > 0 {
			t.Errorf("%s: %d problems (seed %d):\n%s", what, len(diff), seed, strings.Join(diff[:min(len(diff), 30)], "\n"))
		}
	}
	check("postgres table", got)

	// The Kafka result topic, read_committed: the Kafka sink commits on
	// its own schedule, so read until every window arrived, then append
	// a sentinel and read up to it, to see any duplicate behind.
	c := testsrv.ReadCommitted(t, "results", kafka.Addr)
	defer c.Close()
	sentinelSent := false
	var fromKafka []row
	for done := false; !done; {
		if !sentinelSent && len(fromKafka) >= len(want) {
			p, _ := kgo.NewClient(kgo.SeedBrokers(kafka.Addr))
			if err := p.ProduceSync(ctx, &kgo.Record{Topic: "results", Key: []byte("sentinel")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			p.Close()
			sentinelSent = true
		}
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		for _, r := range fs.Records() {
			if string(r.Key) == "sentinel" {
				done = true
				break
			}
			var v struct {
				Key         string `json:"key"`
				WindowStart int64  `json:"window_start"`
				N           int64  `json:"n"`
				Total       int64  `json:"total"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("result record %s: %v", r.Value, err)
			}
			fromKafka = append(fromKafka, row{v.Key, v.WindowStart, v.N, v.Total})
		}
	}
	check("kafka result topic (read_committed)", fromKafka)
}
