package epochs

import (
	"fmt"
	"testing"

	"github.com/runnel-dev/runnel/state"
)

// Staged epochs come back in order with their rows, across a chunk
// boundary; chunks without a marker (a PreCommit cut short) are dropped
// and deleted; Forget removes an epoch.
func TestStageLoadForget(t *testing.T) {
	db, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sp, err := db.Namespace("sink", "0")
	if err != nil {
		t.Fatal(err)
	}
	var big []Row
	for i := range ChunkRows + 3 {
		big = append(big, Row{Key: fmt.Sprint(i % 7), Value: map[string]any{"i": float64(i)}})
	}
	e2, err := Stage(sp, 2, "topic-a", big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Stage(sp, 5, "topic-b", []Row{{Value: "x"}}); err != nil {
		t.Fatal(err)
	}
	// A marker from before markers held the target: chunk count only.
	if err := sp.Set(markerKey(7), []byte{0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	// An orphan chunk of epoch 9: its PreCommit never wrote the marker.
	if err := sp.Set(chunkKey(9, 0), []byte(`[{"v":1}]`)); err != nil {
		t.Fatal(err)
	}
	got, err := Load(sp)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Epoch != 2 || got[1].Epoch != 5 || len(got[0].Rows) != len(big) || got[1].Rows[0].Value != "x" {
		t.Fatalf("Load = %d epochs %+v", len(got), got)
	}
	if got[0].Target != "topic-a" || got[1].Target != "topic-b" || got[2].Epoch != 7 || got[2].Target != "" {
		t.Fatalf("targets %q %q, epoch %d %q", got[0].Target, got[1].Target, got[2].Epoch, got[2].Target)
	}
	if r := got[0].Rows[ChunkRows+2]; r.Key != fmt.Sprint((ChunkRows+2)%7) || r.Value.(map[string]any)["i"] != float64(ChunkRows+2) {
		t.Fatalf("last row of epoch 2 = %+v", r)
	}
	if _, ok, _ := sp.Get(chunkKey(9, 0)); ok {
		t.Fatal("the orphan chunk was not deleted")
	}
	if err := Forget(sp, e2); err != nil {
		t.Fatal(err)
	}
	if got, _ := Load(sp); len(got) != 2 || got[0].Epoch != 5 {
		t.Fatalf("after Forget(2): %+v", got)
	}
}
