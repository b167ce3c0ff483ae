package jobs

import "github.com/runnel-dev/runnel/operators/js"

// KindFilter is the operator kind that keeps the records a JS predicate
// accepts.
const KindFilter = "filter"

func init() {
	registerOperator(&operatorKind{
		Name:     KindFilter,
		Rank:     20,
		Fields:   []Field{{"", "JS function", "—", "`r => boolean`"}},
		Has:      func(op *Operator) bool { return op.Filter != "" },
		Parse:    func(p *parser, f fieldMap, op *Operator) { op.Filter = p.str(f, "filter") },
		Snippets: func(op *Operator) []snippetRef { return []snippetRef{{Field: "filter", Src: &op.Filter}} },
		Stage: func(op *Operator) js.Stage {
			return js.Stage{Operator: op.ID, Kind: js.Filter, Src: op.Filter, OnError: onError(op.OnError)}
		},
	})
}
