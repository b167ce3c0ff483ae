package state

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestExportCheckpoint(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := db.Namespace("op", "t")
	sp.Set([]byte("a"), []byte("1"))
	if _, err := db.Checkpoint(1, []byte("meta-1")); err != nil {
		t.Fatal(err)
	}
	sp.Set([]byte("a"), []byte("2"))
	sp.Set([]byte("b"), []byte("2"))
	if _, err := db.Checkpoint(2, []byte("meta-2")); err != nil {
		t.Fatal(err)
	}
	sp.Set([]byte("c"), []byte("3")) // after every checkpoint: not exported
	dst := filepath.Join(t.TempDir(), "sp")
	info, err := ExportCheckpoint(nil, dir, 1, dst)
	if err != nil {
		t.Fatal(err)
	}
	if info.Epoch != 1 {
		t.Fatalf("exported epoch %d", info.Epoch)
	}
	if _, err := ExportCheckpoint(nil, dir, 1, dst); !errors.Is(err, ErrExists) {
		t.Fatalf("second export to the same place: %v, want ErrExists", err)
	}
	if _, err := ExportCheckpoint(nil, dir, 7, filepath.Join(t.TempDir(), "x")); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("export of a missing epoch: %v", err)
	}
	// The source keeps working and keeps its own history.
	if _, err := db.Checkpoint(3, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()

	got, ginfo, meta, err := Restore(dst, Latest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if ginfo.Epoch != 1 || string(meta) != "meta-1" {
		t.Fatalf("restored epoch %d meta %q", ginfo.Epoch, meta)
	}
	gsp, _ := got.Namespace("op", "t")
	for k, want := range map[string]string{"a": "1", "b": "", "c": ""} {
		v, ok, err := gsp.Get([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if string(v) != want || ok != (want != "") {
			t.Errorf("key %s = %q (%v), want %q", k, v, ok, want)
		}
	}
	// A job started from the export checkpoints on with later epochs.
	if _, err := got.Checkpoint(2, nil); err != nil {
		t.Fatal(err)
	}
	if cs := got.Checkpoints(); len(cs) != 2 || cs[1].Epoch != 2 {
		t.Fatalf("history after one more checkpoint: %+v", cs)
	}
}
