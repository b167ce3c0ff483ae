package twophase

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Commit hands the queued epochs up to its own, oldest first; a commit
// error stops the log for good; epochs must grow; a nil Log is not open.
func TestLog(t *testing.T) {
	var closed *Log[string]
	if err := closed.PreCommit(1); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("PreCommit on a nil Log: %v", err)
	}
	if err := closed.Commit(1, nil); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("Commit on a nil Log: %v", err)
	}
	l := New[string]("test sink a")
	l.Restored(2)
	if err := l.PreCommit(2); err == nil || !strings.Contains(err.Error(), "test sink a: PreCommit epoch 2 is not after the last one, 2") {
		t.Fatalf("PreCommit of the restored epoch: %v", err)
	}
	for _, e := range []uint64{3, 4, 5} {
		if err := l.PreCommit(e); err != nil {
			t.Fatal(err)
		}
		l.Add(e, string(rune('a'+e)))
	}
	var got []string
	record := func(_ uint64, v string) error { got = append(got, v); return nil }
	if err := l.Commit(4, record); err != nil {
		t.Fatal(err)
	}
	if want := []string{"d", "e"}; !slices.Equal(got, want) {
		t.Fatalf("committed %v, want %v", got, want)
	}
	if p := l.Pending(); !slices.Equal(p, []string{"f"}) {
		t.Fatalf("pending %v, want [f]", p)
	}
	boom := errors.New("boom")
	err := l.Commit(9, func(uint64, string) error { return boom })
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "test sink a: commit epoch 5 (restart the job from its checkpoint)") {
		t.Fatalf("failed commit: %v", err)
	}
	if l.Err() != err || l.PreCommit(6) != err || l.Commit(9, record) != err {
		t.Fatal("a failed Log does not keep returning its error")
	}
}
