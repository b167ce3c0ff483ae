package state

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestOperatorBytes: each operator's state size is the bytes of the keys
// and values of all its tasks, counted by operator; a deleted key no
// longer counts.
func TestOperatorBytes(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	w0, _ := db.Namespace("win", "0")
	w1, _ := db.Namespace("win", "1")
	d0, _ := db.Namespace("detect", "0")
	for i, sp := range []*Space{w0, w1, d0} {
		if err := sp.Set([]byte("k1"), bytes.Repeat([]byte("v"), 100*(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if err := d0.Set([]byte("gone"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d0.Delete([]byte("gone")); err != nil {
		t.Fatal(err)
	}
	got, err := db.OperatorBytes()
	if err != nil {
		t.Fatal(err)
	}
	// key "win\x000\x00k1" is 8 bytes.
	want := map[string]int64{"win": 8 + 100 + 8 + 200, "detect": 11 + 300}
	if len(got) != len(want) || got["win"] != want["win"] || got["detect"] != want["detect"] {
		t.Fatalf("OperatorBytes = %v, want %v", got, want)
	}
	db.Close()
	if _, err := db.OperatorBytes(); err == nil {
		t.Fatal("OperatorBytes of a closed DB gave no error")
	}
}

// TestCheckpointManifestBounded: the checkpoints of a job whose state does
// not change stay the same size. Every checkpoint flushes and appends an
// edit to Pebble's MANIFEST, which each checkpoint copies; the manifest is
// started over from the current state past Options.ManifestSize, so it does
// not grow with the number of checkpoints taken (with Pebble's default of
// 128 MiB, 600 checkpoints made it about 60 KB).
func TestCheckpointManifestBounded(t *testing.T) {
	fs := vfs.NewMem()
	const limit = 4 << 10
	db, err := Open("job", Options{FS: fs, ManifestSize: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sp, _ := db.Namespace("win", "0")
	manifest := func(epoch uint64) int64 {
		dir := fs.PathJoin("job", "checkpoints", fmt.Sprintf("%020d", epoch), ckptDBDir)
		names, err := fs.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if strings.HasPrefix(n, "MANIFEST-") {
				in, err := fs.Stat(fs.PathJoin(dir, n))
				if err != nil {
					t.Fatal(err)
				}
				return in.Size()
			}
		}
		t.Fatalf("checkpoint %d has no MANIFEST", epoch)
		return 0
	}
	var most int64
	for epoch := uint64(1); epoch <= 600; epoch++ {
		if err := sp.Set([]byte("k"), []byte(fmt.Sprint(epoch%2))); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Checkpoint(epoch, nil); err != nil {
			t.Fatal(err)
		}
		most = max(most, manifest(epoch))
	}
	if most > 2*limit {
		t.Fatalf("a checkpoint's MANIFEST reached %d bytes with ManifestSize %d", most, limit)
	}
}

// TestOperators lists the operators with state, once each, in key order,
// also when one id is a prefix of another and when an operator's keys
// were all deleted.
func TestOperators(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range []string{"win", "w", "win2", "detect", "gone"} {
		for task := range 3 {
			sp, _ := db.Namespace(id, fmt.Sprint(task))
			for k := range 50 {
				if err := sp.Set(fmt.Appendf(nil, "k%d", k), []byte("v")); err != nil {
					t.Fatal(err)
				}
				if id == "gone" {
					if err := sp.Delete(fmt.Appendf(nil, "k%d", k)); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	got, err := db.Operators()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"detect", "w", "win", "win2"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Operators = %q, want %q", got, want)
	}
	sizes, err := db.OperatorBytes()
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != len(got) {
		t.Fatalf("Operators = %q, OperatorBytes has %d operators", got, len(sizes))
	}
}
