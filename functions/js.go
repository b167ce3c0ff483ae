package functions

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/dop251/goja"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js"
)

// JS compiles a function written in JavaScript — an expression evaluating
// to `(batch, ctx) => result`, with the job's functions block in scope —
// and returns the factory of its invokers, one sandboxed runtime each,
// bounded by opts as every other JS of a job (operators/js).
//
// batch is an array of records {partitionKey, sequenceNumber, shardId,
// approximateArrivalTimestamp (seconds, as Lambda's), data (decoded)};
// ctx is {shardId, functionName, attempt, and with tumbling windows
// window: {start, end} (epoch ms), state, isFinalInvokeForWindow}. The
// result is nothing, or an object with any of records: [{partitionKey,
// data}], batchItemFailures: [{itemIdentifier}] and state. A thrown
// exception, a timeout or a result of the wrong shape fails the batch.
func JS(name, functions, src string, opts js.Options) (func() (Invoker, error), error) {
	prog, err := js.Compile(functions, js.Snippet{Name: name, Src: src})
	if err != nil {
		return nil, err
	}
	return func() (Invoker, error) {
		vm, err := prog.NewVM(opts)
		if err != nil {
			return nil, &FatalError{Err: err}
		}
		return &jsInvoker{name: name, vm: vm, rt: vm.Runtime(), fn: vm.Func(0)}, nil
	}, nil
}

type jsInvoker struct {
	name string
	vm   *js.VM
	rt   *goja.Runtime
	fn   goja.Value
}

func (j *jsInvoker) Close() error { j.vm.Close(); return nil }

func (j *jsInvoker) Invoke(_ context.Context, in *Invocation) (*Result, error) {
	recs := make([]any, len(in.Records))
	for i, r := range in.Records {
		data, err := operators.ValueOf(r.Data).Export()
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", r.SequenceNumber, err)
		}
		recs[i] = map[string]any{
			"partitionKey":                r.PartitionKey,
			"sequenceNumber":              r.SequenceNumber,
			"shardId":                     in.Shard,
			"approximateArrivalTimestamp": float64(r.Arrival) / 1000,
			// Each attempt gets its own copy: JS writes through to Go
			// maps, and a retry must see the records as they were.
			"data": operators.ValueOf(data).Copy().Any(),
		}
	}
	ctx := map[string]any{"shardId": in.Shard, "functionName": j.name, "attempt": int64(in.Attempt)}
	if w := in.Window; w != nil {
		ctx["window"] = map[string]any{"start": w.Start, "end": w.End}
		ctx["state"] = operators.ValueOf(w.State).Copy().Any()
		ctx["isFinalInvokeForWindow"] = w.Final
	}
	v, err := j.vm.Call(j.fn, j.rt.ToValue(recs), j.rt.ToValue(ctx))
	if errors.Is(err, js.ErrRetained) {
		return nil, &FatalError{Err: fmt.Errorf("%s: %w", j.name, err)}
	}
	if err != nil {
		return nil, err
	}
	return parseResult(v)
}

// parseResult reads the function's result.
func parseResult(v goja.Value) (*Result, error) {
	res := &Result{}
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return res, nil
	}
	obj, ok := v.Export().(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the function returned %s; return nothing or an object {records, batchItemFailures, state}", v.String())
	}
	for k, x := range obj {
		switch k {
		case "records":
			list, ok := x.([]any)
			if !ok && x != nil {
				return nil, errors.New("result.records must be an array of {partitionKey, data}")
			}
			for i, e := range list {
				m, ok := e.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("result.records[%d] must be an object {partitionKey, data}", i)
				}
				pk, ok := scalarString(m["partitionKey"])
				if !ok || pk == "" {
					return nil, fmt.Errorf("result.records[%d].partitionKey must be a non-empty string", i)
				}
				res.Records = append(res.Records, Output{PartitionKey: pk, Data: m["data"]})
			}
		case "batchItemFailures":
			list, ok := x.([]any)
			if !ok && x != nil {
				return nil, errors.New("result.batchItemFailures must be an array of {itemIdentifier}")
			}
			for _, e := range list {
				m, _ := e.(map[string]any)
				id, _ := scalarString(m["itemIdentifier"])
				// An empty or missing identifier names no record: the
				// whole batch failed (as Lambda treats it).
				res.Failures = append(res.Failures, id)
			}
		case "state":
			res.State = x
		}
	}
	return res, nil
}

// scalarString reads a string, or a number as its decimal text.
func scalarString(x any) (string, bool) {
	switch x := x.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}
