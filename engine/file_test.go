package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
)

// `runnel run` in miniature: bounded file sources (JSON lines and CSV) run
// to completion, writing a log sink and a JSON-lines file sink.
func TestRunFileSourcesToCompletion(t *testing.T) {
	dir := t.TempDir()
	jl := filepath.Join(dir, "a.jsonl")
	csv := filepath.Join(dir, "b.csv")
	os.WriteFile(jl, []byte("{\"k\":\"x\",\"v\":1,\"ts\":\"1970-01-01T00:00:00.500Z\"}\n{\"k\":\"y\",\"v\":2,\"ts\":1500}\n"), 0o644)
	os.WriteFile(csv, []byte("k,v,ts\nx,3,700\nx,4,1200\n"), 0o644)
	src, err := sources.NewFile(sources.FileConfig{Paths: []string{jl, csv}})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	out := filepath.Join(dir, "out.jsonl")
	fsink, err := sinks.NewFile(sinks.FileConfig{Path: out, Columns: sinks.WindowColumns(sinks.Column{Name: "count", Type: sinks.Int64}, sinks.Column{Name: "sum", Type: sinks.Float64})})
	if err != nil {
		t.Fatal(err)
	}
	g := &Graph{
		Sources: []SourceNode{{ID: "in", Source: src, EventTime: FieldEventTime("ts")}},
		Nodes:   []Node{{ID: "w", Inputs: []string{"in"}, New: newTumbling(1000, "v"), Key: FieldKey("k")}},
		Sinks: []SinkNode{
			{ID: "print", Inputs: []string{"w"}, Sink: sinks.NewLog(&log, "", nil)},
			{ID: "file", Inputs: []string{"w"}, Sink: fsink},
		},
	}
	st, err := Run(context.Background(), g, Options{})
	if err != nil || st.State != Finished {
		t.Fatalf("state %s err %v", st.State, err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	want := []string{
		`{"window_start":0,"window_end":1000,"key":"x","count":2,"sum":4}`,
		`{"window_start":1000,"window_end":2000,"key":"x","count":1,"sum":4}`,
		`{"window_start":1000,"window_end":2000,"key":"y","count":1,"sum":2}`,
	}
	if strings.Join(sortedLines(lines), "\n") != strings.Join(want, "\n") {
		t.Fatalf("log:\n%s", log.String())
	}
	b, _ := os.ReadFile(out)
	if got := sortedLines(strings.Split(strings.TrimSpace(string(b)), "\n")); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("file:\n%s", b)
	}
}

func sortedLines(l []string) []string {
	out := append([]string(nil), l...)
	sort.Strings(out)
	return out
}

// A map that writes into its input must not change what another branch
// of a fan-out sees.
func TestFanOutBranchesDoNotShareValues(t *testing.T) {
	src := sources.NewMemory(sources.FormatJSON, sources.MemoryShard{ID: "s", Data: [][]byte{[]byte(`{"n":1,"tags":["a"]}`)}})
	mutate := newMap(func(r operators.Record) (operators.Record, bool) {
		m := r.Value.(map[string]any)
		m["n"] = 99.0
		m["tags"].([]any)[0] = "z"
		return r, true
	})
	a, b := &collect{}, &collect{}
	g := &Graph{
		Sources: []SourceNode{{ID: "src", Source: src}},
		Nodes: []Node{
			{ID: "m1", Inputs: []string{"src"}, New: mutate},
			{ID: "m2", Inputs: []string{"src"}, New: passThrough()},
		},
		Sinks: []SinkNode{{ID: "a", Inputs: []string{"m1"}, Sink: a}, {ID: "b", Inputs: []string{"m2"}, Sink: b}},
	}
	if _, err := Run(context.Background(), g, Options{}); err != nil {
		t.Fatal(err)
	}
	if v := b.snapshot()[0].Value.(map[string]any); v["n"] != 1.0 || v["tags"].([]any)[0] != "a" {
		t.Fatalf("branch b saw branch a's writes: %v", v)
	}
	if v := a.snapshot()[0].Value.(map[string]any); v["n"] != 99.0 {
		t.Fatalf("branch a: %v", v)
	}
}
