package sinks

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
)

// diskFullOnce fails the next write to one shard's segments with ENOSPC,
// once, after being armed: that shard refuses its part of a put for a
// while (streams.ErrUnavailable), the other shards store theirs.
type diskFullOnce struct {
	mu    sync.Mutex
	shard string
	armed bool
}

func (f *diskFullOnce) String() string { return "a full disk on one shard's next write" }

func (f *diskFullOnce) MaybeError(op errorfs.Op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.armed || op.Kind != errorfs.OpFileWriteAt || !strings.HasSuffix(op.Path, ".seg") || !strings.Contains(op.Path, "/"+f.shard+"/") {
		return nil
	}
	f.armed = false
	return syscall.ENOSPC
}

// A plain Write whose put stored the records of one shard and not those
// of another puts again only the records not stored: each record is in
// the stream once, and each key's records are in order.
func TestStreamSinkPutsAgainOnlyWhatAPartialPutDidNotStore(t *testing.T) {
	fault := &diskFullOnce{shard: streams.ShardID(1)}
	store := streamstest.Open(t, streams.Options{FS: errorfs.Wrap(vfs.Default, fault), DiskRetry: time.Millisecond}, "out", 2)
	s, err := NewStream(StreamConfig{Store: store, Stream: "out", Columns: aggCols})
	if err != nil {
		t.Fatal(err)
	}
	const keys, perKey = 16, 4
	var rows []Row
	for i := range perKey {
		for k := range keys {
			key := fmt.Sprintf("k%d", k)
			rows = append(rows, Row{Key: key, Value: map[string]any{"window_start": int64(i), "window_end": int64(i + 1), "key": key, "views": int64(i)}})
		}
	}
	fault.mu.Lock()
	fault.armed = true
	fault.mu.Unlock()
	if err := s.Write(context.Background(), rows); err != nil {
		t.Fatalf("write with one shard's disk full once: %v", err)
	}
	fault.mu.Lock()
	missed := fault.armed
	fault.mu.Unlock()
	if missed {
		t.Fatal("no write reached shard 1: the test's keys all route to shard 0")
	}
	got := map[string][]int64{}
	n := 0
	for sh := range 2 {
		res, err := store.Read("out", streams.ShardID(sh), 0, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Records {
			var m map[string]any
			if err := json.Unmarshal(r.Data, &m); err != nil {
				t.Fatal(err)
			}
			got[r.PartitionKey] = append(got[r.PartitionKey], int64(m["window_start"].(float64)))
			n++
		}
	}
	if n != keys*perKey {
		t.Errorf("%d records in the stream, want %d (each row once)", n, keys*perKey)
	}
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		if fmt.Sprint(got[key]) != "[0 1 2 3]" {
			t.Errorf("key %s: window starts %v, want [0 1 2 3] (each once, in order)", key, got[key])
		}
	}
}
