package jobs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// exampleRun is the outcome of running one example job to completion.
type exampleRun struct {
	rows   map[string][]map[string]any // log sink id → rows
	status engine.Status
	outDir string
}

// runExample parses an example, points its files at the repository's data
// and a temporary output directory, and runs it as `runnel run` does.
func runExample(t *testing.T, name string) exampleRun {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("../examples", name))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range spec.Source.File {
		spec.Source.File[i] = filepath.Join("..", p)
	}
	run := exampleRun{rows: map[string][]map[string]any{}, outDir: t.TempDir()}
	for _, s := range spec.Sinks {
		if s.File != nil {
			s.File.Path = filepath.Join(run.outDir, filepath.Base(s.File.Path))
		}
	}
	var log testutil.Buffer
	built, err := Build(spec, Env{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run.status, err = engine.Run(ctx, built.Graph, engine.Options{})
	if err != nil || run.status.State != engine.Finished {
		t.Fatalf("%s: %v, state %s (%s)", name, err, run.status.State, run.status.Reason)
	}
	sc := bufio.NewScanner(strings.NewReader(log.String()))
	for sc.Scan() {
		id, row, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			t.Fatalf("log line %q", sc.Text())
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(row), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		run.rows[id] = append(run.rows[id], m)
	}
	return run
}

func (r exampleRun) op(id string) engine.OperatorStatus {
	for _, o := range r.status.Operators {
		if o.ID == id {
			return o
		}
	}
	return engine.OperatorStatus{}
}

// finalRows is final over the rows the sink logged, and fails the test
// when there are none.
func (r exampleRun) finalRows(t *testing.T, sink string) []map[string]any {
	t.Helper()
	rows := final(r.rows[sink])
	if len(rows) == 0 {
		t.Fatalf("no rows from sink %s", sink)
	}
	return rows
}

// final keeps the last row per window and key: a re-fired window's later
// row supersedes the earlier one.
func final(rows []map[string]any) []map[string]any {
	last := map[string]int{}
	var order []string
	for i, r := range rows {
		k := fmt.Sprint(r["window_start"], "|", r["window_end"], "|", r["key"])
		if _, ok := last[k]; !ok {
			order = append(order, k)
		}
		last[k] = i
	}
	out := make([]map[string]any, len(order))
	for i, k := range order {
		out[i] = rows[last[k]]
	}
	return out
}

func sumOf(rows []map[string]any, col string) int64 {
	var n int64
	for _, r := range rows {
		v, _ := r[col].(float64)
		n += int64(v)
	}
	return n
}

// The example jobs run to completion through the real runtime (Build and
// engine.Run, as `runnel run` does) and compute what their comments say.
func TestExamplesRun(t *testing.T) {
	t.Run("page-views", func(t *testing.T) {
		r := runExample(t, "page-views.yaml")
		rows := r.finalRows(t, "out")
		for _, row := range rows {
			if row["users"].(float64) < 1 || row["users"].(float64) > row["views"].(float64) {
				t.Errorf("row %v: users must be between 1 and views", row)
			}
			if strings.HasPrefix(fmt.Sprint(row["key"]), "bot-") {
				t.Errorf("row %v counts a bot", row)
			}
		}
		// Every human click is counted once, or counted as late.
		w := r.op("per-page")
		if got := sumOf(rows, "views") + w.Late; got != w.In {
			t.Errorf("views %d + late %d = %d, want the %d records the window got", sumOf(rows, "views"), w.Late, got, w.In)
		}
	})
	t.Run("p95-latency", func(t *testing.T) {
		r := runExample(t, "p95-latency.yaml")
		rows := final(r.rows["latency-log"])
		if len(rows) == 0 || len(final(r.rows["errors-log"])) == 0 {
			t.Fatalf("%d latency rows, %d error rows", len(rows), len(r.rows["errors-log"]))
		}
		for _, row := range rows {
			p50, p95, p99 := row["p50_ms"].(float64), row["p95_ms"].(float64), row["p99_ms"].(float64)
			if !(p50 <= p95 && p95 <= p99) {
				t.Errorf("row %v: want p50 ≤ p95 ≤ p99", row)
			}
		}
		if fi, err := os.Stat(filepath.Join(r.outDir, "p95-latency.parquet")); err != nil || fi.Size() == 0 {
			t.Errorf("parquet output: %v", err)
		}
	})
	t.Run("sessions", func(t *testing.T) {
		r := runExample(t, "sessions.yaml")
		rows := final(r.rows["out"])
		for _, row := range rows {
			start, end := row["window_start"].(float64), row["window_end"].(float64)
			first, last := row["first_click"].(float64), row["last_click"].(float64)
			if first != start || end-last != 30000 {
				t.Errorf("session %v: want window_start = first_click and window_end = last_click + 30s", row)
			}
		}
		late, err := os.ReadFile(filepath.Join(r.outDir, "sessions-late.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(late, []byte("\n")); n != 3 || r.op("sessions").Late != 3 {
			t.Errorf("%d late clicks written, %d counted; the sample data ends with 3", n, r.op("sessions").Late)
		}
	})
	t.Run("custom-aggregate", func(t *testing.T) {
		r := runExample(t, "custom-aggregate.yaml")
		rows := r.finalRows(t, "out")
		for _, row := range rows {
			if p, ok := row["top_page"].(string); !ok || !strings.HasPrefix(p, "/") {
				t.Errorf("row %v: top_page should be a page", row)
			}
			if ms, ok := row["mean_ms"].(float64); !ok || ms <= 0 {
				t.Errorf("row %v: mean_ms should be a positive number", row)
			}
		}
	})
}
