package web

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/runnel-dev/runnel/streams"
)

// fullOnce makes the next write of shard 1's segments meet a full disk.
type fullOnce struct {
	mu    sync.Mutex
	armed bool
}

func (f *fullOnce) String() string { return "shard 1's next segment write meets a full disk" }

func (f *fullOnce) MaybeError(op errorfs.Op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.armed && op.Kind == errorfs.OpFileWriteAt && strings.HasSuffix(op.Path, ".seg") && strings.Contains(op.Path, "/shardId-000000000001/") {
		f.armed = false
		return syscall.ENOSPC
	}
	return nil
}

// TestPutRecordsPartlyStored makes shard 1's write meet a full disk while
// shard 0's commits: the REST put answers 503 unavailable with each
// record's result, and a put of only the failed records stores each
// record once.
func TestPutRecordsPartlyStored(t *testing.T) {
	fault := &fullOnce{}
	st, err := streams.Open("/data", streams.Options{FS: errorfs.Wrap(vfs.NewMem(), fault), Logger: quietLog, DiskRetry: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := serveAPI(t, Config{Store: st})
	if c, out := call(t, ts, "POST", "/api/v1/streams", `{"name":"p","shards":2}`); c != 201 {
		t.Fatalf("create: %d %v", c, out)
	}
	body := func(idx []int) string {
		var recs []string
		for _, i := range idx {
			hk := "1"
			if i%2 == 1 {
				hk = "340282366920938463463374607431768211455"
			}
			recs = append(recs, fmt.Sprintf(`{"key":"k","data":"r%d","explicit_hash_key":%q}`, i, hk))
		}
		return `{"records":[` + strings.Join(recs, ",") + `]}`
	}
	fault.mu.Lock()
	fault.armed = true
	fault.mu.Unlock()
	resp, b := roundTrip(t, "POST", ts.URL+"/api/v1/streams/p/records", body([]int{0, 1, 2, 3, 4, 5}), map[string]string{"Content-Type": "application/json"})
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("partly stored put: %q: %v", b, err)
	}
	// Retryable as a put refused whole for a full disk is, and not a 2xx.
	if code, _ := errOf(out); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || code != "unavailable" ||
		out["failed_record_count"] != 3.0 || !strings.Contains(fmt.Sprint(out["error"]), "3 of the 6 records were not stored") {
		t.Fatalf("partly stored put: %d %v", resp.StatusCode, out)
	}
	var retry []int
	for i, r := range out["records"].([]any) {
		r := r.(map[string]any)
		e, _ := r["error"].(map[string]any)
		switch {
		case i%2 == 0 && (e != nil || r["sequence_number"] == nil || r["shard"] != "shardId-000000000000"):
			t.Fatalf("record %d (shard 0) not answered as stored: %v", i, r)
		case i%2 == 1 && (e == nil || e["code"] != "unavailable" || r["sequence_number"] != nil || r["shard"] != "shardId-000000000001" || strings.Contains(fmt.Sprint(e["message"]), "/data")):
			t.Fatalf("record %d (shard 1) not answered as failed for a full disk: %v", i, r)
		case i%2 == 1:
			retry = append(retry, i)
		}
	}
	if c, out := call(t, ts, "POST", "/api/v1/streams/p/records", body(retry)); c != 200 {
		t.Fatalf("retry of the failed records: %d %v", c, out)
	}
	count := map[string]int{}
	for _, sh := range []string{"shardId-000000000000", "shardId-000000000001"} {
		rr, err := st.Read("p", sh, 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rr.Records {
			count[string(r.Data)]++
		}
	}
	for i := 0; i < 6; i++ {
		if n := count[fmt.Sprintf("r%d", i)]; n != 1 || len(count) != 6 {
			t.Fatalf("record r%d stored %d times (all: %v), want once", i, n, count)
		}
	}
}
