package jobs

import "github.com/runnel-dev/runnel/operators/js"

// KindMap is the operator kind that maps each record with a JS function.
const KindMap = "map"

func init() {
	registerOperator(&operatorKind{
		Name:     KindMap,
		Rank:     10,
		Fields:   []Field{{"", "JS function", "—", "`r => record | null | [records]`"}},
		Has:      func(op *Operator) bool { return op.Map != "" },
		Parse:    func(p *parser, f fieldMap, op *Operator) { op.Map = p.str(f, "map") },
		Snippets: func(op *Operator) []snippetRef { return []snippetRef{{Field: "map", Src: &op.Map}} },
		Stage: func(op *Operator) js.Stage {
			return js.Stage{Operator: op.ID, Kind: js.Map, Src: op.Map, OnError: onError(op.OnError)}
		},
	})
}
