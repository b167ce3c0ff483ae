package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/sources/codec"
)

func produce(t *testing.T, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readN reads exactly n records from r; a test that hangs here has lost
// records, and the test binary's -timeout reports it.
func readN(t *testing.T, r sources.Reader, n int) []sources.Record {
	t.Helper()
	var out []sources.Record
	buf := make([]sources.Record, 16)
	for len(out) < n {
		k, err := r.Read(context.Background(), buf[:min(len(buf), n-len(out))])
		if err != nil {
			t.Fatalf("read after %d records: %v", len(out), err)
		}
		out = append(out, buf[:k]...)
	}
	return out
}

func open(t *testing.T, s *Source, shard, after string) sources.Reader {
	t.Helper()
	r, err := s.Open(context.Background(), sources.Shard{ID: shard}, after)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestReadsPartitionsAsShards(t *testing.T) {
	brokers := testsrv.Kafka(t, 3, "clicks", "other")
	ts := time.UnixMilli(1_700_000_000_000)
	var recs []*kgo.Record
	for i := range 12 {
		recs = append(recs, &kgo.Record{Topic: "clicks", Partition: int32(i % 3), Key: []byte("k" + strconv.Itoa(i%3)),
			Value: fmt.Appendf(nil, `{"n":%d}`, i), Timestamp: ts.Add(time.Duration(i) * time.Second)})
	}
	produce(t, brokers, recs...)
	s, err := New(Config{Brokers: brokers, Topics: []string{"clicks"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	shards, err := s.Shards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 3 || shards[0].ID != "clicks/0" || shards[2].ID != "clicks/2" {
		t.Fatalf("shards = %v", shards)
	}
	for p, sh := range shards {
		got := readN(t, open(t, s, sh.ID, ""), 4)
		for i, r := range got {
			n := p + 3*i
			if r.Value.(map[string]any)["n"] != float64(n) || r.PartitionKey != "k"+strconv.Itoa(p) ||
				r.Position != strconv.Itoa(i) || r.Arrival != ts.Add(time.Duration(n)*time.Second).UnixMilli() {
				t.Errorf("%s record %d = %+v", sh.ID, i, r)
			}
		}
	}
	// Resuming after a checkpointed offset reads the next one.
	got := readN(t, open(t, s, "clicks/1", "2"), 1)
	if got[0].Position != "3" || got[0].Value.(map[string]any)["n"] != float64(10) {
		t.Fatalf("resumed at %+v, want offset 3 (n 10)", got[0])
	}
	// A regex selects topics by their whole name.
	s2, _ := New(Config{Brokers: brokers, TopicRegex: "cl.*"}, nil)
	if shards, err := s2.Shards(context.Background()); err != nil || len(shards) != 3 {
		t.Fatalf("regex shards = %v, %v", shards, err)
	}
}

func TestStartLatestAndAtTimestamp(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "t")
	ts := time.UnixMilli(1_700_000_000_000)
	for i := range 5 {
		produce(t, brokers, &kgo.Record{Topic: "t", Value: fmt.Appendf(nil, `%d`, i), Timestamp: ts.Add(time.Duration(i) * time.Minute)})
	}
	latest, _ := New(Config{Brokers: brokers, Topics: []string{"t"}, Start: StartLatest}, nil)
	r := open(t, latest, "t/0", "")
	if p := r.(sources.Resumer).ResumePosition(); p != "4" {
		t.Fatalf("latest resume position = %q, want 4 (the last offset before the reader)", p)
	}
	produce(t, brokers, &kgo.Record{Topic: "t", Value: []byte(`5`)})
	if got := readN(t, r, 1); got[0].Value != float64(5) {
		t.Fatalf("latest read %v, want the record put after opening", got[0].Value)
	}
	at, _ := New(Config{Brokers: brokers, Topics: []string{"t"}, Start: StartAtTimestamp, Timestamp: ts.Add(150 * time.Second)}, nil)
	if got := readN(t, open(t, at, "t/0", ""), 1); got[0].Position != "3" {
		t.Fatalf("at_timestamp started at %s, want offset 3 (the first at or after the time)", got[0].Position)
	}
}

// TestReadCommittedSkipsAborted writes an aborted and a committed
// transaction: the source returns only the committed records by default,
// and both with read_uncommitted.
func TestReadCommittedSkipsAborted(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "t")
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, commit := range []bool{false, true} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.FormatBool(commit))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := New(Config{Brokers: brokers, Topics: []string{"t"}}, nil)
	if got := readN(t, open(t, s, "t/0", ""), 1); got[0].Value != true {
		t.Fatalf("read_committed read %v first, want the committed record", got[0].Value)
	}
	u, _ := New(Config{Brokers: brokers, Topics: []string{"t"}, ReadUncommitted: true}, nil)
	if got := readN(t, open(t, u, "t/0", ""), 2); got[0].Value != false || got[1].Value != true {
		t.Fatalf("read_uncommitted read %v, %v", got[0].Value, got[1].Value)
	}
}

func TestCommitsOffsetsToGroupAndNamesBadRecords(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "t")
	produce(t, brokers, &kgo.Record{Topic: "t", Value: []byte(`{"ok":1}`)}, &kgo.Record{Topic: "t", Value: []byte(`{bad`)},
		&kgo.Record{Topic: "t", Value: []byte(`{"ok":2}`)})
	s, _ := New(Config{Brokers: brokers, Topics: []string{"t"}, Group: "runnel-job"}, nil)
	r, err := s.Open(context.Background(), sources.Shard{ID: "t/0"}, "")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]sources.Record, 8)
	var got []sources.Record
	var recErr *sources.RecordError
	for len(got) < 2 {
		n, err := r.Read(context.Background(), buf)
		got = append(got, buf[:n]...)
		if errors.As(err, &recErr) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if recErr == nil || recErr.Shard != "t/0" || recErr.Position != "1" {
		t.Fatalf("bad record error = %v, want one naming t/0 at offset 1", recErr)
	}
	if got[1].Position != "2" {
		t.Fatalf("after the bad record read %s, want offset 2", got[1].Position)
	}
	r.Close() // commits the final offsets
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...))
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), "runnel-job")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("t", 0); !ok || o.At != 3 {
		t.Fatalf("group offset = %+v, %v; want 3", o, ok)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{Topics: []string{"t"}},
		{Brokers: []string{"b:9092"}},
		{Brokers: []string{"b:9092"}, Topics: []string{"t"}, TopicRegex: "t"},
		{Brokers: []string{"b:9092"}, TopicRegex: "("},
		{Brokers: []string{"b:9092"}, Topics: []string{"t"}, Start: "yesterday"},
		{Brokers: []string{"b:9092"}, Topics: []string{"t"}, Start: StartAtTimestamp},
		{Brokers: []string{"b:9092"}, Topics: []string{"t"}, SASL: &SASLConfig{Mechanism: "GSSAPI", Username: "u", PasswordEnv: "P"}},
		{Brokers: []string{"b:9092"}, Topics: []string{"t"}, SASL: &SASLConfig{Mechanism: "PLAIN", Username: "u"}},
	} {
		if err := c.Validate(); !errors.Is(err, sources.ErrConfig) {
			t.Errorf("Validate(%+v) = %v, want a configuration error", c, err)
		}
	}
}

