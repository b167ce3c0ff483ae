// Package layering holds the test that keeps Runnel's package dependencies
// pointing one way: streams, state ← operators, sources, sinks ← engine ←
// jobs ← web ← cmd, and within operators, the shared types ← the kinds
// built on them. Tests' imports obey the same rule, except that a test may
// use a package of its own layer.
package layering

import (
	"encoding/json"
	"os/exec"
	"slices"
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
	// Lambda-style functions: a batching source and an operator, over
	// operators/js and sources.
	"functions": 2.5,
	"engine":    3,
	"jobs":      4,
	// Running a job on several workers over Kafka (`runnel worker`): it
	// builds jobs and drives their operators, and only cmd uses it.
	"cluster": 4.5,
	"web":     5,
	"client":  5, // the producer and agent: a client of the Kinesis API, used by cmd
	"cmd":     7,
	// The benchmark harness of `runnel bench ingest --api kinesis`: part of
	// the binary, not of the server, so it sits with cmd.
	"internal/kinesisbench": 6,
	// The Kinesis producer (batching, KPL aggregation, per-shard rates):
	// it needs only streams, and the kinesis sink reuses it (between the two).
	"client/producer": 1.5,
	// The client tests' server harness: it runs the binary as a process and
	// imports only internal test helpers, so the producer's tests may use it.
	"client/internal/testserver": 1.5,
	// Consumer groups' lease protocol and the server's store of them: it
	// needs streams; web serves it and client/consumer runs the same
	// protocol over PostgreSQL.
	"consumergroups": 1.5,
	// The consumer library (leases on the server or in PostgreSQL): it needs
	// only streams, the KPL format and consumergroups' protocol, and
	// cluster's workers read Kinesis through its fenced leases.
	"client/consumer": 2,
	// `runnel bench ingest`: the stream log measured in-process.
	"internal/bench": 6,
	// Tests of real AWS clients (CLI, boto3, the JS SDK) against the binary.
	"interop": 8,
}

// operatorsRank layers the sub-packages of operators: a package may import
// only sub-packages of a strictly lower rank, so two kinds of the same rank
// stay independent of each other.
var operatorsRank = map[string]int{
	"operators":           0, // Record, Emitter, the contracts every kind implements
	"operators/js/native": 0, // the JS bridge's evaluator of simple functions in Go
	"operators/js":        1,
	"operators/anomaly":   1,
	"operators/aggregate": 2, // aggregate functions, compiled with js
	"operators/window":    3,
	"operators/detect":    3,
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
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		checkOperators(t, p.ImportPath, p.Imports, "imports")
		checkOperators(t, p.ImportPath, p.TestImports, "test imports")
		checkOperators(t, p.ImportPath, p.XTestImports, "test imports")
		from := top(p.ImportPath)
		rf, ok := rank[from]
		if !ok {
			t.Errorf("%s: top-level folder %q has no layer; add it to rank", p.ImportPath, from)
			continue
		}
		check := func(imports []string, what string, sameLayer bool) {
			for _, imp := range imports {
				if !strings.HasPrefix(imp, module) || imp == p.ImportPath {
					continue
				}
				to := top(imp)
				rt, ok := rank[to]
				if !ok {
					t.Errorf("%s %s %s: folder %q has no layer", p.ImportPath, what, imp, to)
					continue
				}
				if rt > rf || (rt == rf && to != from && !sameLayer) {
					t.Errorf("%s (layer %s) %s %s (layer %s): dependencies must point down", p.ImportPath, from, what, imp, to)
				}
			}
		}
		check(p.Imports, "imports", false)
		// A test may also use a package of its own layer as input (a
		// detector's test reads the generator source), never a higher one.
		check(slices.Concat(p.TestImports, p.XTestImports), "test imports", true)
	}
}

// checkOperators applies operatorsRank to one package's imports (what
// names the kind of imports for the message).
func checkOperators(t *testing.T, pkg string, imports []string, what string) {
	t.Helper()
	from := strings.TrimPrefix(pkg, module)
	if top(pkg) != "operators" {
		return
	}
	rf, ok := operatorsRank[from]
	if !ok {
		t.Errorf("%s: sub-package of operators has no rank; add it to operatorsRank", pkg)
		return
	}
	for _, imp := range imports {
		to := strings.TrimPrefix(imp, module)
		if to == imp || top(imp) != "operators" || to == from {
			continue
		}
		rt, ok := operatorsRank[to]
		if !ok {
			t.Errorf("%s %s %s: sub-package of operators has no rank", pkg, what, imp)
			continue
		}
		if rt >= rf {
			t.Errorf("%s (rank %d in operators) %s %s (rank %d): a kind may import only the operators packages below it", pkg, rf, what, imp, rt)
		}
	}
}
