package js_test

import (
	"context"
	"fmt"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js"
)

// A chain of map, filter, key and event-time stages runs as one operator;
// compile it once per job and make one Chain per task.
func ExampleCompileChain() {
	prog, err := js.CompileChain(js.ChainSpec{
		Job:       "page-views",
		Functions: `function isBot(u) { return u.startsWith("bot-") }`,
		Stages: []js.Stage{
			{Operator: "source", Kind: js.EventTime, Src: `r => r.ts`},
			{Operator: "parse", Kind: js.Map, Src: `r => ({page: r.page, user: r.user, ms: r.latency_ms})`},
			{Operator: "humans", Kind: js.Filter, Src: `r => !isBot(r.user)`, OnError: js.OnError{Mode: js.Skip}},
			{Operator: "per-page", Kind: js.Key, Src: `r => r.page`},
		},
	})
	if err != nil {
		panic(err)
	}
	chain, err := prog.New()
	if err != nil {
		panic(err)
	}
	defer chain.Close()
	in := &operators.Batch{Records: []operators.Record{
		{Value: []byte(`{"page":"/home","user":"ann","latency_ms":12,"ts":"2024-05-01T10:00:00Z"}`), Origin: "shard-0/1"},
		{Value: map[string]any{"page": "/home", "user": "bot-7", "latency_ms": 3, "ts": int64(1714557600500)}, Origin: "shard-0/2"},
	}}
	err = chain.Process(context.Background(), in, operators.EmitterFunc(func(r operators.Record) {
		fmt.Println(r.Key, r.EventTime, r.Value.(map[string]any)["ms"], r.Origin)
	}))
	fmt.Println(err)
	// Output:
	// /home 1714557600000 12 shard-0/1
	// <nil>
}
