package functions

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/operators/js"
)

func newJS(t *testing.T, functions, src string) Invoker {
	t.Helper()
	newInv, err := JS("fn.function.handler", functions, src, js.Options{Budget: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := newInv()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inv.Close() })
	return inv
}

// The JS function sees Lambda's record fields and context, and its
// records, batchItemFailures and state come back.
func TestJSFunction(t *testing.T) {
	inv := newJS(t, "function tag(r) { return r.partitionKey + ':' + r.data.n }", `(batch, ctx) => ({
		records: batch.map(r => ({partitionKey: r.partitionKey, data: {tag: tag(r), seq: r.sequenceNumber, shard: r.shardId, at: r.approximateArrivalTimestamp, attempt: ctx.attempt}})),
		batchItemFailures: batch.filter(r => r.data.n < 0).map(r => ({itemIdentifier: r.sequenceNumber})),
		state: {seen: (ctx.state ? ctx.state.seen : 0) + batch.length, start: ctx.window.start},
	})`)
	in := &Invocation{Shard: "shard-1", Attempt: 2, Window: &Window{Start: 60_000, End: 120_000, State: map[string]any{"seen": int64(3)}},
		Records: []Record{{PartitionKey: "a", SequenceNumber: "7", Arrival: 1500, Data: map[string]any{"n": int64(1)}},
			{PartitionKey: "b", SequenceNumber: "8", Arrival: 2000, Data: map[string]any{"n": int64(-1)}}}}
	res, err := inv.Invoke(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := &Result{
		Records: []Output{
			{PartitionKey: "a", Data: map[string]any{"tag": "a:1", "seq": "7", "shard": "shard-1", "at": 1.5, "attempt": int64(2)}},
			{PartitionKey: "b", Data: map[string]any{"tag": "b:-1", "seq": "8", "shard": "shard-1", "at": int64(2), "attempt": int64(2)}},
		},
		Failures: []string{"8"},
		State:    map[string]any{"seen": int64(5), "start": int64(60_000)},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("result\n got %#v\nwant %#v", res, want)
	}
}

// A retry sees the records as they were, whatever the failed call did to
// them.
func TestJSRetrySeesUnchangedRecords(t *testing.T) {
	inv := newJS(t, "", `(batch) => { const n = batch[0].data.n; batch[0].data.n = 99; return {records: [{partitionKey: "k", data: n}]} }`)
	in := &Invocation{Shard: "s", Attempt: 1, Records: []Record{{PartitionKey: "k", SequenceNumber: "1", Data: map[string]any{"n": int64(1)}}}}
	for range 2 {
		res, err := inv.Invoke(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if res.Records[0].Data != int64(1) {
			t.Fatalf("the call saw n = %v, want 1", res.Records[0].Data)
		}
	}
}

// Exceptions, results of the wrong shape and timeouts fail the batch (an
// error retries and bisection apply to); nothing returned is success.
func TestJSFunctionErrors(t *testing.T) {
	in := &Invocation{Shard: "s", Attempt: 1, Records: []Record{{PartitionKey: "k", SequenceNumber: "1", Data: map[string]any{}}}}
	for _, tc := range []struct{ src, msg string }{
		{`() => { throw new TypeError("bad record") }`, "TypeError: bad record"},
		{`() => 42`, "return nothing or an object"},
		{`() => ({records: [{data: 1}]})`, "records[0].partitionKey"},
		{`() => ({records: 5})`, "must be an array"},
		{`() => { for (;;) {} }`, "time budget"},
	} {
		newInv, err := JS("fn", "", tc.src, js.Options{Budget: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		inv, _ := newInv()
		_, err = inv.Invoke(context.Background(), in)
		inv.Close()
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want one containing %q", tc.src, err, tc.msg)
		}
		if fatal := (*FatalError)(nil); errors.As(err, &fatal) {
			t.Errorf("%s: %v is fatal; it is the batch's failure", tc.src, err)
		}
	}
	for _, src := range []string{`() => {}`, `() => null`, `() => ({})`} {
		res, err := newJS(t, "", src).Invoke(context.Background(), in)
		if err != nil || len(res.Records) != 0 || len(res.Failures) != 0 {
			t.Errorf("%s: %v %v, want an empty success", src, res, err)
		}
	}
}
