package jobs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/runnel-dev/runnel/operators/js"
)

// CheckScripts evaluates the job's JavaScript once, as each of its tasks
// does when it starts: the functions block runs, and every snippet must
// evaluate to a function (a custom aggregate's object: to an object with
// its methods). A snippet that compiles but names what nothing declares
// (`key: page`, `map: r.page`, a misspelt function) throws only here, so
// this is where a submit learns of it, at the snippet's line, instead of
// a job that fails as it starts. It runs in the same sandbox, with the
// same time and memory bounds, as the job's tasks.
func (s *Spec) CheckScripts() error {
	v := newValidator(s)
	var snips []js.Snippet
	ops := map[string]string{} // snippet name (its field path) → operator id
	add := func(path, opID, src string, object bool) {
		sn := js.Snippet{Name: path, Src: src}
		if object {
			sn.Methods = []string{"init", "add", "merge"}
		}
		snips = append(snips, sn)
		ops[path] = opID
	}
	budget := DefaultTimeout
	if s.Source.EventTime != "" {
		add("source.event_time", "", s.Source.EventTime, false)
	}
	for i := range s.Operators {
		op := &s.Operators[i]
		budget = max(budget, op.Timeout)
		p := fmt.Sprintf("operators[%d]", i)
		for _, sn := range op.snippets() {
			if *sn.Src == "" {
				continue
			}
			path := p + "." + sn.Field
			if sn.Object && s.info != nil {
				if _, ok := s.info.pos[path+".object"]; ok {
					path += ".object"
				}
			}
			add(path, op.ID, *sn.Src, sn.Object)
		}
	}
	if len(snips) == 0 && strings.TrimSpace(s.Functions) == "" {
		return nil
	}
	prog, err := js.Compile(s.Functions, snips...)
	if err != nil {
		// Validation reports what does not compile; Build says the rest.
		return nil
	}
	vm, err := prog.NewVM(js.Options{Budget: budget})
	if err == nil {
		vm.Close()
		return nil
	}
	var ee *js.EvalError
	if !errors.As(err, &ee) {
		return err
	}
	path, opID := "functions", ""
	if ee.Name != js.FunctionsName {
		path, opID = ee.Name, ops[ee.Name]
	}
	where := "JS"
	if opID != "" {
		where = fmt.Sprintf("operator %q: JS", opID)
	}
	msg := fmt.Sprintf("%s evaluation failed: %v", where, ee.Err)
	hint := "a snippet is one expression that evaluates to a function of the record, e.g. r => r.page; any other name it uses must be declared in functions:"
	if ee.Shape {
		msg = fmt.Sprintf("%s: %v", where, ee.Err)
	}
	if path == "functions" {
		hint = "the functions block runs once in each JS runtime before any snippet; it may only declare functions and values"
	}
	pos := v.at(path)
	v.ps.add(Problem{Line: pos.line, Column: pos.col, Field: path, Code: CodeJSError, Message: msg, Hint: hint, Operator: opID})
	return v.ps.err()
}
