package jobs

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/streams"
)

// TestSkippedRecordsInErrorHistory: a record an on_error: skip operator
// drops is in the job's error history, marked policy skip, with its
// operator, origin, clean message and the record, and is counted in the
// operator's skipped counter (runnel_operator_skipped_total); a dead
// letter's entry is marked dead_letter.
func TestSkippedRecordsInErrorHistory(t *testing.T) {
	st, dir, log := managerStore(t)
	m := startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log})
	src := `name: sk
source: {stream: in, shards: 1}
operators:
  - id: parse
    map: "r => ({page: r.page.toUpperCase()})"
    on_error: skip
  - id: check
    map: "r => { if (r.page === '/B') throw new Error('no b'); return r }"
    on_error: {dead_letter: bad}
sinks:
  - {id: out, input: check, stream: {name: out}}
checkpoint: {every: 200ms}
`
	if _, err := m.Submit([]byte(src)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(context.Background(), "in", []streams.PutRecord{
		{PartitionKey: "a", Data: []byte(`{"page":"/a"}`)},
		{PartitionKey: "a", Data: []byte(`{"nopage":1}`)},
		{PartitionKey: "a", Data: []byte(`{"nopage":2}`)},
		{PartitionKey: "a", Data: []byte(`{"page":"/b"}`)},
	}); err != nil {
		t.Fatal(err)
	}
	p := waitErrors(t, m, "sk", 3)
	policies := map[string]int{}
	for _, e := range p.Errors {
		policies[e.Policy]++
		if e.Policy != "skip" {
			continue
		}
		if e.Operator != "parse" || e.Origin == nil || e.Origin.Stream != "in" || e.Origin.Sequence == "" || e.DeadLetter != nil ||
			!strings.HasPrefix(e.Message, "TypeError") || strings.Contains(e.Message, "<eval>") ||
			!strings.Contains(asJSON(e.Record), `"nopage"`) {
			t.Fatalf("skip entry %+v origin %+v", e, e.Origin)
		}
	}
	if policies["skip"] != 2 || policies["dead_letter"] != 1 {
		t.Fatalf("policies %v, want 2 skip and 1 dead_letter", policies)
	}
	in, err := m.Get("sk")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range in.Operators {
		if o.ID == "parse" && o.Skipped != 2 {
			t.Fatalf("operator parse counts %d skipped, want 2", o.Skipped)
		}
	}
}

func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
