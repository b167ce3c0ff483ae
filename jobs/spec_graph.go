package jobs

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"
)

// Graph is a job's resolved dataflow: the source (SourceID), operators and
// sinks as nodes named by id, each with the nodes it reads.
type Graph struct {
	// Order lists SourceID, then every operator in topological order
	// (ties keep file order), then every sink in file order.
	Order []string
	// Inputs maps an operator or sink id to the ids it reads: an operator
	// with several inputs is a union. A sink that takes late records has
	// the window's id here and is listed in Late.
	Inputs map[string][]string
	// Outputs maps an id to the operators and sinks reading its regular
	// output, in file order; a node read by several is a fan-out.
	Outputs map[string][]string
	// Late maps a window operator id to the sinks taking its late records.
	Late map[string][]string
}

// Graph resolves the operator graph from the spec as written (Input,
// Inputs, Late and the chain defaults), without the other checks of
// Validate. The error is a *SpecError naming cycles, unknown ids, dangling
// operators and unreachable nodes.
func (s *Spec) Graph() (*Graph, error) {
	v := newValidator(s)
	g := v.resolve(false)
	if err := v.ps.err(); err != nil {
		return nil, err
	}
	return g, nil
}

// graph resolves the graph during Validate and stores each node's inputs in
// Operator.From and Sink.From, then checks what flows along it.
func (v *validator) graph() {
	v.resolve(true)
	v.columns()
	v.feedback()
}

// fixedColumns returns the result columns of the operator id when its
// kind fixes them (a window's), or nil.
func (v *validator) fixedColumns(id string) []string {
	for i := range v.s.Operators {
		op := &v.s.Operators[i]
		if op.ID != id {
			continue
		}
		if k := lookupOperator(op.Kind()); k != nil && k.Columns != nil {
			return k.Columns(op)
		}
		return nil
	}
	return nil
}

// columns checks fields read from fixed result columns: an operator whose
// inputs all have fixed columns (windows) sees only those, so a field it
// reads by name (a detect value, a builtin aggregate's field) naming
// anything else is a typo.
func (v *validator) columns() {
	for i := range v.s.Operators {
		op := &v.s.Operators[i]
		k := lookupOperator(op.Kind())
		if len(op.From) == 0 || k == nil || k.Reads == nil {
			continue
		}
		var cols []string
		for _, in := range op.From {
			c := v.fixedColumns(in)
			if c == nil {
				cols = nil
				break
			}
			for _, name := range c {
				if !slices.Contains(cols, name) {
					cols = append(cols, name)
				}
			}
		}
		if cols == nil {
			continue
		}
		for _, r := range k.Reads(op, fmt.Sprintf("operators[%d]", i)) {
			root, _, _ := strings.Cut(r.Field, ".")
			if r.Field == "" || slices.Contains(cols, root) {
				continue
			}
			hint := suggest(root, cols)
			if hint == "" {
				hint = "columns: " + strings.Join(cols, ", ")
			}
			v.add(r.Path, CodeInvalid, fmt.Sprintf("%q is not a result column of %s", root, quoteList(op.From)), hint)
		}
	}
}

// feedback rejects writing into the job's own source stream: the job would
// read its results (or dead letters) back as input, without end.
func (v *validator) feedback() {
	src := v.s.Source.stream()
	if src == "" {
		return
	}
	for i, op := range v.s.Operators {
		if op.OnError.DeadLetter == src {
			v.add(fmt.Sprintf("operators[%d].on_error.dead_letter", i), CodeInvalid,
				fmt.Sprintf("%q is the job's source stream; failed records would be read back", src), "use another stream, e.g. "+src+"-errors")
		}
	}
	for i := range v.s.Sinks {
		sk := &v.s.Sinks[i]
		k := lookupSink(sk.Kind())
		if k == nil || k.Stream == nil {
			continue
		}
		if name, field := k.Stream(sk, fmt.Sprintf("sinks[%d]", i)); name == src {
			v.add(field, CodeInvalid,
				fmt.Sprintf("%q is the job's source stream; results would be read back as input", src), "use another stream, e.g. "+src+"-results")
		}
	}
}

