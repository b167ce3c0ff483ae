package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/sinks"
	kafkasink "github.com/runnel-dev/runnel/sinks/kafka"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/streams"
)

const targetJob = `name: tgt
source: {stream: tgt-in}
sinks:
  - {id: out, stream: {name: out-a}}
  - {id: extra, stream: {name: out-x}}
checkpoint: {every: 100ms}
`

// streamCount is the number of records in stream.
func streamCount(t *testing.T, st *streams.Store, stream string) int {
	t.Helper()
	info, err := st.DescribeStream(stream)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, sh := range info.Shards {
		for from := uint64(0); from <= sh.LastSeq; {
			res, err := st.Read(stream, sh.ID, from, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			n += len(res.Records)
			if res.Next <= from {
				break
			}
			from = res.Next
		}
	}
	return n
}

func putN(t *testing.T, st *streams.Store, stream string, from, n int) {
	t.Helper()
	var recs []streams.PutRecord
	for i := range n {
		recs = append(recs, streams.PutRecord{PartitionKey: fmt.Sprint(i), Data: fmt.Appendf(nil, `{"n":%d}`, from+i)})
	}
	if _, err := st.Put(context.Background(), stream, recs); err != nil {
		t.Fatal(err)
	}
}

// sourceRead is how many records the current run of job id has read.
func sourceRead(t *testing.T, m *Manager, id string) int64 {
	t.Helper()
	j, err := m.job(id)
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	rj := j.mu.run
	j.mu.Unlock()
	if rj == nil {
		return -1
	}
	for _, o := range rj.Status().Operators {
		if o.Kind == "source" {
			return o.Out
		}
	}
	return -1
}

// rareCheckpointTarget runs the target job, checkpointing an hour apart,
// until it has read 5 records of tgt-in: a savepoint is what stages them.
func rareCheckpointTarget(t *testing.T) (*streams.Store, *Manager, string) {
	t.Helper()
	st, dir, log := managerStore(t)
	m := startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log})
	for _, s := range []string{"tgt-in", "out-a", "out-b", "out-x"} {
		if _, err := st.CreateStream(s, 1, streams.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	file := strings.Replace(targetJob, "every: 100ms", "every: 1h", 1)
	if _, err := m.Submit([]byte(file)); err != nil {
		t.Fatal(err)
	}
	putN(t, st, "tgt-in", 0, 5)
	if !testutil.Within(30*time.Second, func() bool { return sourceRead(t, m, "tgt") >= 5 }) {
		t.Fatal("the job did not read its 5 records")
	}
	return st, m, file
}

// A deploy from a savepoint that points a stream sink at another stream
// leaves the records staged in the savepoint in the old stream, once, and
// writes only the records read after the savepoint to the new one. The
// job checkpoints rarely, so that the savepoint is what stages the first
// records.
func TestDeployNewSinkStreamKeepsStagedRecordsInOld(t *testing.T) {
	st, m, file := rareCheckpointTarget(t)
	if n := streamCount(t, st, "out-a"); n != 0 {
		t.Fatalf("out-a holds %d records before any checkpoint", n)
	}
	if _, err := m.Deploy("tgt", []byte(strings.Replace(file, "out-a", "out-b", 1)), DeploySavepoint); err != nil {
		t.Fatal(err)
	}
	putN(t, st, "tgt-in", 5, 3)
	if !testutil.Within(30*time.Second, func() bool { return sourceRead(t, m, "tgt") >= 3 }) {
		t.Fatal("the deployed job did not read its 3 records")
	}
	if err := m.Stop("tgt"); err != nil {
		t.Fatal(err)
	}
	if a, b := streamCount(t, st, "out-a"), streamCount(t, st, "out-b"); a != 5 || b != 3 {
		t.Fatalf("out-a holds %d records, out-b %d; want 5 and 3", a, b)
	}
}

// stageRemoved writes the state store of job tgt as a checkpoint of job
// file leaves it when its commit was cut short: sink id has n records
// staged for stream, not yet appended. With noJobFile the checkpoint
// does not hold its job file.
func stageRemoved(t *testing.T, m *Manager, st *streams.Store, file, id, stream string, n int, noJobFile bool) {
	t.Helper()
	s, err := sinks.NewStream(sinks.StreamConfig{Store: st, Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	stageIn(t, m, s, file, id, n, noJobFile)
}

// stageIn is stageRemoved with sink s.
func stageIn(t *testing.T, m *Manager, s sinks.Transactional, file, id string, n int, noJobFile bool) {
	t.Helper()
	defer s.Close()
	ctx := context.Background()
	db, err := state.Open(m.stateDir("tgt"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sp, err := db.Namespace(id, "sink")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.OpenState(ctx, sp); err != nil {
		t.Fatal(err)
	}
	var rows []sinks.Row
	for i := range n {
		rows = append(rows, sinks.Row{Key: fmt.Sprint(i), Value: map[string]any{"n": i}})
	}
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := s.PreCommit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	spec, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	snap := engine.Snapshot{Epoch: 1, Job: "tgt", Extra: extraOf(spec, []byte(file))}
	if noJobFile {
		snap.Extra = nil
	}
	meta, _ := json.Marshal(snap)
	if _, err := db.Checkpoint(1, meta); err != nil {
		t.Fatal(err)
	}
}

// A job restored with a sink gone from its file (removed, renamed, or its
// id given to a sink of another kind) commits what the checkpoint holds
// staged by that sink to where it was staged for, and clears its state;
// output staged for a stream deleted since is dropped with a warning.
func TestRestoreCommitsRemovedSinkOutput(t *testing.T) {
	for _, c := range []struct {
		name, file string
		gone       bool
	}{
		{"removed", strings.Replace(targetJob, "  - {id: extra, stream: {name: out-x}}\n", "", 1), false},
		{"renamed", strings.Replace(targetJob, "id: extra", "id: extra2", 1), false},
		{"kind-changed", strings.Replace(targetJob, "{id: extra, stream: {name: out-x}}", "{id: extra, dashboard: {}}", 1), false},
		{"target-gone", strings.Replace(targetJob, "  - {id: extra, stream: {name: out-x}}\n", "", 1), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, dir, log := managerStore(t)
			m := startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log})
			for _, s := range []string{"tgt-in", "out-a", "out-x"} {
				if _, err := st.CreateStream(s, 1, streams.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			stageRemoved(t, m, st, targetJob, "extra", "out-x", 7, false)
			if c.gone {
				if err := st.DeleteStream("out-x"); err != nil {
					t.Fatal(err)
				}
			}
			spec, err := Parse([]byte(c.file))
			if err != nil {
				t.Fatal(err)
			}
			cs, err := m.openState(&Job{ID: "tgt", Spec: spec, Source: []byte(c.file)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.db.Close()
			if c.gone {
				// The output belonged to the deleted stream: dropped, said.
				if len(cs.warnings) != 1 || !strings.Contains(cs.warnings[0], "sink extra: 7 records staged") || !strings.Contains(cs.warnings[0], "no longer exists") {
					t.Fatalf("warnings %q, want one saying sink extra's 7 records were dropped", cs.warnings)
				}
				sp, _ := cs.db.Namespace("extra", "sink")
				if has, _ := hasKeys(sp); has {
					t.Fatal("the removed sink's state is left")
				}
				return
			}
			if n := streamCount(t, st, "out-x"); n != 7 {
				t.Fatalf("out-x holds %d records, want the 7 staged", n)
			}
			sp, _ := cs.db.Namespace("extra", "sink")
			if has, _ := hasKeys(sp); has {
				t.Fatal("the removed sink's state is left")
			}
		})
	}
}

// Without the job file in the checkpoint, the removed sink's staged
// output cannot be committed: it is kept, and the job warned.
func TestRestoreWarnsOfUnknownRemovedSink(t *testing.T) {
	st, dir, log := managerStore(t)
	m := startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log})
	for _, s := range []string{"tgt-in", "out-a", "out-x"} {
		if _, err := st.CreateStream(s, 1, streams.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	stageRemoved(t, m, st, targetJob, "extra", "out-x", 3, true)
	file := strings.Replace(targetJob, "  - {id: extra, stream: {name: out-x}}\n", "", 1)
	spec, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := m.openState(&Job{ID: "tgt", Spec: spec, Source: []byte(file)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.db.Close()
	if len(cs.warnings) != 1 || !strings.Contains(cs.warnings[0], `sink "extra"`) {
		t.Fatalf("warnings %q, want one naming sink extra", cs.warnings)
	}
	sp, _ := cs.db.Namespace("extra", "sink")
	if has, _ := hasKeys(sp); !has {
		t.Fatal("the removed sink's staged output was dropped")
	}
}

// An operator whose dead letters the new file no longer sends to a
// stream: the dead letters the checkpoint holds staged still reach the
// stream they were staged for.
func TestRestoreCommitsRemovedDeadLetters(t *testing.T) {
	const old = `name: tgt
source: {stream: tgt-in}
operators:
  - id: parse
    map: "r => ({page: r.page.toUpperCase()})"
    on_error: {dead_letter: bad}
sinks:
  - {id: out, stream: {name: out-a}}
`
	st, dir, log := managerStore(t)
	m := startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log})
	for _, s := range []string{"tgt-in", "out-a", "bad"} {
		if _, err := st.CreateStream(s, 1, streams.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	stageRemoved(t, m, st, old, "parse"+deadLetterSuffix, "bad", 4, false)
	file := strings.Replace(old, "on_error: {dead_letter: bad}", "on_error: skip", 1)
	spec, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := m.openState(&Job{ID: "tgt", Spec: spec, Source: []byte(file)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.db.Close()
	if n := streamCount(t, st, "bad"); n != 4 {
		t.Fatalf("stream bad holds %d records, want the 4 staged", n)
	}
}

// A deploy whose savepoint holds records staged for a stream deleted
// since runs, with a warning naming the stream and the records dropped,
// rather than writing them to the new stream or failing: they belonged to
// the deleted stream (here they had even reached it before the delete).
func TestDeployStagedStreamGoneWarns(t *testing.T) {
	st, m, file := rareCheckpointTarget(t)
	if _, err := m.Savepoint("tgt", true); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteStream("out-a"); err != nil {
		t.Fatal(err)
	}
	d, err := m.Deploy("tgt", []byte(strings.Replace(file, "out-a", "out-b", 1)), DeploySavepoint)
	if err != nil {
		t.Fatal(err)
	}
	var in Info
	if !testutil.Within(30*time.Second, func() bool { in = d.Job.Info(false); return in.State == string(engine.Running) }) {
		t.Fatalf("job is %s (%s), want running", in.State, in.Reason)
	}
	found := false
	for _, w := range in.Warnings {
		found = found || (strings.Contains(w, `stream "out-a"`) && strings.Contains(w, "no longer exists") && strings.Contains(w, "dropped"))
	}
	if !found {
		t.Fatalf("warnings %q do not name the deleted stream's dropped records", in.Warnings)
	}
	if n := streamCount(t, st, "out-b"); n != 0 {
		t.Fatalf("out-b holds %d records, want 0", n)
	}
}

// A removed Kafka sink's staged epoch reaches its topic, committed in a
// transaction of the old sink's transactional id.
func TestRestoreCommitsRemovedKafkaSink(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "kx")
	oldFile := strings.Replace(targetJob, "{id: extra, stream: {name: out-x}}",
		fmt.Sprintf("{id: extra, kafka: {brokers: [%q], topic: kx}}", brokers[0]), 1)
	st, dir, log := managerStore(t)
	m := startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log})
	for _, s := range []string{"tgt-in", "out-a"} {
		if _, err := st.CreateStream(s, 1, streams.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	k, err := kafkasink.New(kafkasink.Config{Brokers: brokers, Topic: "kx", Job: "tgt", Sink: "extra"})
	if err != nil {
		t.Fatal(err)
	}
	stageIn(t, m, k, oldFile, "extra", 3, false)
	file := strings.Replace(targetJob, "  - {id: extra, stream: {name: out-x}}\n", "", 1)
	spec, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := m.openState(&Job{ID: "tgt", Spec: spec, Source: []byte(file)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.db.Close()
	cl := testsrv.ReadCommitted(t, "kx", brokers...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := 0
	for got < 3 && ctx.Err() == nil {
		got += len(cl.PollFetches(ctx).Records())
	}
	if got != 3 {
		t.Fatalf("topic kx holds %d committed records, want the 3 staged", got)
	}
}
