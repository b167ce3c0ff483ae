package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sources"
)

// Same input, many configurations, one answer: shard count, parallelism,
// batch size and queue depth must not change a job's results.
func TestRandomConfigurationsGiveTheSameResults(t *testing.T) {
	runs := 40
	if testing.Short() {
		runs = 8
	}
	seed := testutil.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := 0; i < runs; i++ {
		shards := 1 + rng.IntN(6)
		opts := Options{Parallelism: 1 + rng.IntN(4), BatchSize: 1 + rng.IntN(600), QueueDepth: 1 + rng.IntN(8)}
		data := testShards(shards, 200+rng.IntN(800), 1+rng.IntN(30), 8000, seed+uint64(i))
		t.Run(fmt.Sprintf("shards=%d,%+v", shards, opts), func(t *testing.T) {
			sink := &collect{}
			st, err := Run(context.Background(), windowGraph(sources.NewMemory(sources.FormatJSON, data...), sink, 500), opts)
			if err != nil || st.State != Finished {
				t.Fatalf("state %s: %v", st.State, err)
			}
			if got, want := windowRows(sink.snapshot()), expectWindows(data, 500, keepEven); !reflect.DeepEqual(got, want) {
				t.Fatalf("got %d rows, want %d:\n%s", len(got), len(want), testutil.Diff(want, got))
			}
		})
	}
}

func TestGraphBounded(t *testing.T) {
	gen, _ := sources.NewGenerator(sources.GeneratorConfig{})
	genN, _ := sources.NewGenerator(sources.GeneratorConfig{Count: 10})
	mem := sources.NewMemory(sources.FormatJSON)
	for _, c := range []struct {
		srcs []sources.Source
		want bool
	}{{[]sources.Source{mem, genN}, true}, {[]sources.Source{mem, gen}, false}, {nil, false}} {
		g := &Graph{}
		for i, s := range c.srcs {
			g.Sources = append(g.Sources, SourceNode{ID: fmt.Sprint(i), Source: s})
		}
		if g.Bounded() != c.want {
			t.Errorf("%d sources: Bounded() = %v, want %v", len(c.srcs), !c.want, c.want)
		}
	}
}

// Positions a job reports resume a new job where it left off: the two
// runs together see every record once (what checkpoints will rely on).
func TestPositionsResumeAfterStop(t *testing.T) {
	data := testShards(3, 3000, 5, 1000, 5)
	first := &collect{}
	g := func(sink *collect) *Graph {
		return &Graph{
			Sources: []SourceNode{{ID: "src", Source: sources.NewMemory(sources.FormatJSON, data...)}},
			Nodes:   []Node{{ID: "k", Inputs: []string{"src"}, New: passThrough(), Key: FieldKey("k")}},
			Sinks:   []SinkNode{{ID: "out", Inputs: []string{"k"}, Sink: sink}},
		}
	}
	j, err := Start(context.Background(), g(first), Options{BatchSize: 7, QueueDepth: 1})
	if err != nil {
		t.Fatal(err)
	}
	j.Stop(context.Background())
	pos := j.Positions()
	second := &collect{}
	if _, err := Run(context.Background(), g(second), Options{Positions: pos}); err != nil {
		t.Fatal(err)
	}
	if n := len(first.snapshot()) + len(second.snapshot()); n != 9000 {
		t.Fatalf("first run %d + resumed run %d records = %d, want 9000 (positions %v)", len(first.snapshot()), len(second.snapshot()), n, pos)
	}
}

// closeCounter counts Close calls.
type closeCounter struct {
	mapOp
	n *atomic.Int64
}

func (c *closeCounter) Close() error { c.n.Add(1); return nil }

func TestEveryOperatorInstanceClosedOnce(t *testing.T) {
	var created, closed atomic.Int64
	counted := func() (operators.Operator, error) {
		created.Add(1)
		return &closeCounter{mapOp: mapOp{f: func(r operators.Record) (operators.Record, bool) { return r, true }}, n: &closed}, nil
	}
	g := &Graph{
		Sources: []SourceNode{{ID: "src", Source: sources.NewMemory(sources.FormatJSON, testShards(3, 100, 4, 100, 1)...)}},
		Nodes: []Node{
			{ID: "m", Inputs: []string{"src"}, New: counted},
			{ID: "k", Inputs: []string{"m"}, New: counted, Key: FieldKey("k")},
		},
		Sinks: []SinkNode{{ID: "out", Inputs: []string{"k"}, Sink: &collect{}}},
	}
	if _, err := Run(context.Background(), g, Options{Parallelism: 2}); err != nil {
		t.Fatal(err)
	}
	if created.Load() != 5 || closed.Load() != 5 {
		t.Fatalf("%d instances created (want 3 shard + 2 keyed), %d Close calls", created.Load(), closed.Load())
	}
}
