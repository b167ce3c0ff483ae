// Package layering holds the test that keeps Runnel's package dependencies
// pointing one way: streams, state ← operators, sources, sinks ← runtime ←
// jobs ← web ← cmd.
package layering

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/runnel-dev/runnel/"

// rank gives each top-level folder its layer; a package may import only
// packages of a lower or equal layer (equal only within the same folder).
var rank = map[string]float64{
	"internal": 0,
	"streams":  1, "state": 1,
	"operators": 2, "sources": 2, "sinks": 2,
	"runtime": 3,
	"jobs":    4,
	"web":     5,
	"client":  5, // the producer and agent: a client of the Kinesis API, used by cmd
	"cmd":     7,
	// The benchmark harness of `runnel bench ingest --api kinesis`: part of
	// the binary, not of the server, so it sits with cmd.
	"internal/kinesisbench": 6,
	// The Kinesis producer (batching, KPL aggregation, per-shard rates):
	// it needs only streams, and the kinesis sink reuses it (between the two).
	"client/producer": 1.5,
	// `runnel bench ingest`: the stream log measured in-process.
	"internal/bench": 6,
	// Tests of real AWS clients (CLI, boto3, the JS SDK) against the binary.
	"interop": 8,
}

// top is the folder whose layer pkg takes: its top-level folder, or for a
// package deeper down with a layer of its own, that package.
func top(pkg string) string {
	rest := strings.TrimPrefix(pkg, module)
	for name := range rank {
		if strings.Contains(name, "/") && (rest == name || strings.HasPrefix(rest, name+"/")) {
			return name
		}
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[:i]
	}
	return rest
}

func TestDependenciesPointOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		from := top(p.ImportPath)
		rf, ok := rank[from]
		if !ok {
			t.Errorf("%s: top-level folder %q has no layer; add it to rank", p.ImportPath, from)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			to := top(imp)
			rt, ok := rank[to]
			if !ok {
				t.Errorf("%s imports %s: folder %q has no layer", p.ImportPath, imp, to)
				continue
			}
			if rt > rf || (rt == rf && to != from) {
				t.Errorf("%s (layer %s) imports %s (layer %s): dependencies must point down", p.ImportPath, from, imp, to)
			}
		}
	}
}
