package engine

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/js"
	"github.com/runnel-dev/runnel/operators/window"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
)

// The DESIGN.md job shape with real operators: JS event time, a fused JS
// map → filter → key chain with on_error skip, a tumbling window with a
// late side output, a dashboard with the window's columns.
func TestJSJobWithWindowLateOutputAndDashboard(t *testing.T) {
	var lines [][]byte
	type k struct {
		start int64
		page  string
	}
	want := map[k][2]float64{}
	for i := 0; i < 3000; i++ {
		page, user, ms, ts := fmt.Sprintf("/p/%d", i%5), fmt.Sprintf("u-%d", i%11), float64(i%7), int64(i*2)
		if i%11 == 3 {
			user = "bot-3"
		}
		lines = append(lines, fmt.Appendf(nil, `{"page":%q,"user":%q,"latency_ms":%v,"ts":%d}`, page, user, ms, ts))
		if user != "bot-3" {
			w := want[k{ts / 1000 * 1000, page}]
			want[k{ts / 1000 * 1000, page}] = [2]float64{w[0] + 1, w[1] + ms}
		}
	}
	lines = append(lines,
		[]byte(`{"page":"/p/0","user":null,"latency_ms":1,"ts":5990}`), // throws in the filter: skipped
		[]byte(`{"page":"/p/0","user":"u-1","latency_ms":1,"ts":100}`), // behind the watermark: late
	)
	src := sources.NewMemory(sources.FormatJSON, sources.MemoryShard{ID: "only", Data: lines})

	et, err := js.CompileChain(js.ChainSpec{Job: "t", Stages: []js.Stage{{Operator: "source", Kind: js.EventTime, Src: `r => r.ts`}}})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := js.CompileChain(js.ChainSpec{Job: "t", Functions: `function isBot(u) { return u.startsWith("bot-") }`, Stages: []js.Stage{
		{Operator: "parse", Kind: js.Map, Src: `r => ({page: r.page, user: r.user, ms: r.latency_ms})`},
		{Operator: "humans", Kind: js.Filter, Src: `r => !isBot(r.user)`, OnError: js.OnError{Mode: js.Skip}},
		{Operator: "per-page", Kind: js.Key, Src: `r => r.page`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	win, err := window.Compile(window.Config{Job: "t", ID: "per-page", Kind: window.Tumbling, Size: time.Second,
		Aggregates: []aggregate.Spec{{Name: "views", Func: aggregate.Count}, {Name: "total_ms", Func: aggregate.Sum, Field: "ms"}}})
	if err != nil {
		t.Fatal(err)
	}
	board, err := sinks.NewDashboard(sinks.DashboardConfig{Columns: sinks.WindowColumns(sinks.Column{Name: "views", Type: sinks.Int64}, sinks.Column{Name: "total_ms", Type: sinks.Float64}), MaxRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	late := &collect{}
	g := &Graph{
		Name:    "t",
		Sources: []SourceNode{{ID: "clicks", Source: src, EventTime: ChainEventTime(et)}},
		Nodes: []Node{
			{ID: "chain", Inputs: []string{"clicks"}, New: ChainNode(chain)},
			{ID: "per-page", Inputs: []string{"chain"}, New: func() (operators.Operator, error) { return win.New() }, Key: PresetKey},
		},
		Sinks: []SinkNode{
			{ID: "board", Inputs: []string{"per-page"}, Sink: board},
			{ID: "late", Inputs: []string{"per-page:" + operators.LateOutput}, Sink: late},
		},
	}
	st, err := Run(context.Background(), g, Options{Parallelism: 1, BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := map[k][2]float64{}
	for _, r := range board.JSONRows() {
		kk := k{r["window_start"].(int64), r["key"].(string)}
		if _, dup := got[kk]; dup {
			t.Fatalf("two results for %v", kk)
		}
		if r["window_end"].(int64) != kk.start+1000 {
			t.Fatalf("row %v", r)
		}
		got[kk] = [2]float64{float64(r["views"].(int64)), r["total_ms"].(float64)}
	}
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		t.Fatalf("dashboard rows differ:\n got %v\nwant %v", sorted(got), sorted(want))
	}
	if rows := late.snapshot(); len(rows) != 1 || rows[0].Value.(map[string]any)["user"] != "u-1" || rows[0].Key != "/p/0" {
		t.Fatalf("late output %v, want the (mapped) ts=100 record", rows)
	}
	ops := opsByID(st)
	if ops["per-page"].Late != 1 || ops["chain"].Skipped != 1 {
		t.Fatalf("counters %+v", st.Operators)
	}
	var humans StageStatus
	for _, s := range ops["chain"].Stages {
		if s.Operator == "humans" {
			humans = s
		}
	}
	if humans.Skipped != 1 {
		t.Fatalf("stage counters %+v, want humans skipped 1", ops["chain"].Stages)
	}
}

func sorted[K comparable, V any](m map[K]V) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprint(k, v))
	}
	sort.Strings(out)
	return out
}
