package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/engine"
)

func init() {
	everyField = append(everyField, "testdata/every-field-function.yaml")
	extStructs["operators[]."+KindFunction] = reflect.TypeOf(Function{})
}

// A function's settings take Lambda's defaults where Runnel has no reason
// to differ, and the file's values otherwise.
func TestFunctionDefaults(t *testing.T) {
	s, err := Parse([]byte(`name: fn
source: {stream: in}
operators:
  - {id: f, function: {handler: "(b) => {}"}}
sinks: [{id: out, log: {}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	fn := extConfig[Function](&s.Operators[0].ext, KindFunction, false)
	want := Function{Handler: "(b) => {}", BatchSize: 100, Parallelization: 1, MaxRetries: DefaultFunctionRetries, retriesSet: true}
	if !reflect.DeepEqual(*fn, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", *fn, want)
	}
}

// Bad function settings are reported at their fields.
func TestFunctionValidation(t *testing.T) {
	head := "name: fn\nsource: {stream: in}\n"
	tail := "sinks: [{id: out, log: {}}]\n"
	for _, tc := range []struct {
		name, ops, field, msg string
	}{
		{"no handler", "operators: [{id: f, function: {batch_size: 5}}]\n", "operators[0].function.handler", "required"},
		{"batch too big", "operators: [{id: f, function: {handler: 'b => {}', batch_size: 10001}}]\n", "operators[0].function.batch_size", "out of range"},
		{"parallel too high", "operators: [{id: f, function: {handler: 'b => {}', parallelization_factor: 11}}]\n", "operators[0].function.parallelization_factor", "out of range"},
		{"retries below -1", "operators: [{id: f, function: {handler: 'b => {}', maximum_retry_attempts: -2}}]\n", "operators[0].function.maximum_retry_attempts", "not -1"},
		{"windows with lanes", "operators: [{id: f, function: {handler: 'b => {}', tumbling_window: 1m, parallelization_factor: 2}}]\n", "operators[0].function.tumbling_window", "parallelization_factor 1"},
		{"destination is the source", "operators: [{id: f, function: {handler: 'b => {}', on_failure: in}}]\n", "operators[0].function.on_failure", "source stream"},
		{"bad filter", "operators: [{id: f, function: {handler: 'b => {}', filter_criteria: [{data: {n: [{numeric: ['>>', 1]}]}}]}}]\n", "operators[0].function.filter_criteria[0]", "not an operator"},
		{"filter not JSON", "operators: [{id: f, function: {handler: 'b => {}', filter_criteria: ['{data']}}]\n", "operators[0].function.filter_criteria[0]", "not JSON"},
		{"not first", "operators: [{id: m, map: 'r => r'}, {id: f, function: {handler: 'b => {}'}}]\n", "operators[1]", "reads the source directly"},
		{"second reader", "operators: [{id: f, function: {handler: 'b => {}'}}, {id: m, input: source, map: 'r => r'}]\n", "operators[1]", "only reader"},
		{"handler syntax", "operators: [{id: f, function: {handler: 'b => {'}}]\n", "operators[0].function.handler", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(head + tc.ops + tail))
			if err == nil {
				err = s.Validate()
			}
			if err == nil {
				t.Fatal("no error")
			}
			se, ok := err.(*SpecError)
			if !ok {
				t.Fatalf("%T %v", err, err)
			}
			for _, p := range se.Problems {
				if p.Field == tc.field && strings.Contains(p.Message, tc.msg) {
					return
				}
			}
			t.Fatalf("no problem at %s containing %q in:\n%v", tc.field, tc.msg, err)
		})
	}
}

// A preview of a function job runs the function on the sample: its
// output rows, and the records it gave up on as the operator's errors.
func TestPreviewFunction(t *testing.T) {
	st, dir, log := managerStore(t)
	putClicks(t, st, 50)
	m := startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log})
	res, err := m.Preview(context.Background(), []byte(`name: pv
source: {stream: clicks}
operators:
  - id: handle
    function:
      handler: "(batch) => { if (batch.some(r => !r.data.ms)) throw new Error('no ms'); return {records: batch.map(r => ({partitionKey: r.partitionKey, data: r.data.ms}))} }"
      bisect_batch_on_error: true
      maximum_retry_attempts: 0
      on_failure: failed
sinks:
  - {id: out, stream: {name: results}}
`), 20)
	if err != nil {
		t.Fatal(err)
	}
	// The last 20 records hold two without ms: bisection isolates each.
	fn := previewOp(t, res, "handle")
	if res.Error != "" || fn.RowCount != 18 || fn.ErrorCount != 2 {
		t.Fatalf("preview: error %q, function rows %d, errors %d; want 18 and 2", res.Error, fn.RowCount, fn.ErrorCount)
	}
}

// A function over bounded sources (two files, so two shards) runs to
// completion as `runnel run` runs it: every record reaches the function
// once, in batches of at most batch_size, and the job ends.
func TestFunctionRunsToCompletion(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for f := range 2 {
		var recs strings.Builder
		for i := range 25 {
			fmt.Fprintf(&recs, "{\"file\": %d, \"n\": %d}\n", f, i)
		}
		p := filepath.Join(dir, fmt.Sprintf("in%d.jsonl", f))
		if err := os.WriteFile(p, []byte(recs.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	spec := mustParse(t, fmt.Sprintf(`name: j
source: {file: [%q, %q]}
operators:
  - id: f
    function:
      handler: "(batch) => ({records: [{partitionKey: 'b', data: {n: batch.length, first: batch[0].data.n, file: batch[0].data.file}}]})"
      batch_size: 10
sinks: [{id: out, log: {}}]
`, paths[0], paths[1]))
	// A job that does not end on its own fails here instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var log syncBuffer
	built, err := Build(spec, Env{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := engine.Run(ctx, built.Graph, engine.Options{}); err != nil || st.State != engine.Finished {
		t.Fatalf("run: %v, state %s", err, st.State)
	}
	got := log.lines("out: ")
	slices.Sort(got)
	var want []string
	for f := range 2 {
		for _, b := range [][2]int{{10, 0}, {10, 10}, {5, 20}} {
			want = append(want, fmt.Sprintf(`out: {"file":%d,"first":%d,"n":%d}`, f, b[1], b[0]))
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("batches:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
