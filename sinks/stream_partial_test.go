package sinks

import (
	"context"
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/runnel-dev/runnel/internal/testutil/faultfs"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
)

// A plain Write whose put stored the records of one shard and not those
// of another puts again only the records not stored: each record is in
// the stream once, and each key's records are in order.
func TestStreamSinkPutsAgainOnlyWhatAPartialPutDidNotStore(t *testing.T) {
	fault := &faultfs.Segments{}
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
	// The next write to shard 1's segments meets a full disk, once: that
	// shard refuses its part of a put for a while (streams.ErrUnavailable),
	// the other shard stores its own.
	fault.Arm(errorfs.OpFileWriteAt, streams.ShardID(1), syscall.ENOSPC)
	if err := s.Write(context.Background(), rows); err != nil {
		t.Fatalf("write with one shard's disk full once: %v", err)
	}
	if fault.Armed(streams.ShardID(1)) {
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
