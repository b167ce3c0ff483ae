package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
	kafkasrc "github.com/runnel-dev/runnel/sources/kafka"
	"github.com/runnel-dev/runnel/state"
)

// kafkaTopic is a kfake topic the discovery tests grow: put numbers each
// partition's records {"k": "p<N>", "seq"} from 1, so seqCount's results
// show a lost, repeated or reordered record.
type kafkaTopic struct {
	t       *testing.T
	brokers []string
	topic   string
	perKey  map[string]int64
}

func (k *kafkaTopic) put(partition int32, n int) {
	k.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		k.t.Fatal(err)
	}
	defer cl.Close()
	key := fmt.Sprintf("p%d", partition)
	var recs []*kgo.Record
	for range n {
		k.perKey[key]++
		recs = append(recs, &kgo.Record{Topic: k.topic, Partition: partition, Key: []byte(key),
			Value: fmt.Appendf(nil, `{"k":%q,"seq":%d}`, key, k.perKey[key])})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		k.t.Fatal(err)
	}
}

func (k *kafkaTopic) addPartitions(n int) {
	k.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...))
	if err != nil {
		k.t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreatePartitions(context.Background(), n, k.topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		k.t.Fatalf("add %d partitions to %s: %v", n, k.topic, err)
	}
}

func (k *kafkaTopic) total() int64 {
	var n int64
	for _, c := range k.perKey {
		n += c
	}
	return n
}

func (k *kafkaTopic) source(t *testing.T, every time.Duration) *kafkasrc.Source {
	t.Helper()
	src, err := kafkasrc.New(kafkasrc.Config{Brokers: k.brokers, Topics: []string{k.topic},
		Start: kafkasrc.StartLatest, DiscoverEvery: every}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// Partitions added to a topic while a job runs are found and read from
// their first record, although the source starts at latest: the records
// put into them before the job listed them again are not lost.
func TestKafkaPartitionsAddedWhileRunningAreRead(t *testing.T) {
	k := &kafkaTopic{t: t, brokers: testsrv.Kafka(t, 2, "ev"), topic: "ev", perKey: map[string]int64{}}
	db, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out, prog := &outside{commits: map[uint64]bool{}}, newReshardProgress()
	j, err := Start(context.Background(), seqGraph(k.source(t, 50*time.Millisecond), out, prog), Options{State: db, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Stop(context.Background())
	// Both partitions are open at latest before anything is put.
	waitUntil(t, j, "both partitions open", func() bool {
		p := j.Positions()
		return p["in/ev/0"] != "" && p["in/ev/1"] != ""
	})
	k.put(0, 20)
	k.put(1, 20)
	k.addPartitions(2)
	k.put(2, 30) // before the job can have listed the new partitions
	k.put(3, 30)
	waitUntil(t, j, "every record processed", func() bool { return prog.n.Load() >= k.total() })
	k.put(3, 5)
	waitUntil(t, j, "records put later processed", func() bool { return prog.n.Load() >= k.total() })
	if _, err := j.Checkpoint(context.Background(), CheckpointOptions{}); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, out, k.perKey)
	st := j.Status()
	if len(st.Shards) != 4 {
		t.Errorf("status shows %d shards, want 4: %+v", len(st.Shards), st.Shards)
	}
}

// A partition the restored checkpoint does not know (added while the job
// was down) is read from its first record, not from latest; one the
// checkpoint knows resumes after its checkpointed offset.
func TestKafkaPartitionAddedWhileDownIsReadFromItsStart(t *testing.T) {
	k := &kafkaTopic{t: t, brokers: testsrv.Kafka(t, 1, "ev"), topic: "ev", perKey: map[string]int64{}}
	dir := t.TempDir()
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, prog := &outside{commits: map[uint64]bool{}}, newReshardProgress()
	ctx, cancel := context.WithCancel(context.Background())
	// Discovery off: only the restore may find the new partition.
	j, err := Start(ctx, seqGraph(k.source(t, -1), out, prog), Options{State: db})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, j, "the partition open", func() bool { return j.Positions()["in/ev/0"] != "" })
	k.put(0, 10)
	waitUntil(t, j, "the first records", func() bool { return prog.n.Load() >= k.total() })
	if _, err := j.Checkpoint(ctx, CheckpointOptions{}); err != nil {
		t.Fatal(err)
	}
	cancel() // a crash after the checkpoint
	j.Wait()
	db.Close()

	k.addPartitions(1)
	k.put(1, 25)
	k.put(0, 5)
	db, snap := restoreLatest(t, dir)
	before := prog.n.Load()
	j, err = Start(context.Background(), seqGraph(k.source(t, -1), out, prog), Options{State: db, Restore: snap})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Stop(context.Background())
	if !testutil.Within(20*time.Second, func() bool { return prog.n.Load()-before >= 30 }) {
		t.Fatalf("after the restore the job read %d records, want the 30 put while it was down", prog.n.Load()-before)
	}
	if _, err := j.Checkpoint(context.Background(), CheckpointOptions{}); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, out, k.perKey)
}

// divertingSink takes every other row as if it could not write it and
// counts it as an error-output row, as the S3 sink does.
type divertingSink struct {
	collect
	diverted atomic.Int64
}

func (s *divertingSink) Write(ctx context.Context, rows []sinks.Row) error {
	s.diverted.Add(int64(len(rows) / 2))
	return s.collect.Write(ctx, rows[len(rows)/2:])
}

func (s *divertingSink) ErrorRows() int64 { return s.diverted.Load() }

// A sink's error-output rows are its node's dead-lettered count.
func TestSinkErrorRowsAreDeadLettered(t *testing.T) {
	sink := &divertingSink{}
	st, err := Run(context.Background(), windowGraph(sources.NewMemory(sources.FormatJSON, testShards(2, 500, 5, 10_000, 1)...), sink, 1000),
		Options{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	ops := opsByID(st)
	if got, want := ops["out"].DeadLettered, sink.diverted.Load(); got != want || want == 0 {
		t.Fatalf("sink node dead_lettered = %d, want the %d rows the sink diverted", got, want)
	}
}