// resolve builds the graph, reporting problems; fill stores the resolved
// inputs in the spec.
func (v *validator) resolve(fill bool) *Graph {
	s := v.s
	g := &Graph{Inputs: map[string][]string{}, Outputs: map[string][]string{}, Late: map[string][]string{}}
	ops := map[string]int{}
	for i, op := range s.Operators {
		if op.ID != "" && op.ID != SourceID {
			if _, dup := ops[op.ID]; !dup {
				ops[op.ID] = i
			}
		}
	}
	sinkIDs := map[string]bool{}
	for _, sk := range s.Sinks {
		sinkIDs[sk.ID] = true
	}
	known := make([]string, 0, len(ops)+1)
	known = append(known, SourceID)
	for _, op := range s.Operators {
		if _, ok := ops[op.ID]; ok {
			known = append(known, op.ID)
		}
	}
	// ref checks one reference and returns whether it names the source or
	// an operator.
	// broken is set when an id or a reference has a problem; dangling
	// outputs are then expected and not reported.
	broken := v.badIDs
	ref := func(path, id string) bool {
		if id == SourceID {
			return true
		}
		if _, ok := ops[id]; ok {
			return true
		}
		broken = true
		if sinkIDs[id] {
			v.add(path, CodeUnknownID, fmt.Sprintf("%q is a sink; sinks have no output to read", id), "name an operator or source")
			return false
		}
		hint := suggest(id, known)
		if hint == "" {
			hint = "known: " + strings.Join(known, ", ")
		}
		v.add(path, CodeUnknownID, fmt.Sprintf("no operator has id %q", id), hint)
		return false
	}

	// Operator inputs: explicit, else the previous operator (the first
	// reads the source).
	nodeOf := make([]string, len(s.Operators)) // resolvable node id per index
	for i := range s.Operators {
		op := &s.Operators[i]
		id := op.ID
		if j, ok := ops[id]; !ok || j != i {
			id = "" // missing or duplicate id: reported by ids(); not a node
		}
		nodeOf[i] = id
		p := fmt.Sprintf("operators[%d]", i)
		var from []string
		switch {
		case op.Input != "":
			if ref(p+".input", op.Input) {
				from = []string{op.Input}
			}
		case len(op.Inputs) > 0:
			seen := map[string]bool{}
			for k, in := range op.Inputs {
				ip := fmt.Sprintf("%s.inputs[%d]", p, k)
				if seen[in] {
					v.add(ip, CodeDuplicateID, fmt.Sprintf("%q is listed twice", in), "")
					continue
				}
				seen[in] = true
				if ref(ip, in) {
					from = append(from, in)
				}
			}
		case i == 0:
			from = []string{SourceID}
		default:
			if prev := nodeOf[i-1]; prev != "" {
				from = []string{prev}
			}
		}
		if slices.Contains(from, id) && id != "" {
			field := p + ".input"
			if op.Input == "" {
				field = fmt.Sprintf("%s.inputs[%d]", p, slices.Index(op.Inputs, id))
			}
			v.add(field, CodeCycle, fmt.Sprintf("operator %q reads itself", id), "")
			from = slices.DeleteFunc(from, func(x string) bool { return x == id })
		}
		if fill {
			op.From = from
		}
		if id != "" {
			g.Inputs[id] = from
		}
	}

	order, stuck := v.topo(g, nodeOf)

	// The end operators: those no operator reads.
	read := map[string]bool{}
	for _, id := range nodeOf {
		for _, in := range g.Inputs[id] {
			read[in] = true
		}
	}
	var ends []string
	for _, id := range nodeOf {
		if id != "" && !read[id] {
			ends = append(ends, id)
		}
	}

	sinkRead := map[string]bool{}
	for i := range s.Sinks {
		sk := &s.Sinks[i]
		p := fmt.Sprintf("sinks[%d]", i)
		from := ""
		switch {
		case sk.Late != "":
			if ref(p+".late", sk.Late) {
				if j, ok := ops[sk.Late]; !ok || !hasLate(&s.Operators[j]) {
					kind := "the source"
					if ok {
						kind = fmt.Sprintf("a %s operator", s.Operators[j].Kind())
					}
					broken = true
					v.add(p+".late", CodeInvalid, fmt.Sprintf("%q is %s; only window operators have late records", sk.Late, kind), "name a window operator")
				} else {
					from = sk.Late
					if sk.ID != "" {
						g.Late[from] = append(g.Late[from], sk.ID)
					}
				}
			}
		case sk.Input != "":
			if ref(p+".input", sk.Input) {
				from = sk.Input
			}
		case len(s.Operators) == 0:
			from = SourceID
		case len(ends) == 1:
			from = ends[0]
		case len(ends) > 1 && !broken:
			broken = true
			v.add(p+".input", CodeMissing, fmt.Sprintf("a sink without an input is ambiguous here: the job ends in %s", quoteList(ends)), "add input: with one of them")
		}
		if from != "" && sk.Late == "" {
			sinkRead[from] = true
		}
		if stuck[from] {
			v.add(p, CodeUnreachable, fmt.Sprintf("no path from the source reaches sink %q: its input %q sits on or behind a cycle", sk.ID, from), "")
		}
		if fill {
			sk.From = from
		}
		if sk.ID != "" && from != "" {
			g.Inputs[sk.ID] = []string{from}
		}
	}

	// Every end operator must feed a sink, or its results are lost.
	for i, id := range nodeOf {
		if !broken && id != "" && !read[id] && !sinkRead[id] && len(g.Late[id]) == 0 && !stuck[id] {
			v.add(fmt.Sprintf("operators[%d]", i), CodeDangling, fmt.Sprintf("the output of %q goes nowhere", id), fmt.Sprintf("add a sink with input: %s, or remove the operator", id))
		}
	}
	if len(s.Sinks) == 0 {
		v.add("sinks", CodeMissing, "a job needs at least one sink", "e.g. sinks: [{id: out, log: {}}]")
	}

	g.Order = append([]string{SourceID}, order...)
	for _, sk := range s.Sinks {
		if sk.ID != "" {
			g.Order = append(g.Order, sk.ID)
		}
	}
	for _, id := range g.Order[1:] {
		for _, in := range g.Inputs[id] {
			if !slices.Contains(g.Late[in], id) {
				g.Outputs[in] = append(g.Outputs[in], id)
			}
		}
	}
	return g
}

