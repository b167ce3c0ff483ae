package jobs

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dop251/goja"
)

// readRecords reads an example's data file as JSON-like records (CSV cells
// that are numbers become numbers, as the file source does).
func readRecords(t *testing.T, path, format string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join("..", path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	if format == "csv" {
		rows, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range rows[1:] {
			r := map[string]any{}
			for i, cell := range row {
				if v, err := strconv.ParseFloat(cell, 64); err == nil {
					r[rows[0][i]] = v
				} else {
					r[rows[0][i]] = cell
				}
			}
			out = append(out, r)
		}
		return out
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// The JS of every example runs without errors over its sample data: the
// event-time extractor, maps and filters of the first chain, window keys,
// and custom aggregates through init, add, merge and result. This checks
// the examples' JavaScript, not the runtime.
func TestExamplesJSRuns(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Parse(src)
		if err != nil || len(s.Source.File) == 0 {
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			vm := goja.New()
			if s.Functions != "" {
				p, err := CompileFunctions("functions", s.Functions)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := vm.RunProgram(p); err != nil {
					t.Fatal(err)
				}
			}
			fn := func(snippet string) goja.Callable {
				p, err := CompileSnippet("s", snippet)
				if err != nil {
					t.Fatal(err)
				}
				v, err := vm.RunProgram(p)
				if err != nil {
					t.Fatal(err)
				}
				f, ok := goja.AssertFunction(v)
				if !ok {
					t.Fatalf("%q is not a function", snippet)
				}
				return f
			}
			recs := readRecords(t, s.Source.File[0], s.Source.Format)
			outputs := map[string][]goja.Value{SourceID: nil}
			for _, r := range recs {
				outputs[SourceID] = append(outputs[SourceID], vm.ToValue(r))
			}
			if s.Source.EventTime != "" {
				et := fn(s.Source.EventTime)
				for _, r := range outputs[SourceID] {
					v, err := et(goja.Undefined(), r)
					if err != nil || v.ToFloat() <= 0 {
						t.Fatalf("event_time(%v) = %v, %v", r.Export(), v, err)
					}
				}
			}
			g, err := s.Graph()
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range g.Order[1:] {
				op := findOperator(s, id)
				if op == nil {
					continue
				}
				var in []goja.Value
				for _, from := range op.From {
					in = append(in, outputs[from]...)
				}
				switch op.Kind() {
				case KindMap, KindFilter:
					f := fn(op.Map + op.Filter)
					var out []goja.Value
					for _, r := range in {
						v, err := f(goja.Undefined(), r)
						if err != nil {
							t.Fatalf("%s(%v): %v", op.ID, r.Export(), err)
						}
						switch {
						case op.Kind() == KindFilter && v.ToBoolean():
							out = append(out, r)
						case op.Kind() == KindMap && !goja.IsNull(v) && !goja.IsUndefined(v):
							out = append(out, v)
						}
					}
					if len(out) == 0 {
						t.Errorf("%s emits nothing from %d records", op.ID, len(in))
					}
					outputs[op.ID] = out
				case KindWindow:
					runAggregates(t, vm, fn, op, in)
				}
			}
		})
	}
}

func findOperator(s *Spec, id string) *Operator {
	for i := range s.Operators {
		if s.Operators[i].ID == id {
			return &s.Operators[i]
		}
	}
	return nil
}

// runAggregates applies the window key to every record and each custom
// aggregate to two halves of the records, merged.
func runAggregates(t *testing.T, vm *goja.Runtime, fn func(string) goja.Callable, op *Operator, in []goja.Value) {
	key := fn(op.Window.Key)
	for _, r := range in {
		if _, err := key(goja.Undefined(), r); err != nil {
			t.Fatalf("%s key(%v): %v", op.ID, r.Export(), err)
		}
	}
	for _, a := range op.Window.Aggregate {
		if a.Func != AggCustom {
			continue
		}
		var init, add, merge, result goja.Callable
		if a.Object != "" {
			p, err := CompileObjectSnippet("o", a.Object)
			if err != nil {
				t.Fatal(err)
			}
			v, err := vm.RunProgram(p)
			if err != nil {
				t.Fatal(err)
			}
			obj := v.ToObject(vm)
			init, _ = goja.AssertFunction(obj.Get("init"))
			add, _ = goja.AssertFunction(obj.Get("add"))
			merge, _ = goja.AssertFunction(obj.Get("merge"))
			result, _ = goja.AssertFunction(obj.Get("result"))
		} else {
			init, add, merge = fn(a.Init), fn(a.Add), fn(a.Merge)
			if a.Result != "" {
				result = fn(a.Result)
			}
		}
		half := func(rs []goja.Value) goja.Value {
			acc, err := init(goja.Undefined())
			if err != nil {
				t.Fatalf("%s.%s init: %v", op.ID, a.Name, err)
			}
			for _, r := range rs {
				if acc, err = add(goja.Undefined(), acc, r); err != nil {
					t.Fatalf("%s.%s add: %v", op.ID, a.Name, err)
				}
			}
			return acc
		}
		acc, err := merge(goja.Undefined(), half(in[:len(in)/2]), half(in[len(in)/2:]))
		if err != nil {
			t.Fatalf("%s.%s merge: %v", op.ID, a.Name, err)
		}
		if result != nil {
			if acc, err = result(goja.Undefined(), acc); err != nil {
				t.Fatalf("%s.%s result: %v", op.ID, a.Name, err)
			}
		}
		if goja.IsNull(acc) || goja.IsUndefined(acc) {
			t.Errorf("%s.%s over %d records is %v", op.ID, a.Name, len(in), acc)
		}
		switch a.Type {
		case ColumnString:
			if _, ok := acc.Export().(string); !ok {
				t.Errorf("%s.%s has type string but returns %T", op.ID, a.Name, acc.Export())
			}
		case ColumnFloat64, ColumnInt64:
			if _, ok := acc.Export().(string); ok {
				t.Errorf("%s.%s has type %s but returns a string", op.ID, a.Name, a.Type)
			}
		}
	}
}
