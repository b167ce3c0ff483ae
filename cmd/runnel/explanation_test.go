package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestDetectExplanationIsAnObject runs a detect job on the real binary and
// reads its explanation everywhere a user reads rows: the dashboard's Arrow
// stream (a struct column), its JSON rows, a JSON lines file sink and
// `runnel jobs output` — an object each time, never JSON text in a string.
func TestDetectExplanationIsAnObject(t *testing.T) {
	runnelBinary(t) // skipped in -short mode
	data := t.TempDir()
	srv := testbin.Start(t, testbin.Options{Data: data})
	job := filepath.Join(t.TempDir(), "explain.yaml")
	os.WriteFile(job, []byte(`name: explain
source:
  generator: {rate: 200, keys: 3}
  event_time: "r => r.ts"
  watermark: 1s
operators:
  - id: per-page
    window: {key: "r => r.page", tumbling: 1s, aggregate: {views: count}}
  - id: spikes
    detect: {value: views}
sinks:
  - {id: board, input: spikes, dashboard: {}}
  - {id: file, input: spikes, file: {path: spikes.jsonl}}
checkpoint: {every: 1s}
`), 0o644)
	if o, err := srv.CLI("jobs", "submit", job); err != nil {
		t.Fatalf("submit: %v\n%s", err, o)
	}
	isExplanation := func(v any) bool {
		e, ok := v.(map[string]any)
		_, z := e["z"].(float64)
		_, dir := e["direction"].(string)
		return ok && e["field"] == "views" && z && dir
	}

	var rows []map[string]any
	testutil.Within(90*time.Second, func() bool {
		code, body := srv.Do("GET", "/api/v1/jobs/explain/results?sink=board&format=json", "", "")
		return code == 200 && json.Unmarshal(body, &rows) == nil && len(rows) > 0
	})
	if !isExplanation(rows[0]["explanation"]) {
		t.Fatalf("dashboard JSON row explanation %#v, want an object {field, direction, z}", rows[0]["explanation"])
	}

	code, body := srv.Do("GET", "/api/v1/jobs/explain/results?sink=board", "", "")
	if code != 200 {
		t.Fatalf("results: %d %s", code, body)
	}
	r, err := ipc.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	i := r.Schema().FieldIndices("explanation")
	if len(i) != 1 {
		t.Fatalf("no explanation column in %v", r.Schema())
	}
	st, ok := r.Schema().Field(i[0]).Type.(*arrow.StructType)
	if !ok || st.String() != "struct<field: utf8 nullable, direction: utf8 nullable, z: float64 nullable>" {
		t.Fatalf("explanation is %v in Arrow, want struct<field: utf8, direction: utf8, z: float64>", r.Schema().Field(i[0]).Type)
	}

	// The file sink writes at each checkpoint.
	var line map[string]any
	testutil.Within(90*time.Second, func() bool {
		f, err := os.Open(filepath.Join(data, "files", "spikes.jsonl"))
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		return sc.Scan() && json.Unmarshal(sc.Bytes(), &line) == nil
	})
	if !isExplanation(line["explanation"]) {
		t.Fatalf("file sink line explanation %#v, want an object", line["explanation"])
	}

	// The file sink writes its rows as a checkpoint prepares, the
	// dashboard shows them once it commits, a moment later.
	for _, sink := range []string{"board", "file"} {
		var first string
		var err error
		var v map[string]any
		testutil.Within(30*time.Second, func() bool {
			var o string
			o, err = srv.CLI("jobs", "output", "explain", "--sink", sink)
			first, _, _ = strings.Cut(o, "\n")
			return err == nil && first != ""
		})
		if err != nil || json.Unmarshal([]byte(first), &v) != nil || !isExplanation(v["explanation"]) {
			t.Fatalf("jobs output --sink %s: %v: first line %s, want a row whose explanation is an object", sink, err, first)
		}
	}
}
