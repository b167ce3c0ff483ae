package upgrade

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// GroupLease is what a consumer group keeps of a shard's lease across
// restarts: its checkpoint and whether the shard is done.
type GroupLease struct {
	Shard    string `json:"shard"`
	Seq      string `json:"sequence_number,omitempty"`
	Sub      uint64 `json:"sub_sequence_number"`
	Finished bool   `json:"finished"`
}

const groupPath = "/api/v1/streams/resharded/consumer-groups"

// groupLeases returns the leases of the consumer group app by shard.
func groupLeases(a *api) map[string]GroupLease {
	a.t.Helper()
	var g struct {
		Leases []GroupLease `json:"leases"`
	}
	if err := json.Unmarshal(a.rest("GET", groupPath+"/app", "", "", 200), &g); err != nil {
		a.t.Fatal(err)
	}
	out := map[string]GroupLease{}
	for _, l := range g.Leases {
		out[l.Shard] = l
	}
	return out
}

// syncLeases syncs worker of the group app and returns the epochs of the
// leases it holds, by shard.
func syncLeases(a *api, worker string) map[string]uint64 {
	a.t.Helper()
	var res struct {
		Leases []struct {
			Shard string `json:"shard"`
			Epoch uint64 `json:"epoch"`
			Owner string `json:"owner"`
		} `json:"leases"`
	}
	if err := json.Unmarshal(a.rest("POST", groupPath+"/app/workers/"+worker+"/sync", "application/json", "{}", 200), &res); err != nil {
		a.t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, l := range res.Leases {
		if l.Owner == "" || l.Owner == worker {
			out[l.Shard] = l.Epoch
		}
	}
	return out
}

// makeGroup makes the consumer group app on the stream resharded, whose
// worker w1 checkpoints each shard it leases at its fourth record. A
// binary without consumer groups (an unknown route) makes none.
func makeGroup(t *testing.T, a *api) map[string]GroupLease {
	st, b := a.send("POST", groupPath, "application/json", []byte(`{"name":"app","lease_duration_ms":1000,"start":"trim_horizon"}`), nil)
	if st == 404 && strings.Contains(string(b), "not an API endpoint") {
		t.Logf("this binary has no consumer groups: %s", b)
		return nil
	}
	if st != 201 {
		t.Fatalf("create consumer group app: %d %s", st, b)
	}
	recs := a.records("resharded")
	held := syncLeases(a, "w1")
	if len(held) == 0 {
		t.Fatal("worker w1 of group app holds no lease")
	}
	for shard, epoch := range held {
		seq := recs[shard][3].Seq
		a.rest("POST", groupPath+"/app/shards/"+shard+"/checkpoint", "application/json",
			fmt.Sprintf(`{"worker":"w1","epoch":%d,"sequence_number":%q}`, epoch, seq), 204)
	}
	return groupLeases(a)
}

// checkGroup checks that the consumer group kept its checkpoints, and that
// a new worker, once w1's leases have lapsed, takes them over.
func checkGroup(t *testing.T, a *api, e *Expect) {
	if e.Group == nil {
		return
	}
	got := groupLeases(a)
	for shard, want := range e.Group {
		if got[shard] != want {
			t.Errorf("consumer group app, shard %s: %+v after the upgrade, %+v before", shard, got[shard], want)
		}
	}
	if !testutil.Within(30*time.Second, func() bool { return len(syncLeases(a, "w2")) > 0 }) {
		t.Fatal("worker w2 of group app got no lease after w1's lapsed")
	}
}
