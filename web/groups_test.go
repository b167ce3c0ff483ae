package web

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

func groupsServer(t *testing.T) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	st := openStore(t, dir)
	return serveAPI(t, Config{Store: st, Groups: openGroups(t, st, dir)})
}

// TestGroupsAPI walks a group's life over HTTP: create, sync, checkpoint,
// a stale worker's checkpoint refused with 409 lease_lost, bad input
// refused with 400 naming the field, release, leave, delete.
func TestGroupsAPI(t *testing.T) {
	ts := groupsServer(t)
	const base = "/api/v1/streams/clicks/consumer-groups"
	if c, out := call(t, ts, "POST", base, `{"name":"app"}`); c != 404 {
		t.Fatalf("group on a missing stream: %d %v", c, out)
	}
	call(t, ts, "POST", "/api/v1/streams", `{"name":"clicks","shards":2}`)
	for _, bad := range []struct{ body, field string }{
		{`{"name":"a b"}`, "name"},
		{`{"name":"app","lease_duration_ms":5}`, "lease_duration_ms"},
		{`{"name":"app","start":"middle"}`, "start"},
	} {
		if c, out := call(t, ts, "POST", base, bad.body); c != 400 {
			t.Errorf("create %s: %d %v, want 400", bad.body, c, out)
		} else if _, f := errOf(out); f != bad.field {
			t.Errorf("create %s: field %q, want %q", bad.body, f, bad.field)
		}
	}
	if c, out := call(t, ts, "POST", base, `{"name":"app","lease_duration_ms":200}`); c != 201 || out["lease_duration_ms"] != 200.0 {
		t.Fatalf("create: %d %v", c, out)
	}
	if c, out := call(t, ts, "POST", base, `{"name":"app"}`); c != 409 {
		t.Fatalf("create twice: %d %v", c, out)
	}
	c, out := call(t, ts, "POST", base+"/app/workers/w1/sync", "")
	leases, _ := out["leases"].([]any)
	if c != 200 || len(leases) != 2 {
		t.Fatalf("sync: %d %v", c, out)
	}
	l0 := leases[0].(map[string]any)
	shard, epoch := l0["shard"].(string), l0["epoch"].(float64)
	cpPath := base + "/app/shards/" + shard + "/checkpoint"
	if c, out := call(t, ts, "POST", cpPath, fmt.Sprintf(`{"worker":"w1","epoch":%v,"sequence_number":"49","sub_sequence_number":2}`, epoch)); c != 204 {
		t.Fatalf("checkpoint: %d %v", c, out)
	}
	for _, bad := range []struct{ body, field string }{
		{fmt.Sprintf(`{"worker":"w1","epoch":%v,"sequence_number":"x9"}`, epoch), "sequence_number"},
		{`{"worker":"w1","sequence_number":"9"}`, "epoch"},
		{fmt.Sprintf(`{"epoch":%v,"sequence_number":"9"}`, epoch), "worker"},
	} {
		if c, out := call(t, ts, "POST", cpPath, bad.body); c != 400 {
			t.Errorf("checkpoint %s: %d %v, want 400", bad.body, c, out)
		} else if _, f := errOf(out); f != bad.field {
			t.Errorf("checkpoint %s: field %q, want %q", bad.body, f, bad.field)
		}
	}
	// w1 stops syncing; once its leases expire w2 takes them over.
	var taken map[string]any
	testutil.Eventually(t, 10*time.Second, func() bool {
		_, out := call(t, ts, "POST", base+"/app/workers/w2/sync", "")
		if ls := out["leases"].([]any); len(ls) == 2 {
			taken = ls[0].(map[string]any)
		}
		return taken != nil
	}, "w2 never took w1's leases")
	if taken == nil || taken["epoch"].(float64) != epoch+1 || taken["sequence_number"] != "49" || taken["sub_sequence_number"] != 2.0 {
		t.Fatalf("w2 took %v, want %s at epoch %v from checkpoint 49/2", taken, shard, epoch+1)
	}
	c, out = call(t, ts, "POST", cpPath, fmt.Sprintf(`{"worker":"w1","epoch":%v,"sequence_number":"60"}`, epoch))
	if code, _ := errOf(out); c != 409 || code != "lease_lost" {
		t.Fatalf("stale checkpoint: %d %v, want 409 lease_lost", c, out)
	}
	c, out = call(t, ts, "POST", base+"/app/shards/"+shard+"/release", fmt.Sprintf(`{"worker":"w1","epoch":%v}`, epoch))
	if code, _ := errOf(out); c != 409 || code != "lease_lost" {
		t.Fatalf("stale release: %d %v, want 409 lease_lost", c, out)
	}
	if c, out := call(t, ts, "POST", base+"/app/shards/"+shard+"/release",
		fmt.Sprintf(`{"worker":"w2","epoch":%v,"sequence_number":"70"}`, epoch+1)); c != 204 {
		t.Fatalf("release: %d %v", c, out)
	}
	c, out = call(t, ts, "GET", base+"/app", "")
	if c != 200 || out["stale_refused"] != 2.0 {
		t.Fatalf("describe: %d %v, want 2 stale refusals", c, out)
	}
	for _, l := range out["leases"].([]any) {
		if l := l.(map[string]any); l["shard"] == shard && (l["owner"] != nil || l["sequence_number"] != "70") {
			t.Fatalf("released lease %v, want no owner and checkpoint 70", l)
		}
	}
	if c, out := call(t, ts, "DELETE", base+"/app/workers/w2", ""); c != 204 {
		t.Fatalf("leave: %d %v", c, out)
	}
	if c, out := call(t, ts, "GET", base, ""); c != 200 || len(out["consumer_groups"].([]any)) != 1 {
		t.Fatalf("list: %d %v", c, out)
	}
	if c, out := call(t, ts, "DELETE", base+"/app", ""); c != 204 {
		t.Fatalf("delete: %d %v", c, out)
	}
	if c, out := call(t, ts, "GET", base+"/app", ""); c != 404 {
		t.Fatalf("describe after delete: %d %v", c, out)
	}
}