// hasLate reports whether op's kind has late records.
func hasLate(op *Operator) bool {
	k := lookupOperator(op.Kind())
	return k != nil && k.Late
}

// topo orders the operators topologically (Kahn's algorithm, ties in file
// order). It reports each cycle once by name, and every operator that only a
// cycle feeds as unreachable; stuck holds both kinds.
func (v *validator) topo(g *Graph, nodeOf []string) (order []string, stuck map[string]bool) {
	index := map[string]int{}
	for i, id := range nodeOf {
		if id != "" {
			index[id] = i
		}
	}
	indeg := make([]int, len(nodeOf))
	readers := make([][]int, len(nodeOf))
	ready := &intHeap{}
	for i, id := range nodeOf {
		if id == "" {
			continue
		}
		for _, in := range g.Inputs[id] {
			if j, ok := index[in]; ok {
				indeg[i]++
				readers[j] = append(readers[j], i)
			}
		}
		if indeg[i] == 0 {
			heap.Push(ready, i)
		}
	}
	done := make([]bool, len(nodeOf))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		done[i] = true
		order = append(order, nodeOf[i])
		for _, r := range readers[i] {
			if indeg[r]--; indeg[r] == 0 {
				heap.Push(ready, r)
			}
		}
	}
	stuck = map[string]bool{}
	if len(order) == len(index) {
		return order, stuck
	}
	// The rest sit on or behind a cycle. Walk inputs from each left-over
	// node; a walk that meets its own path found a cycle, one that meets an
	// earlier walk stops.
	inCycle := map[string]bool{}
	walked := map[string]bool{}
	for _, id := range nodeOf {
		if id == "" || done[index[id]] || walked[id] {
			continue
		}
		path := []string{id}
		at := map[string]int{id: 0}
		walked[id] = true
		for cur := id; ; {
			next := ""
			for _, in := range g.Inputs[cur] {
				if j, ok := index[in]; ok && !done[j] {
					next = in
					break
				}
			}
			if next == "" {
				break
			}
			if k, seen := at[next]; seen {
				v.cycle(path[k:], index, inCycle)
				break
			}
			if walked[next] {
				break
			}
			walked[next] = true
			at[next] = len(path)
			path = append(path, next)
			cur = next
		}
	}
	for i, id := range nodeOf {
		if id == "" || done[i] {
			continue
		}
		stuck[id] = true
		order = append(order, id)
		if !inCycle[id] {
			v.add(fmt.Sprintf("operators[%d]", i), CodeUnreachable,
				fmt.Sprintf("no path from the source reaches %q: it reads from a cycle", id), "")
		}
	}
	return order, stuck
}

// cycle reports one cycle, given as a walk against the data flow, in
// data-flow order starting at the operator declared first.
func (v *validator) cycle(walk []string, index map[string]int, inCycle map[string]bool) {
	flow := slices.Clone(walk)
	slices.Reverse(flow)
	start := 0
	for j, c := range flow {
		inCycle[c] = true
		if index[c] < index[flow[start]] {
			start = j
		}
	}
	flow = append(flow[start:], flow[:start]...)
	names := append(flow, flow[0])
	v.add(fmt.Sprintf("operators[%d]", index[flow[0]]), CodeCycle,
		fmt.Sprintf("operators form a cycle: %s", strings.Join(names, " → ")), "a job is a DAG; break the cycle by changing one input")
}

// intHeap is a min-heap of operator indexes.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
