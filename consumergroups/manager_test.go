package consumergroups

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
)

// A group's leases, owners, epochs and checkpoints survive a restart of
// the server; a stale checkpoint is refused after it as before.
func TestManagerRestart(t *testing.T) {
	dir := t.TempDir()
	store := streamstest.Open(t, streams.Options{}, "clicks", 2)
	now := t0
	clock := func() time.Time { return now }
	gdir := filepath.Join(dir, "groups")
	m, err := Open(gdir, store, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(Config{Stream: "clicks", Name: "app"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(Config{Stream: "clicks", Name: "app"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	if _, err := m.Create(Config{Stream: "nope", Name: "app"}); !errors.Is(err, streams.ErrStreamNotFound) {
		t.Fatalf("create on a missing stream: %v", err)
	}
	res, err := m.Sync("clicks", "app", "w1")
	if err != nil || len(res.Leases) != 2 {
		t.Fatalf("sync: %v %+v", err, res)
	}
	l := res.Leases[0]
	if err := m.Checkpoint("clicks", "app", l.Shard, "w1", l.Epoch, Checkpoint{SequenceNumber: "42", SubSequenceNumber: 3}); err != nil {
		t.Fatal(err)
	}

	m2, err := Open(gdir, store, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	g, err := m2.Describe("clicks", "app")
	if err != nil {
		t.Fatal(err)
	}
	got := g.Leases[0]
	if got.Owner != "w1" || got.Epoch != l.Epoch || got.Checkpoint != (Checkpoint{SequenceNumber: "42", SubSequenceNumber: 3}) {
		t.Fatalf("after restart lease %+v, want w1's at epoch %d with checkpoint 42/3", got, l.Epoch)
	}
	// w1 keeps its lease over the restart; w2 takes it once it expires.
	now = now.Add(DefaultLeaseDuration + time.Second)
	res2, err := m2.Sync("clicks", "app", "w2")
	if err != nil || len(res2.Leases) != 2 {
		t.Fatalf("w2 after w1 expired: %v %+v", err, res2)
	}
	if err := m2.Checkpoint("clicks", "app", l.Shard, "w1", l.Epoch, Checkpoint{SequenceNumber: "50"}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale checkpoint after restart: %v, want ErrLeaseLost", err)
	}
	if g, _ := m2.Describe("clicks", "app"); g.StaleRefused != 1 {
		t.Fatalf("stale refusals counted %d, want 1", g.StaleRefused)
	}
	if err := m2.Delete("clicks", "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(gdir, "clicks", "app.json")); !os.IsNotExist(err) {
		t.Fatalf("group file after delete: %v", err)
	}
}

// A damaged group file stops the server from starting, naming the file.
func TestManagerDamagedFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "clicks"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "clicks", "app.json"), []byte(`{"config":`), 0o600)
	if _, err := Open(dir, nil, Options{}); err == nil {
		t.Fatal("Open accepted a damaged group file")
	}
}

// A reader of a stream cannot make the server keep groups or workers
// without bound.
func TestManagerLimits(t *testing.T) {
	dir := t.TempDir()
	store := streamstest.Open(t, streams.Options{}, "s", 2)
	m, err := Open(filepath.Join(dir, "groups"), store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range MaxGroupsPerStream {
		if _, err := m.Create(Config{Stream: "s", Name: fmt.Sprintf("g%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Create(Config{Stream: "s", Name: "one-more"}); !errors.Is(err, ErrLimit) {
		t.Fatalf("group %d: %v, want ErrLimit", MaxGroupsPerStream+1, err)
	}
	for i := range MaxWorkersPerGroup {
		if _, err := m.Sync("s", "g0", fmt.Sprintf("w%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Sync("s", "g0", "one-more"); !errors.Is(err, ErrLimit) {
		t.Fatalf("worker %d: %v, want ErrLimit", MaxWorkersPerGroup+1, err)
	}
	if _, err := m.Sync("s", "g0", "w7"); err != nil {
		t.Fatalf("a known worker's sync at the limit: %v", err)
	}
}

// A stream deleted and created again starts without the groups of the
// deleted one: their checkpoints are positions in a stream that is gone.
// A group saved before groups recorded their stream's creation is kept and
// takes the stream as it is.
func TestGroupsGoWithTheirStream(t *testing.T) {
	store := streamstest.Open(t, streams.Options{}, "clicks", 1)
	gdir := filepath.Join(t.TempDir(), "groups")
	m, err := Open(gdir, store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app", "old"} {
		if _, err := m.Create(Config{Stream: "clicks", Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := m.Sync("clicks", "app", "w1")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Checkpoint("clicks", "app", res.Leases[0].Shard, "w1", res.Leases[0].Epoch, Checkpoint{SequenceNumber: "42"}); err != nil {
		t.Fatal(err)
	}
	// "old" as an earlier server wrote it: no stream_created.
	legacy := filepath.Join(gdir, "clicks", "old.json")
	b, err := os.ReadFile(legacy)
	if err != nil {
		t.Fatal(err)
	}
	var gf map[string]any
	if err := json.Unmarshal(b, &gf); err != nil {
		t.Fatal(err)
	}
	delete(gf, "stream_created")
	b, _ = json.Marshal(gf)
	if err := os.WriteFile(legacy, b, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err = Open(gdir, store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if gs := m.List("clicks"); len(gs) != 2 {
		t.Fatalf("groups before the stream goes: %+v", gs)
	}
	if b, _ := os.ReadFile(legacy); !strings.Contains(string(b), `"stream_created"`) {
		t.Fatalf("the legacy group did not take the stream as it is: %s", b)
	}

	if err := store.DeleteStream("clicks"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateStream("clicks", 1, streams.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if gs := m.List("clicks"); len(gs) != 0 {
		t.Fatalf("groups of the re-created stream: %+v; want none", gs)
	}
	if _, err := m.Describe("clicks", "app"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("describe the deleted stream's group: %v", err)
	}
	if _, err := os.Stat(filepath.Join(gdir, "clicks", "app.json")); !os.IsNotExist(err) {
		t.Fatalf("the deleted stream's group file: %v", err)
	}
	g, err := m.Create(Config{Stream: "clicks", Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range g.Leases {
		if l.Checkpoint != (Checkpoint{}) {
			t.Fatalf("the new group has a checkpoint: %+v", l)
		}
	}
}
