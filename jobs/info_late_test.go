package jobs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

// TestLateDroppedIsAWarning: a window operator that dropped late records
// says so in the job's warnings, unless a sink takes its late records.
func TestLateDroppedIsAWarning(t *testing.T) {
	st, dir, log := managerStore(t)
	m := openManager(t, st, dir, log)
	t.Cleanup(m.Close)
	const job = `name: NAME
source: {stream: ev, event_time: "r => r.ts", watermark: 0s}
operators:
  - id: w
    window: {key: "r => 1", tumbling: 1s, aggregate: {n: count}}
sinks:
  - {id: out, input: w, log: {}}
`
	for _, s := range []string{"dropped", "kept"} {
		if _, err := st.CreateStream(s, 1, streams.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(stream, ts string) {
		t.Helper()
		if _, err := st.Put(context.Background(), stream, []streams.PutRecord{{PartitionKey: "k", Data: []byte(`{"ts":` + ts + `}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	op := func(id string) (o OperatorInfo) {
		in, _ := m.Get(id)
		for _, o := range in.Operators {
			if o.ID == "w" {
				return o
			}
		}
		return o
	}
	for _, c := range []struct{ name, extra, want string }{
		{"dropped", "", "operator w dropped 1 late records"},
		{"kept", "  - {id: late, late: w, log: {}}\n", ""},
	} {
		j, err := m.Submit([]byte(strings.Replace(strings.Replace(job, "NAME", c.name, 1), "ev", c.name, 1) + c.extra))
		if err != nil {
			t.Fatal(err)
		}
		// The third record is late: the second moved the watermark to
		// 5 s, past the end of its window (1 s to 2 s), which fired.
		put(c.name, "1000")
		put(c.name, "5000")
		testutil.Eventually(t, 20*time.Second, func() bool { return op(j.ID).Out == 1 }, "job %s: the first window did not fire: %+v", c.name, op(j.ID))
		put(c.name, "1500")
		testutil.Eventually(t, 20*time.Second, func() bool { return op(j.ID).Late == 1 }, "job %s: no late record counted: %+v", c.name, op(j.ID))
		in, _ := m.Get(j.ID)
		got := strings.Join(in.Warnings, "\n")
		if c.want == "" && strings.Contains(got, "late records") || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("job %s: warnings %q, want %q", c.name, got, c.want)
		}
	}
}
