package state

import (
	"bytes"
	"testing"
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
