package web

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

func testServer(t testing.TB) (*httptest.Server, *streams.Store) {
	t.Helper()
	st := openStore(t, t.TempDir())
	return serveAPI(t, Config{Store: st}), st
}

func call(t testing.TB, ts *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	ctype := ""
	if body != "" {
		ctype = "application/json"
	}
	resp, b := roundTrip(t, method, ts.URL+path, body, map[string]string{"Content-Type": ctype})
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %q", method, path, b)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: content type %q", method, path, ct)
		}
	}
	return resp.StatusCode, out
}

func errOf(out map[string]any) (code, field string) {
	e, _ := out["error"].(map[string]any)
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	return
}

func TestStreamsAPI(t *testing.T) {
	ts, _ := testServer(t)
	if c, out := call(t, ts, "POST", "/api/v1/streams", `{"name":"clicks","shards":2}`); c != 201 || out["name"] != "clicks" {
		t.Fatalf("create: %d %v", c, out)
	}
	c, out := call(t, ts, "POST", "/api/v1/streams/clicks/records",
		`{"records":[{"key":"a","data":"one"},{"key":"a","json":{"x": 1}},{"key":"b","data_base64":"AAEC"}]}`)
	if c != 200 {
		t.Fatalf("put: %d %v", c, out)
	}
	recs := out["records"].([]any)
	if len(recs) != 3 {
		t.Fatalf("put answered %d records", len(recs))
	}
	shardA := recs[0].(map[string]any)["shard"].(string)
	c, out = call(t, ts, "GET", "/api/v1/streams/clicks/records?shard="+shardA+"&from=trim_horizon", "")
	if c != 200 {
		t.Fatalf("read: %d %v", c, out)
	}
	got := out["records"].([]any)
	if got[0].(map[string]any)["data"] != "one" || got[1].(map[string]any)["data"] != `{"x":1}` {
		t.Fatalf("read back %v", got)
	}
	next := out["next_position"].(float64)

	// A waiting read wakes when a record arrives.
	done := make(chan map[string]any)
	go func() {
		_, o := call(t, ts, "GET", "/api/v1/streams/clicks/records?shard="+shardA+"&position="+jsonNum(next)+"&wait=10s", "")
		done <- o
	}()
	// The put must come while the read waits in the store, or the wake-up
	// is not what is tested.
	testutil.WaitBlocked(t, 10*time.Second, "github.com/runnel-dev/runnel/streams.(*Store).Wait")
	select {
	case o := <-done:
		t.Fatalf("a read at the end of the shard returned before any put: %v", o)
	default:
	}
	call(t, ts, "POST", "/api/v1/streams/clicks/records", `{"records":[{"key":"a","data":"late"}]}`)
	select {
	case o := <-done:
		if r := o["records"].([]any); len(r) != 1 || r[0].(map[string]any)["data"] != "late" {
			t.Fatalf("waiting read got %v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting read did not wake on put")
	}

	if c, out = call(t, ts, "POST", "/api/v1/streams/clicks/split", `{"shard":"shardId-000000000000"}`); c != 200 {
		t.Fatalf("split: %d %v", c, out)
	}
	if shards := out["shards"].([]any); len(shards) != 4 {
		t.Fatalf("after split: %d shards", len(shards))
	}
	if c, out = call(t, ts, "POST", "/api/v1/streams/clicks/merge", `{"shard":"shardId-000000000002","adjacent_shard":"shardId-000000000003"}`); c != 200 {
		t.Fatalf("merge: %d %v", c, out)
	}
	if c, out = call(t, ts, "POST", "/api/v1/streams/clicks/shard-count", `{"target":3}`); c != 200 || out["open_shards"].(float64) != 3 {
		t.Fatalf("resize: %d %v", c, out)
	}
	if c, out = call(t, ts, "GET", "/api/v1/streams", ""); c != 200 || len(out["streams"].([]any)) != 1 {
		t.Fatalf("list: %d %v", c, out)
	}
	if c, _ = call(t, ts, "DELETE", "/api/v1/streams/clicks", ""); c != 204 {
		t.Fatalf("delete: %d", c)
	}
	if c, _ = call(t, ts, "GET", "/api/v1/streams/clicks", ""); c != 404 {
		t.Fatalf("describe deleted: %d", c)
	}
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

func TestStreamsAPIErrors(t *testing.T) {
	ts, _ := testServer(t)
	call(t, ts, "POST", "/api/v1/streams", `{"name":"s","shards":1}`)
	cases := []struct {
		method, path, body string
		status             int
		code, field        string
	}{
		{"POST", "/api/v1/streams", `{"name":"s","shards":1}`, 409, "already_exists", "name"},
		{"POST", "/api/v1/streams", `{"name":"bad/name"}`, 400, "invalid_argument", "name"},
		{"POST", "/api/v1/streams", `{"name":"x","shards":0}`, 400, "invalid_argument", "shards"},
		{"POST", "/api/v1/streams", `{"name":"x","retention_hours":9000}`, 400, "invalid_argument", "retention_hours"},
		{"POST", "/api/v1/streams", `{"name":"x","shardz":1}`, 400, "invalid_json", "shardz"},
		{"POST", "/api/v1/streams", `{"name":"x","shards":"two"}`, 400, "invalid_json", "shards"},
		{"POST", "/api/v1/streams", `{"name":"x"} {}`, 400, "invalid_json", ""},
		{"GET", "/api/v1/streams/nope", ``, 404, "not_found", ""},
		{"POST", "/api/v1/streams/s/records", `{"records":[]}`, 400, "invalid_argument", "records"},
		{"POST", "/api/v1/streams/s/records", `{"records":[{"key":"","data":"x"}]}`, 400, "invalid_argument", "records[0].key"},
		{"POST", "/api/v1/streams/s/records", `{"records":[{"key":"` + strings.Repeat("é", 257) + `","data":"x"}]}`, 400, "invalid_argument", "records[0].key"},
		{"POST", "/api/v1/streams/s/records", `{"records":[{"key":"k","data":"x"},{"key":"k","data":"` + strings.Repeat("x", 1<<20+1) + `"}]}`, 400, "invalid_argument", "records[1].data"},
		{"POST", "/api/v1/streams/s/records", `{"records":[{"key":"k","json":"` + strings.Repeat("x", 1<<20) + `"}]}`, 400, "invalid_argument", "records[0].json"},
		{"POST", "/api/v1/streams/s/records", `{"records":[{"key":"k"}]}`, 400, "invalid_argument", "records[0]"},
		{"POST", "/api/v1/streams/s/records", `{"records":[{"key":"k","data_base64":"!!"}]}`, 400, "invalid_argument", "records[0].data_base64"},
		{"POST", "/api/v1/streams/nope/records", `{"records":[{"key":"k","data":"x"}]}`, 404, "not_found", ""},
		{"GET", "/api/v1/streams/s/records", ``, 400, "invalid_argument", "shard"},
		{"GET", "/api/v1/streams/s/records?shard=shardId-000000000009", ``, 404, "not_found", "shard"},
		{"GET", "/api/v1/streams/s/records?shard=shardId-000000000000&from=sideways", ``, 400, "invalid_argument", "from"},
		{"GET", "/api/v1/streams/s/records?shard=shardId-000000000000&limit=0", ``, 400, "invalid_argument", "limit"},
		{"GET", "/api/v1/streams/s/records?shard=shardId-000000000000&from=at_timestamp&timestamp=yesterday", ``, 400, "invalid_argument", "timestamp"},
		{"GET", "/api/v1/streams/s/records?shard=shardId-000000000000&from=at_sequence_number&sequence_number=12", ``, 400, "invalid_argument", "sequence_number"},
		{"POST", "/api/v1/streams/s/split", `{"shard":"shardId-000000000000","new_starting_hash_key":"0"}`, 400, "invalid_argument", "new_starting_hash_key"},
		{"POST", "/api/v1/streams/s/merge", `{"shard":"shardId-000000000000","adjacent_shard":"shardId-000000000007"}`, 404, "not_found", "adjacent_shard"},
		{"GET", "/api/v1/nothing", ``, 404, "not_found", ""},
	}
	for _, c := range cases {
		status, out := call(t, ts, c.method, c.path, c.body)
		code, field := errOf(out)
		if status != c.status || code != c.code || field != c.field {
			t.Errorf("%s %s %s: got %d %s field=%q (%v), want %d %s field=%q", c.method, c.path, c.body, status, code, field, out, c.status, c.code, c.field)
		}
	}
	big := `{"records":[{"key":"k","data":"` + strings.Repeat("x", 13<<20) + `"}]}`
	if status, out := call(t, ts, "POST", "/api/v1/streams/s/records", big); status != 413 {
		t.Errorf("oversized body: %d %v", status, out)
	}
	// Nothing above wrote a record.
	_, out := call(t, ts, "GET", "/api/v1/streams/s/records?shard=shardId-000000000000", "")
	if n := len(out["records"].([]any)); n != 0 {
		t.Fatalf("invalid requests wrote %d records", n)
	}
}

// FuzzStreamsAPI sends arbitrary bodies to the REST endpoints that take
// one: the server must never panic or answer 5xx, and must answer JSON.
func FuzzStreamsAPI(f *testing.F) {
	for _, s := range []string{`{"name":"s","shards":1}`, `{"records":[{"key":"k","data":"x"}]}`, `{"records":[{"key":"k","json":[1,2]}]}`,
		`{"shard":"shardId-000000000000"}`, `{"target":2}`, `{`, `[]`, `null`, `{"records":[{"key":"k","data_base64":"AA=="}]}`} {
		f.Add(s, uint8(0))
	}
	ts, _ := testServer(f)
	call(f, ts, "POST", "/api/v1/streams", `{"name":"s","shards":1}`)
	paths := []string{"/api/v1/streams", "/api/v1/streams/s/records", "/api/v1/streams/s/split", "/api/v1/streams/s/merge", "/api/v1/streams/s/shard-count"}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		path := paths[int(which)%len(paths)]
		resp, err := http.Post(ts.URL+path, "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, resp.StatusCode, b)
		}
		if !json.Valid(b) {
			t.Fatalf("POST %s %q: answer is not JSON: %q", path, body, b)
		}
	})
}
