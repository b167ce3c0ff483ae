package sinks

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/streams"
)

// targetJob is a job whose stream sink stages rows for one stream, takes a
// checkpoint, and is then restored from it writing to another stream, as
// a deploy from a savepoint with a changed job file does.
type targetJob struct {
	t        *testing.T
	store    *streams.Store
	stateDir string
}

func newTargetJob(t *testing.T, names ...string) *targetJob {
	store, err := streams.Open(filepath.Join(t.TempDir(), "streams"), streams.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for _, n := range names {
		if _, err := store.CreateStream(n, 2, streams.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return &targetJob{t: t, store: store, stateDir: filepath.Join(t.TempDir(), "state")}
}

// stage runs the first job on stream: it writes rows, pre-commits them
// as epoch 1, checkpoints, and commits when commit is set (a savepoint
// taken with stop commits; a crash right after the checkpoint does not).
func (j *targetJob) stage(stream string, rows []Row, commit bool) {
	t, ctx := j.t, context.Background()
	db, sp := openSinkSpace(t, j.stateDir, false)
	defer db.Close()
	s := j.sink(stream)
	stageRows(t, s, sp, rows)
	if _, err := db.Checkpoint(1, nil); err != nil {
		t.Fatal(err)
	}
	if commit {
		if err := s.Commit(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
}

// restore opens the checkpoint with a sink on stream and returns
// OpenState's error.
func (j *targetJob) restore(stream string) error {
	db, sp := openSinkSpace(j.t, j.stateDir, true)
	defer db.Close()
	return j.sink(stream).OpenState(context.Background(), sp)
}

// sink is a stream sink of the job's store writing to stream.
func (j *targetJob) sink(stream string) *Stream {
	j.t.Helper()
	s, err := NewStream(StreamConfig{Store: j.store, Stream: stream})
	if err != nil {
		j.t.Fatal(err)
	}
	return s
}

// openSinkSpace opens the state in dir (restored from its latest
// checkpoint with restore) and returns it with the sink's key space; the
// caller closes it.
func openSinkSpace(t *testing.T, dir string, restore bool) (*state.DB, *state.Space) {
	t.Helper()
	var db *state.DB
	var err error
	if restore {
		db, _, _, err = state.Restore(dir, state.Latest, state.Options{})
	} else {
		db, err = state.Open(dir, state.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	sp, err := db.Namespace("out", "sink")
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return db, sp
}

// stageRows opens s on sp, writes rows and pre-commits them as epoch 1.
func stageRows(t *testing.T, s Transactional, sp *state.Space, rows []Row) {
	t.Helper()
	ctx := context.Background()
	if err := s.OpenState(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := s.PreCommit(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

// count is the number of records in stream.
func (j *targetJob) count(stream string) int {
	j.t.Helper()
	info, err := j.store.DescribeStream(stream)
	if err != nil {
		j.t.Fatal(err)
	}
	n := 0
	for _, sh := range info.Shards {
		for from := uint64(0); from <= sh.LastSeq; {
			res, err := j.store.Read(stream, sh.ID, from, 0, 0)
			if err != nil {
				j.t.Fatal(err)
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

// A restored sink whose job now writes to another stream commits the
// records staged by the checkpoint to the stream they were staged for:
// once, whether or not the first job committed them, and none to the new
// stream.
func TestStreamTxnRestoreCommitsToStagedTarget(t *testing.T) {
	rows := txnRows(1, 40, 5)[0]
	for _, committed := range []bool{true, false} {
		j := newTargetJob(t, "old", "new")
		j.stage("old", rows, committed)
		if err := j.restore("new"); err != nil {
			t.Fatalf("committed=%v: %v", committed, err)
		}
		if got := j.count("old"); got != len(rows) {
			t.Errorf("committed=%v: old stream holds %d records, want %d", committed, got, len(rows))
		}
		if got := j.count("new"); got != 0 {
			t.Errorf("committed=%v: new stream holds %d records of the old stream's checkpoint, want 0", committed, got)
		}
	}
}

// Records staged for a stream deleted since cannot be delivered: OpenState
// fails naming the stream, rather than dropping them or writing them to
// the new target.
func TestStreamTxnRestoreTargetGone(t *testing.T) {
	rows := txnRows(1, 10, 2)[0]
	j := newTargetJob(t, "old", "new")
	j.stage("old", rows, false)
	if err := j.store.DeleteStream("old"); err != nil {
		t.Fatal(err)
	}
	err := j.restore("new")
	if err == nil || !errors.Is(err, ErrStagedTargetGone) || !strings.Contains(err.Error(), `"old"`) {
		t.Fatalf("OpenState: %v, want ErrStagedTargetGone naming stream old", err)
	}
	if got := j.count("new"); got != 0 {
		t.Errorf("new stream holds %d records, want 0", got)
	}
}

// A marker written before markers named their stream (version 1) still
// decodes; its stream is the one the sink writes to.
func TestStreamTxnMarkerVersion1(t *testing.T) {
	v1 := []byte{1, 2, 7, 1, 0, 42} // 2 chunks, 7 records, shard 0 ends at 42
	m, err := decodeMarker(v1)
	if err != nil {
		t.Fatal(err)
	}
	if m.stream != "" || m.chunks != 2 || m.records != 7 || m.ends[0] != 42 {
		t.Fatalf("decoded %+v", m)
	}
	m2 := txnMarker{stream: "results", chunks: 3, records: 9, ends: map[int]uint64{0: 5, 3: 8}}
	got, err := decodeMarker(encodeMarker(m2))
	if err != nil || got.stream != m2.stream || got.chunks != 3 || got.records != 9 || len(got.ends) != 2 || got.ends[3] != 8 {
		t.Fatalf("round trip %+v: %+v, %v", m2, got, err)
	}
}

// recreate deletes stream and creates it again: another stream under the
// name.
func (j *targetJob) recreate(stream string) {
	j.t.Helper()
	if err := j.store.DeleteStream(stream); err != nil {
		j.t.Fatal(err)
	}
	if _, err := j.store.CreateStream(stream, 2, streams.CreateOptions{}); err != nil {
		j.t.Fatal(err)
	}
}

// Records staged for a stream that was deleted and created again since
// belong to the deleted stream: the restore fails as for a deleted target,
// naming both creation times, and the new stream gets none of them —
// whether the restored sink writes to that name or to another stream, and
// whether or not the first job committed them (the deleted stream took
// them with it; that cannot be told from a commit that never happened).
func TestStreamTxnRestoreTargetRecreated(t *testing.T) {
	rows := txnRows(1, 10, 2)[0]
	for _, sinkNow := range []string{"old", "new"} {
		for _, committed := range []bool{false, true} {
			j := newTargetJob(t, "old", "new")
			j.stage("old", rows, committed)
			j.recreate("old")
			err := j.restore(sinkNow)
			if !errors.Is(err, ErrStagedTargetGone) || !strings.Contains(err.Error(), `"old"`) || !strings.Contains(err.Error(), "another stream") {
				t.Fatalf("sink on %s, committed=%v: OpenState: %v, want ErrStagedTargetGone saying stream old is another stream", sinkNow, committed, err)
			}
			for _, s := range []string{"old", "new"} {
				if got := j.count(s); got != 0 {
					t.Errorf("sink on %s, committed=%v: stream %s holds %d of the deleted stream's staged records", sinkNow, committed, s, got)
				}
			}
		}
	}
}

// A commit of an epoch pre-committed before its stream was deleted and
// created again fails with ErrStagedTargetGone and writes nothing into
// the new stream.
func TestStreamTxnCommitTargetRecreated(t *testing.T) {
	ctx := context.Background()
	j := newTargetJob(t, "out")
	db, sp := openSinkSpace(t, j.stateDir, false)
	defer db.Close()
	s := j.sink("out")
	stageRows(t, s, sp, txnRows(1, 6, 2)[0])
	j.recreate("out")
	if err := s.Commit(ctx, 1); !errors.Is(err, ErrStagedTargetGone) {
		t.Fatalf("commit into a re-created stream: %v, want ErrStagedTargetGone", err)
	}
	if got := j.count("out"); got != 0 {
		t.Errorf("the new stream holds %d records staged for the old one", got)
	}
}

// Markers carry their stream's incarnation; a version 2 marker (stream
// name only) decodes with none, which matches any stream of the name.
func TestStreamTxnMarkerIncarnation(t *testing.T) {
	v2 := []byte{2, 3, 'o', 'u', 't', 2, 7, 1, 0, 42}
	m, err := decodeMarker(v2)
	if err != nil {
		t.Fatal(err)
	}
	if m.stream != "out" || m.inc.known() || m.chunks != 2 || m.records != 7 || m.ends[0] != 42 {
		t.Fatalf("decoded %+v", m)
	}
	if !m.inc.matches(streams.StreamInfo{Created: time.Now(), SeqTag: 5}) {
		t.Fatal("an unknown incarnation does not match")
	}
	m3 := txnMarker{stream: "out", inc: incarnation{created: 1_700_000_000_123_456_789, seqTag: 77}, chunks: 1, records: 3, ends: map[int]uint64{1: 9}}
	got, err := decodeMarker(encodeMarker(m3))
	if err != nil || got.stream != "out" || got.inc != m3.inc || got.chunks != 1 || got.records != 3 || got.ends[1] != 9 {
		t.Fatalf("round trip %+v: %+v, %v", m3, got, err)
	}
	for _, c := range []struct {
		info streams.StreamInfo
		want bool
	}{
		{streams.StreamInfo{Created: time.Unix(0, m3.inc.created), SeqTag: 77}, true},
		{streams.StreamInfo{Created: time.Unix(0, m3.inc.created), SeqTag: 78}, false},
		{streams.StreamInfo{Created: time.Unix(0, m3.inc.created+1), SeqTag: 77}, false},
		{streams.StreamInfo{Created: time.Unix(0, m3.inc.created)}, true}, // a stream without a tag
	} {
		if got := m3.inc.matches(c.info); got != c.want {
			t.Errorf("%+v matches %v: %v, want %v", m3.inc, c.info, got, c.want)
		}
	}
}

// DropStagedOfGoneStreams removes the epochs staged for a stream deleted
// (or deleted and created again) since, says so, and keeps the others: a
// live stream's, and a version 2 marker's (no incarnation: it matches any
// stream of its name). The restore then goes on without them.
func TestDropStagedOfGoneStreams(t *testing.T) {
	rows := txnRows(1, 10, 2)[0]
	for _, c := range []struct {
		name string
		gone func(j *targetJob)
		want string
	}{
		{"live", func(*targetJob) {}, ""},
		{"deleted", func(j *targetJob) {
			if err := j.store.DeleteStream("old"); err != nil {
				t.Fatal(err)
			}
		}, "it no longer exists"},
		{"created-again", func(j *targetJob) { j.recreate("old") }, "now is another one"},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := newTargetJob(t, "old")
			j.stage("old", rows, false)
			c.gone(j)
			db, sp := openSinkSpace(t, j.stateDir, true)
			defer db.Close()
			// An epoch whose marker holds no incarnation (as older markers), for a
			// stream that does not exist.
			if err := sp.Set(markerKey(7), encodeMarker(txnMarker{stream: "gone", ends: map[int]uint64{}})); err != nil {
				t.Fatal(err)
			}
			lines, err := DropStagedOfGoneStreams(sp, j.store)
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "" && len(lines) != 0 || c.want != "" && (len(lines) != 1 || !strings.Contains(lines[0], c.want) || !strings.Contains(lines[0], `10 records staged at checkpoint epoch 1 for stream "old"`)) {
				t.Fatalf("dropped %q, want one line saying %q", lines, c.want)
			}
			epochs, err := loadStaged(sp)
			if err != nil {
				t.Fatal(err)
			}
			var kept []uint64
			for _, e := range epochs {
				kept = append(kept, e.epoch)
			}
			want := []uint64{1, 7}
			if c.want != "" {
				want = []uint64{7}
			}
			if fmt.Sprint(kept) != fmt.Sprint(want) {
				t.Fatalf("epochs kept %v, want %v", kept, want)
			}
		})
	}
}
