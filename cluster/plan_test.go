package cluster

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
)

// graph builds a job graph from lines "id <- input,input" (a keyed node
// when id starts with "k", a sink when it starts with "out"); the source
// is "src".
func graph(t *testing.T, lines ...string) *engine.Graph {
	t.Helper()
	g := &engine.Graph{Name: "job", Sources: []engine.SourceNode{{ID: "src", Source: sources.NewMemory(sources.FormatJSON)}}}
	for _, l := range lines {
		id, ins, _ := strings.Cut(l, " <- ")
		inputs := strings.Split(ins, ",")
		switch {
		case strings.HasPrefix(id, "out"):
			g.Sinks = append(g.Sinks, engine.SinkNode{ID: id, Inputs: inputs, Sink: sinks.NewLog(io.Discard, "", nil)})
		default:
			n := engine.Node{ID: id, Inputs: inputs, New: func() (operators.Operator, error) { return nil, nil }}
			if strings.HasPrefix(id, "k") {
				n.Key = engine.PresetKey
			}
			g.Nodes = append(g.Nodes, n)
		}
	}
	return g
}

func statefulK(id string) bool { return strings.HasPrefix(id, "k") }

func TestCutStages(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lines  []string
		stages []Stage
		logs   []string
	}{
		{
			name:   "stateless job: one stage, no internal topics",
			lines:  []string{"parse <- src", "out <- parse"},
			stages: []Stage{{Nodes: []string{"parse"}, Sinks: []string{"out"}}},
		},
		{
			name:  "chain then window: the window reads its repartition topic",
			lines: []string{"parse <- src", "kwin <- parse", "out <- kwin"},
			stages: []Stage{{Nodes: []string{"parse"}},
				{Index: 1, Keyed: "kwin", Input: "job.kwin.repartition", Nodes: []string{"kwin"}, Sinks: []string{"out"}}},
			logs: []string{"job.kwin.changelog"},
		},
		{
			name:  "window straight on the source",
			lines: []string{"kwin <- src", "out <- kwin", "raw <- src"},
			stages: []Stage{{Nodes: []string{"raw"}},
				{Index: 1, Keyed: "kwin", Input: "job.kwin.repartition", Nodes: []string{"kwin"}, Sinks: []string{"out"}}},
			logs: []string{"job.kwin.changelog"},
		},
		{
			name:  "window of window results: two hops, the map between runs after the first window",
			lines: []string{"parse <- src", "k1 <- parse", "reshape <- k1", "k2 <- reshape", "out1 <- k1", "out2 <- k2"},
			stages: []Stage{{Nodes: []string{"parse"}},
				{Index: 1, Keyed: "k1", Input: "job.k1.repartition", Nodes: []string{"k1", "reshape"}, Sinks: []string{"out1"}},
				{Index: 2, Keyed: "k2", Input: "job.k2.repartition", Nodes: []string{"k2"}, Sinks: []string{"out2"}}},
			logs: []string{"job.k1.changelog", "job.k2.changelog"},
		},
		{
			name:  "two windows over one chain: two stages fed by stage 0",
			lines: []string{"parse <- src", "kpage <- parse", "kuser <- parse", "out1 <- kpage", "out2 <- kuser", "outraw <- parse"},
			stages: []Stage{{Nodes: []string{"parse"}, Sinks: []string{"outraw"}},
				{Index: 1, Keyed: "kpage", Input: "job.kpage.repartition", Nodes: []string{"kpage"}, Sinks: []string{"out1"}},
				{Index: 2, Keyed: "kuser", Input: "job.kuser.repartition", Nodes: []string{"kuser"}, Sinks: []string{"out2"}}},
			logs: []string{"job.kpage.changelog", "job.kuser.changelog"},
		},
		{
			name:  "side outputs run in the stage of their operator; a keyed reader of one gets a stage",
			lines: []string{"parse <- src", "kwin <- parse", "fix <- kwin:late", "kl <- kwin:late", "out <- kwin", "outlate <- fix", "outdl <- parse:dead_letter:parse", "outk <- kl"},
			stages: []Stage{{Nodes: []string{"parse"}, Sinks: []string{"outdl"}},
				{Index: 1, Keyed: "kwin", Input: "job.kwin.repartition", Nodes: []string{"kwin", "fix"}, Sinks: []string{"out", "outlate"}},
				{Index: 2, Keyed: "kl", Input: "job.kl.repartition", Nodes: []string{"kl"}, Sinks: []string{"outk"}}},
			logs: []string{"job.kwin.changelog", "job.kl.changelog"},
		},
		{
			name:  "a keyed union of two stages",
			lines: []string{"parse <- src", "k1 <- parse", "kall <- k1,parse", "out <- kall"},
			stages: []Stage{{Nodes: []string{"parse"}},
				{Index: 1, Keyed: "k1", Input: "job.k1.repartition", Nodes: []string{"k1"}},
				{Index: 2, Keyed: "kall", Input: "job.kall.repartition", Nodes: []string{"kall"}, Sinks: []string{"out"}}},
			logs: []string{"job.k1.changelog", "job.kall.changelog"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Cut(graph(t, tc.lines...), statefulK)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Stages, tc.stages) {
				t.Errorf("stages:\n got %+v\nwant %+v", p.Stages, tc.stages)
			}
			_, logs := p.Topics()
			if !reflect.DeepEqual(logs, tc.logs) {
				t.Errorf("changelogs: got %v, want %v", logs, tc.logs)
			}
		})
	}
}

func TestCutRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		lines      []string
	}{
		{"unkeyed union of stages", "unions inputs", []string{"parse <- src", "k1 <- parse", "both <- k1,parse", "out <- both"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Cut(graph(t, tc.lines...), statefulK)
			if !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrPlan saying %q", err, tc.want)
			}
		})
	}
}
