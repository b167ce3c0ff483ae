package cluster

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators/window"
	"github.com/runnel-dev/runnel/state"
)

// A snapshot holds a task's local state and its offset, and a damaged
// one is refused rather than restored.
func TestSnapshotRoundTrip(t *testing.T) {
	db, err := state.Open(filepath.Join(t.TempDir(), "local"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sp, err := db.Namespace("per-page", "t/0")
	if err != nil {
		t.Fatal(err)
	}
	rng := testutil.Rand(t, 1)
	want := map[string]string{}
	var changes []Change
	for range 200 {
		k := encodeWindowKey(string(rune('a'+rng.IntN(26))), window.Window{Start: rng.Int64N(50) * 1000, End: rng.Int64N(50)*1000 + 1000})
		v := []byte{byte(rng.IntN(256)), byte(rng.IntN(256))}
		if rng.IntN(5) == 0 {
			v = nil
			delete(want, string(k))
		} else {
			want[string(k)] = string(v)
		}
		changes = append(changes, Change{Key: k, Value: v})
	}
	if err := writeLocal(sp, changes, 1234, true); err != nil {
		t.Fatal(err)
	}
	b, n, err := encodeSnapshot(1234, sp)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Errorf("snapshot of %d records, want %d", n, len(want))
	}
	upTo, got, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if upTo != 1234 {
		t.Errorf("offset %d, want 1234", upTo)
	}
	gotm := map[string]string{}
	for _, c := range got {
		gotm[string(c.Key)] = string(c.Value)
	}
	lines := func(m map[string]string) []string {
		var out []string
		for k, v := range m {
			out = append(out, fmt.Sprintf("%x=%x", k, v))
		}
		slices.Sort(out)
		return out
	}
	if d := testutil.Diff(lines(want), lines(gotm)); d != "" {
		t.Errorf("snapshot differs from the local state:\n%s", d)
	}
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x10
		if _, _, err := decodeSnapshot(bad); !errors.Is(err, errSnapshot) {
			t.Fatalf("byte %d flipped: decoded (err %v)", i, err)
		}
	}
	if _, _, err := decodeSnapshot(b[:len(b)-5]); !errors.Is(err, errSnapshot) {
		t.Errorf("cut snapshot decoded (err %v)", err)
	}
}

func TestParseSnapshotURL(t *testing.T) {
	st, err := ParseSnapshotURL("s3://snaps/runnel/prod?endpoint=http://127.0.0.1:7070&region=eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	want := SnapshotStore{Bucket: "snaps", Prefix: "runnel/prod", Endpoint: "http://127.0.0.1:7070", Region: "eu-west-1", PathStyle: true}
	if *st != want {
		t.Errorf("got %+v, want %+v", *st, want)
	}
	for _, bad := range []string{"snaps/x", "s3:///x", "s3://b?endpont=x", "s3://b?path_style=maybe", "http://b/x"} {
		if _, err := ParseSnapshotURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
