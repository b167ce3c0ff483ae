package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/streams"
)

const previewJob = `name: pv
source:
  stream: clicks
  event_time: "r => r.ts"
operators:
  - id: parse
    map: "r => ({page: r.page, ms: r.ms.value})"
  - id: slow
    filter: "r => r.ms > 10"
  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 1m
      aggregate: {views: count}
sinks:
  - {id: out, stream: {name: results}}
`

// putClicks appends n click records to stream clicks; every tenth lacks
// the field the job's map reads.
func putClicks(t testing.TB, st *streams.Store, n int) {
	t.Helper()
	if _, err := st.CreateStream("clicks", 2, streams.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var recs []streams.PutRecord
	for i := range n {
		v := map[string]any{"page": fmt.Sprintf("/p/%d", i%3), "ts": 1767225600000 + int64(i)*1000, "ms": map[string]any{"value": i % 20}}
		if i%10 == 9 {
			delete(v, "ms")
		}
		b, _ := json.Marshal(v)
		recs = append(recs, streams.PutRecord{PartitionKey: fmt.Sprint(i), Data: b})
	}
	for len(recs) > 0 {
		k := min(len(recs), 500)
		if _, err := st.Put(context.Background(), "clicks", recs[:k]); err != nil {
			t.Fatal(err)
		}
		recs = recs[k:]
	}
}

func previewOp(t *testing.T, res *PreviewResult, id string) PreviewOperator {
	t.Helper()
	for _, op := range res.Operators {
		if op.ID == id {
			return op
		}
	}
	t.Fatalf("preview has no operator %q: %+v", id, res)
	return PreviewOperator{}
}

// TestPreviewShowsEachOperatorAndWritesNothing: a preview over the last N
// records of a stream shows every operator's rows and errors, flushes the
// window, and neither creates the sink's stream nor keeps anything.
func TestPreviewShowsEachOperatorAndWritesNothing(t *testing.T) {
	st, dir, log := managerStore(t)
	putClicks(t, st, 300)
	m := startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log})
	res, err := m.Preview(context.Background(), []byte(previewJob), 100)
	if err != nil {
		t.Fatal(err)
	}
	if res.RecordsRead != 100 || res.TimedOut || res.Error != "" {
		t.Fatalf("read %d records (want 100), timed out %v, error %q", res.RecordsRead, res.TimedOut, res.Error)
	}
	kinds := []string{}
	for _, op := range res.Operators {
		kinds = append(kinds, op.ID+":"+op.Kind)
	}
	if got, want := strings.Join(kinds, " "), "source:source parse:map slow:filter per-page:window out:sink"; got != want {
		t.Fatalf("operators %s, want %s", got, want)
	}
	// Of the last 100 records, those that lack ms fail the map.
	source := previewOp(t, res, "source")
	lacking := 0
	for _, r := range source.Rows {
		if b, _ := json.Marshal(r); !strings.Contains(string(b), `"ms"`) {
			lacking++
		}
	}
	parse := previewOp(t, res, "parse")
	if lacking == 0 || parse.RowCount != int64(100-lacking) || parse.ErrorCount != int64(lacking) || len(parse.Errors) != lacking {
		t.Fatalf("parse: %d rows, %d errors (%d kept), want %d and %d", parse.RowCount, parse.ErrorCount, len(parse.Errors), 100-lacking, lacking)
	}
	e := parse.Errors[0]
	if e.Origin == nil || e.Origin.Stream != "clicks" || !strings.HasPrefix(e.Origin.Shard, "shardId-") || e.Origin.Sequence == "" {
		t.Fatalf("error origin %+v", e.Origin)
	}
	if strings.Contains(e.Message, "<eval>") || strings.Contains(e.Message, `operator "parse"`) || !strings.Contains(e.Message, "TypeError") {
		t.Fatalf("error message %q: want the JS error without stack positions or a repeated prefix", e.Message)
	}
	if rec, _ := json.Marshal(e.Record); !strings.Contains(string(rec), `"page"`) {
		t.Fatalf("error record %s", rec)
	}
	slow := previewOp(t, res, "slow")
	window := previewOp(t, res, "per-page")
	out := previewOp(t, res, "out")
	if slow.RowCount == 0 || slow.RowCount >= parse.RowCount {
		t.Fatalf("filter kept %d of %d rows", slow.RowCount, parse.RowCount)
	}
	if !window.Flushed || window.RowCount == 0 || out.RowCount != window.RowCount {
		t.Fatalf("window: flushed %v, %d rows; sink got %d", window.Flushed, window.RowCount, out.RowCount)
	}
	var views float64
	for _, r := range window.Rows {
		var row map[string]any
		b, _ := json.Marshal(r)
		json.Unmarshal(b, &row)
		views += row["views"].(float64)
	}
	if int64(views) != slow.RowCount {
		t.Fatalf("window counted %v views of %d filtered rows", views, slow.RowCount)
	}
	if _, err := st.DescribeStream("results"); err == nil {
		t.Fatal("the preview created the sink's stream")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "jobs")); len(ents) != 0 {
		t.Fatalf("the preview left %d entries in the jobs directory", len(ents))
	}
	if len(m.List()) != 0 {
		t.Fatal("the preview is listed as a job")
	}
}

// TestPreviewGeneratorTakesFirstN: a source other than a stream gives its
// first N records, without waiting for the generator's rate.
func TestPreviewGeneratorTakesFirstN(t *testing.T) {
	src := "name: g\nsource:\n  generator: {rate: 10, keys: 3}\noperators:\n  - id: m\n    map: \"r => ({page: r.page})\"\nsinks:\n  - {id: l, log: {}}\n"
	spec, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunPreview(context.Background(), spec, Env{}, 50)
	if err != nil {
		t.Fatal(err)
	}
	if res.RecordsRead != 50 || res.TimedOut || previewOp(t, res, "l").RowCount != 50 || len(previewOp(t, res, "l").Rows) != 50 {
		t.Fatalf("preview of a 10/s generator: %+v", res)
	}
}

func TestCleanMessage(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`job "j" operator "parse" record source/shardId-000000000000@49: TypeError: Cannot read property 'value' of undefined at parse.map (<eval>:1:30(5))`,
			`TypeError: Cannot read property 'value' of undefined`},
		{`TypeError: boom (at <eval>:56:16(29))`, `TypeError: boom`},
		{`operator parse: job "fl" operator "parse" record source/shardId-000000000001@4901: TypeError: x is undefined (at parse.map:1:17(4))`, `TypeError: x is undefined`},
		{`field ts: event time is missing`, `field ts: event time is missing`},
		{`record source/shardId-000000000000@49: field "ts": event time is missing (null)`, `field "ts": event time is missing (null)`},
		{`read record source/in.jsonl at line 3: sources: invalid JSON`, `read record source/in.jsonl at line 3: sources: invalid JSON`},
	} {
		if got := CleanMessage(c.in); got != c.want {
			t.Errorf("CleanMessage(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
