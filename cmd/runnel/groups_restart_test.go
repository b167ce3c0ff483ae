package main

import (
	"bytes"
	"fmt"
	"math/big"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestConsumerGroupServerRestart kills the server with SIGKILL while two
// `runnel consume` workers hold every lease and every record put so far is
// checkpointed, and starts it again on the same data: the group's leases
// come back with the same owners, epochs and checkpoints, the workers
// carry on through the outage, and no record checkpointed before the kill
// is handled again.
func TestConsumerGroupServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and workers")
	}
	srv := testbin.Start(t, testbin.Options{})
	base := srv.URL
	hc := &http.Client{Timeout: 30 * time.Second}
	c := newClient(base)
	if err := c.do("POST", "/api/v1/streams", map[string]any{"name": "s", "shards": 2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.do("POST", "/api/v1/streams/s/consumer-groups", map[string]any{"name": "g", "lease_duration_ms": 3000}, nil); err != nil {
		t.Fatal(err)
	}
	groupURL := base + "/api/v1/streams/s/consumer-groups/g"
	f := &consumeFleet{t: t, live: map[string]*exec.Cmd{}, logs: map[string]*bytes.Buffer{},
		args: []string{"consume", "s", "--group", "g", "--server", base, "--idle", "50ms", "--log-level", "warn"}}
	f.start("a")
	f.start("b")

	put := func(from, to int) {
		t.Helper()
		var recs []string
		for i := from; i < to; i++ {
			recs = append(recs, fmt.Sprintf(`{"key":"k%02d","data":"%d"}`, i%16, i))
		}
		if !postJSON(hc, base+"/api/v1/streams/s/records", `{"records":[`+strings.Join(recs, ",")+`]}`) {
			t.Fatal("put records")
		}
	}
	// handledAll waits until records [0, n) were handled and each shard's
	// checkpoint is its last handled record.
	handledAll := func(n int) {
		t.Helper()
		testutil.Eventually(t, 60*time.Second, func() bool {
			seen, last := map[string]bool{}, map[string]*big.Int{}
			for _, c := range f.lines() {
				seen[c.Data] = true
				v := seqValue(c.Seq, 0)
				if last[c.Shard] == nil || v.Cmp(last[c.Shard]) > 0 {
					last[c.Shard] = v
				}
			}
			for i := range n {
				if !seen[fmt.Sprint(i)] {
					return false
				}
			}
			ls, err := describeGroup(hc, groupURL)
			if err != nil {
				return false
			}
			for _, l := range ls {
				if last[l.Shard] != nil && seqValue(l.Seq, 0).Cmp(last[l.Shard]) != 0 {
					return false
				}
			}
			return true
		}, "records [0, %d) not all handled and checkpointed", n)
	}
	put(0, 200)
	handledAll(200)
	before, err := describeGroup(hc, groupURL)
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Start()
	after, err := describeGroup(hc, groupURL)
	if err != nil {
		t.Fatal(err)
	}
	if d := testutil.Diff(before, after); d != "" {
		t.Fatalf("leases after a restart differ:\n%s", d)
	}
	put(200, 400)
	handledAll(400)
	times := map[string]int{}
	for _, c := range f.lines() {
		times[c.Data]++
	}
	for i := range 200 {
		if n := times[fmt.Sprint(i)]; n != 1 {
			t.Errorf("record %d, checkpointed before the restart, handled %d times", i, n)
		}
	}
}