// TestSASL authenticates with PLAIN and SCRAM, the password taken from the
// environment variable the job names, and fails with a wrong one.
func TestSASL(t *testing.T) {
	brokers := testsrv.KafkaWith(t, kfake.SeedTopics(1, "t"), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "alice", "s3cret"), kfake.Superuser("SCRAM-SHA-256", "bob", "s3cret"))
	t.Setenv("RUNNEL_TEST_KAFKA_PASS", "s3cret")
	t.Setenv("RUNNEL_TEST_KAFKA_WRONG", "guess")
	for _, c := range []struct {
		sasl SASLConfig
		ok   bool
	}{
		{SASLConfig{Mechanism: "PLAIN", Username: "alice", PasswordEnv: "RUNNEL_TEST_KAFKA_PASS"}, true},
		{SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "bob", PasswordEnv: "RUNNEL_TEST_KAFKA_PASS"}, true},
		{SASLConfig{Mechanism: "PLAIN", Username: "alice", PasswordEnv: "RUNNEL_TEST_KAFKA_WRONG"}, false},
	} {
		s, err := New(Config{Brokers: brokers, Topics: []string{"t"}, SASL: &c.sasl}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		shards, err := s.Shards(ctx)
		cancel()
		if (err == nil) != c.ok || (c.ok && len(shards) != 1) {
			t.Errorf("%s as %s with %s: shards %v, err %v; want ok=%v", c.sasl.Mechanism, c.sasl.Username, c.sasl.PasswordEnv, shards, err, c.ok)
		}
	}
	if _, err := New(Config{Brokers: brokers, Topics: []string{"t"}, SASL: &SASLConfig{Mechanism: "PLAIN", Username: "a", PasswordEnv: "RUNNEL_TEST_UNSET_VAR"}}, nil); err == nil {
		t.Error("an unset password_env variable was accepted")
	}
}

// TestMetadataForJS: with metadata set, each record carries its topic,
// partition, offset, timestamp, key and headers; a non-object value is
// wrapped.
func TestMetadataForJS(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "t")
	ts := time.UnixMilli(1_700_000_000_000)
	produce(t, brokers,
		&kgo.Record{Topic: "t", Key: []byte("u1"), Value: []byte(`{"n":1}`), Timestamp: ts,
			Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}, {Key: "src", Value: []byte("web")}}},
		&kgo.Record{Topic: "t", Value: []byte(`2`), Timestamp: ts.Add(time.Second)})
	s, err := New(Config{Brokers: brokers, Topics: []string{"t"}, Metadata: "kafka"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := readN(t, open(t, s, "t/0", ""), 2)
	want := []any{
		map[string]any{"n": 1.0, "kafka": map[string]any{"topic": "t", "partition": 0.0, "offset": 0.0, "timestamp": float64(ts.UnixMilli()),
			"key": "u1", "headers": map[string]any{"trace": "abc", "src": "web"}}},
		map[string]any{"value": 2.0, "kafka": map[string]any{"topic": "t", "partition": 0.0, "offset": 1.0, "timestamp": float64(ts.UnixMilli() + 1000),
			"key": nil, "headers": map[string]any{}}},
	}
	for i := range want {
		if fmt.Sprint(got[i].Value) != fmt.Sprint(want[i]) {
			t.Errorf("record %d = %v\nwant %v", i, got[i].Value, want[i])
		}
	}
}

// TestDecoderFromCodec: a decoder factory (sources/codec) replaces the
// format's decoder.
func TestDecoderFromCodec(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "t")
	produce(t, brokers, &kgo.Record{Topic: "t", Value: []byte("home,12")})
	c, err := codec.New(codec.Config{Format: codec.FormatCSV, CSV: &codec.CSV{Columns: []string{"page", "ms"}, Numbers: []string{"ms"}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Brokers: brokers, Topics: []string{"t"}, NewDecoder: func() Decoder { return c.NewDecoder() }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readN(t, open(t, s, "t/0", ""), 1); fmt.Sprint(got[0].Value) != fmt.Sprint(map[string]any{"page": "home", "ms": 12.0}) {
		t.Fatalf("decoded %v", got[0].Value)
	}
}
