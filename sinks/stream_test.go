package sinks

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
)

func TestStreamSinkOneRecordPerResultKeyedByWindowKey(t *testing.T) {
	store := streamstest.Open(t, streams.Options{}, "out", 1)
	s, err := NewStream(StreamConfig{Store: store, Stream: "out", Columns: aggCols})
	if err != nil {
		t.Fatal(err)
	}
	batches, want := testBatches()
	long := strings.Repeat("k", 300)
	batches = append(batches, []Row{{Value: map[string]any{"x": 1.0}}, {Key: long, Value: map[string]any{"key": long}}})
	writeAll(t, s, batches...)
	res, err := store.Read("out", streams.ShardID(0), 0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 6 {
		t.Fatalf("%d records, want 6", len(res.Records))
	}
	for i, w := range want {
		rec := res.Records[i]
		var got map[string]any
		if err := json.Unmarshal(rec.Data, &got); err != nil {
			t.Fatal(err)
		}
		if rec.PartitionKey != w["key"] || got["key"] != w["key"] || got["views"] != float64(w["views"].(int64)) {
			t.Errorf("record %d: key %q data %s, want %v", i, rec.PartitionKey, rec.Data, w)
		}
	}
	if !strings.HasPrefix(string(res.Records[0].Data), `{"window_start":0,"window_end":10000,"key":"/a"`) {
		t.Errorf("column order: %s", res.Records[0].Data)
	}
	if res.Records[4].PartitionKey != "-" || len(res.Records[5].PartitionKey) != streams.MaxKeyLen {
		t.Errorf("keyless row key %q, long key clipped to %d", res.Records[4].PartitionKey, len(res.Records[5].PartitionKey))
	}
}
