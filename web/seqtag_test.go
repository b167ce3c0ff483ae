package web

import (
	"strings"
	"testing"
)

// TestRecordReadAfterRecreatedStream: a sequence number of a stream deleted
// and created again under the same name is refused by the record read
// (400, saying why), not taken as a position in the new stream, whose
// records would then be skipped; the new stream's numbers work.
func TestRecordReadAfterRecreatedStream(t *testing.T) {
	ts, _ := testServer(t)
	shard := "shardId-000000000000"
	putSeqs := func() []string {
		t.Helper()
		c, out := call(t, ts, "POST", "/api/v1/streams/re/records", `{"records":[{"key":"a","data":"1"},{"key":"a","data":"2"},{"key":"a","data":"3"}]}`)
		if c != 200 {
			t.Fatalf("put: %d %v", c, out)
		}
		var seqs []string
		for _, r := range out["records"].([]any) {
			seqs = append(seqs, r.(map[string]any)["sequence_number"].(string))
		}
		return seqs
	}
	if c, out := call(t, ts, "POST", "/api/v1/streams", `{"name":"re","shards":1}`); c != 201 {
		t.Fatalf("create: %d %v", c, out)
	}
	old := putSeqs()
	if c, out := call(t, ts, "DELETE", "/api/v1/streams/re", ""); c/100 != 2 {
		t.Fatalf("delete: %d %v", c, out)
	}
	if c, out := call(t, ts, "POST", "/api/v1/streams", `{"name":"re","shards":1}`); c != 201 {
		t.Fatalf("create again: %d %v", c, out)
	}
	fresh := putSeqs()
	for _, from := range []string{"after_sequence_number", "at_sequence_number"} {
		c, out := call(t, ts, "GET", "/api/v1/streams/re/records?shard="+shard+"&from="+from+"&sequence_number="+old[0], "")
		code, field := errOf(out)
		msg, _ := out["error"].(map[string]any)["message"].(string)
		if c != 400 || code != "invalid_argument" || field != "sequence_number" || !strings.Contains(msg, "did not come from stream \"re\"") {
			t.Fatalf("%s the old stream's %s: %d %v", from, old[0], c, out)
		}
	}
	c, out := call(t, ts, "GET", "/api/v1/streams/re/records?shard="+shard+"&from=after_sequence_number&sequence_number="+fresh[0], "")
	if c != 200 {
		t.Fatalf("after the new stream's %s: %d %v", fresh[0], c, out)
	}
	recs := out["records"].([]any)
	if len(recs) != 2 || recs[0].(map[string]any)["sequence_number"] != fresh[1] || recs[1].(map[string]any)["data"] != "3" {
		t.Fatalf("after the new stream's %s: %v, want %v", fresh[0], recs, fresh[1:])
	}
}
