package kinesis

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/state"
)

// ids opens a sink (without a producer: only its ids are used) on the
// sink space of the store in dir, writes no rows but computes the ids of
// rows after epoch, and checkpoints the store at ckpt.
func ids(t *testing.T, dir string, epoch, ckpt uint64, rows []sinks.Row, restore bool) []string {
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
	defer db.Close()
	sp, err := db.Namespace("s", "sink")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{cfg: Config{Job: "j", Sink: "s", IDField: DefaultIDField}, seen: map[[32]byte]uint32{}}
	if err := s.OpenState(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	if s.epoch != epoch {
		s.epoch = epoch
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], epoch)
		if err := sp.Set(epochKey, b[:]); err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for _, r := range rows {
		_, id, err := s.encode(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	if _, err := db.Checkpoint(ckpt, nil); err != nil {
		t.Fatal(err)
	}
	return out
}

// A fresh start under a used job name and sink id counts its epochs from
// 1 again: its rows must not get the record ids of the earlier run's, or
// a consumer dropping repeated ids drops them. A restore keeps the ids,
// and so does one from a checkpoint taken before sinks kept an
// incarnation.
func TestRecordIDsOfAFreshStartDiffer(t *testing.T) {
	rows := windowRows(0, 3)
	old, fresh := t.TempDir(), t.TempDir()
	a := ids(t, old, 1, 1, rows, false)
	b := ids(t, fresh, 1, 1, rows, false)
	for i := range a {
		if a[i] == b[i] {
			t.Fatalf("row %d has id %s in both runs", i, a[i])
		}
	}
	if again := ids(t, fresh, 1, 2, rows, true); again[0] != b[0] {
		t.Fatalf("restored run writes row 0 with id %s, had %s", again[0], b[0])
	}
	// A checkpoint of before: the epoch stored, no incarnation.
	legacy := t.TempDir()
	db, err := state.Open(legacy, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := db.Namespace("s", "sink")
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Set(epochKey, binary.BigEndian.AppendUint64(nil, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Checkpoint(1, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := &Sink{cfg: Config{Job: "j", Sink: "s", IDField: DefaultIDField}, seen: map[[32]byte]uint32{}, epoch: 1}
	_, want, _ := s.encode(rows[0])
	if got := ids(t, legacy, 1, 2, rows, true); got[0] != want {
		t.Fatalf("a checkpoint of before restores with id %s for row 0, want its old id %s", got[0], want)
	}
}
