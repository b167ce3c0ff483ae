package kafka

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel-dev/runnel/sinks/internal/sinktest"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
)

func row(key string, n int) sinks.Row {
	return sinks.Row{Key: key, Value: map[string]any{"key": key, "n": n}}
}

// job opens the sink on a state store restored from the latest
// checkpoint (or a fresh one), as a restarted job does.
type job struct {
	sinktest.Job[*Sink]
	cfg Config
}

func newJob(t *testing.T, cfg Config) *job {
	j := &job{cfg: cfg}
	j.Job = sinktest.Job[*Sink]{T: t, Dir: t.TempDir(), Sink: cfg.Sink, New: func() (*Sink, error) { return New(j.cfg) }}
	return j
}

// crash abandons the producer as a killed process would (no abort, no
// close: its open transaction stays open until the next producer with the
// same transactional id fences it) and drops the store.
func (j *job) crash() {
	cl := j.S.cl
	j.T.Cleanup(cl.Close)
	j.DB.Close()
}

// halfCommit starts epoch e's transaction and produces its records, then
// stops: a crash in the middle of Commit.
func (j *job) halfCommit(e uint64) {
	j.T.Helper()
	p := j.S.txn.Pending()[0]
	if p.Epoch != e {
		j.T.Fatalf("pending epoch %d, want %d", p.Epoch, e)
	}
	if err := j.S.cl.BeginTransaction(); err != nil {
		j.T.Fatal(err)
	}
	for _, r := range p.Rows {
		rec, _ := j.S.record(r)
		if err := j.S.cl.ProduceSync(context.Background(), rec).FirstErr(); err != nil {
			j.T.Fatal(err)
		}
	}
}

// consume reads the whole topic with the given isolation level and
// returns "key:value" per record in offset order. It first appends a
// non-transactional sentinel record and reads until it: a consumer cannot
// otherwise tell the end of a topic from a pause.
func consume(t *testing.T, brokers []string, topic string, iso kgo.IsolationLevel) []string {
	t.Helper()
	ctx := context.Background()
	sentinel := fmt.Sprintf("end-%d", sentinels.Add(1))
	p, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	err = p.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(sentinel)}).FirstErr()
	p.Close()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		for _, r := range fs.Records() {
			switch k := string(r.Key); {
			case k == sentinel:
				return out
			case strings.HasPrefix(k, "end-"):
			default:
				out = append(out, k+":"+string(r.Value))
			}
		}
	}
}

var sentinels atomic.Int64

// TestExactlyOnceAcrossCrashes crashes the sink before a checkpoint,
// in the middle of a commit's transaction (records produced, transaction
// open), and after a commit whose epoch the next checkpoint never
// forgot. A read_committed consumer must see each row exactly once; a
// read_uncommitted one also sees the aborted half-commit, showing that the
// crash did leave records behind which the transaction hides.
func TestExactlyOnceAcrossCrashes(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "out")
	j := newJob(t, Config{Brokers: brokers, Topic: "out", Job: "j", Sink: "k"})
	j.Start()
	j.Epoch(1, true, row("a", 1), row("b", 2))
	if err := j.S.Write(context.Background(), []sinks.Row{row("lost", 0)}); err != nil {
		t.Fatal(err)
	}
	j.crash() // before the checkpoint: the source replays these rows
	j.Start()
	j.Epoch(2, false, row("a", 3))
	j.halfCommit(2)
	j.crash()
	j.Start() // fences the half-commit, commits epoch 2
	j.Epoch(3, true, row("c", 4))
	j.crash() // epoch 3 committed but still staged in the checkpoint
	j.Start() // skips it
	j.Epoch(4, true, row("a", 5))
	want := []string{`a:{"key":"a","n":1}`, `b:{"key":"b","n":2}`, `a:{"key":"a","n":3}`, `c:{"key":"c","n":4}`, `a:{"key":"a","n":5}`}
	if got := consume(t, brokers, "out", kgo.ReadCommitted()); !slices.Equal(got, want) {
		t.Fatalf("read_committed consumer saw\n%v\nwant\n%v", got, want)
	}
	all := consume(t, brokers, "out", kgo.ReadUncommitted())
	if n := len(slices.DeleteFunc(all, func(s string) bool { return s != `a:{"key":"a","n":3}` })); n != 2 {
		t.Fatalf("read_uncommitted saw epoch 2's row %d times, want 2 (aborted + committed)", n)
	}
	j.S.Close()
	j.DB.Close()
}

func TestKeyField(t *testing.T) {
	s, err := New(Config{Brokers: []string{"x:1"}, Topic: "t", Job: "j", Sink: "s", KeyField: "user"})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.rowOf(sinks.Row{Key: "w", Value: map[string]any{"user": "u1"}}); r.Key != "u1" {
		t.Fatalf("key = %q, want u1", r.Key)
	}
}
