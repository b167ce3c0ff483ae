package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Damage to the stream log at rest, against the real binary: a truncated
// segment, a deleted or damaged streams.json, a directory no metadata
// names. Each must be reported (ERROR log, metric, API), never silent.

// putN puts n records named prefix-i to a stream, 500 at a time, and
// returns the highest position acknowledged.
func putN(t *testing.T, srv *limited, stream, prefix string, n int) uint64 {
	t.Helper()
	var last uint64
	for i := 0; i < n; i += 500 {
		var recs []map[string]any
		for j := i; j < min(n, i+500); j++ {
			recs = append(recs, map[string]any{"key": fmt.Sprint(j), "data": fmt.Sprintf("%s-%d", prefix, j)})
		}
		st, _, b := srv.do("POST", "/api/v1/streams/"+stream+"/records", map[string]any{"records": recs})
		if st != 200 {
			t.Fatalf("put: %d %s", st, b)
		}
		var out struct {
			Records []struct {
				Position uint64 `json:"position"`
			} `json:"records"`
		}
		json.Unmarshal(b, &out)
		for _, r := range out.Records {
			last = max(last, r.Position)
		}
	}
	return last
}

// healthProblems returns the problems /healthz lists.
func healthProblems(t *testing.T, srv *limited) []map[string]any {
	t.Helper()
	st, _, b := srv.do("GET", "/healthz", nil)
	if st != 200 {
		t.Fatalf("/healthz: %d %s", st, b)
	}
	var h struct {
		Problems []map[string]any `json:"problems"`
	}
	json.Unmarshal(b, &h)
	return h.Problems
}

func hasProblem(ps []map[string]any, kind string) bool {
	for _, p := range ps {
		if p["kind"] == kind {
			return true
		}
	}
	return false
}

// metricValue returns the value of the first /metrics line starting with
// prefix, or "".
func metricValue(t *testing.T, srv *limited, prefix string) string {
	t.Helper()
	_, _, b := srv.do("GET", "/metrics", nil)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimSpace(l[len(prefix):])
		}
	}
	return ""
}

// oneSegment starts a server on a fresh data directory, puts n records
// (keys r0, r1, ...) into a new one-shard stream and stops the server. It
// returns the server, the last record's sequence counter and the path of
// the shard's one segment file. It skips the test in -short mode.
func oneSegment(t *testing.T, stream string, n int) (*limited, uint64, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integrity test skipped in -short mode")
	}
	data := t.TempDir()
	srv := newLimited(t, data)
	srv.Start()
	srv.CreateStream(stream, 1)
	last := putN(t, srv, stream, "r", n)
	srv.Stop()
	segs, _ := filepath.Glob(filepath.Join(data, "streams", stream+"-*", "shardId-000000000000", "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("want one segment, found %v", segs)
	}
	return srv, last, segs[0]
}

// TestTruncatedSegmentIsLoss cuts a shard's segment to 60% of its length
// after the server stopped: the records past the cut were acknowledged, so
// the next start must report lost records (an ERROR, the
// runnel_shard_records_lost metric, the shard's lost_records in the API
// and /healthz) and keep numbering new records after the lost ones.
func TestTruncatedSegmentIsLoss(t *testing.T) {
	srv, last, seg := oneSegment(t, "cut", 4096)
	st, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(seg, st.Size()*6/10); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	logs := srv.Logs()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "acknowledged records lost") {
		t.Errorf("no ERROR about lost records at start; logs:\n%s", logs)
	}
	if !hasProblem(healthProblems(t, srv), "lost_records") {
		t.Errorf("/healthz does not list the lost records")
	}
	if v := metricValue(t, srv, `runnel_shard_records_lost{shard="shardId-000000000000",stream="cut"} `); v == "" || v == "0" {
		t.Errorf("runnel_shard_records_lost for the shard is %q", v)
	}
	code, _, b := srv.do("GET", "/api/v1/streams/cut", nil)
	var d struct {
		Shards []struct {
			LostRecords []struct{ From, To uint64 } `json:"lost_records"`
		} `json:"shards"`
	}
	json.Unmarshal(b, &d)
	if code != 200 || len(d.Shards) != 1 || len(d.Shards[0].LostRecords) != 1 || d.Shards[0].LostRecords[0].To != last {
		t.Errorf("describe: %d %s; want the shard's lost_records to end at %d", code, b, last)
	}
	// New records are numbered after every acknowledged one.
	if next := putN(t, srv, "cut", "new", 10); next <= last {
		t.Errorf("a new record got position %d, at or below the last acknowledged %d: positions went backwards", next, last)
	}
	// The loss stays on record across a restart, without a new report.
	srv.Stop()
	srv.Start()
	code, _, b = srv.do("GET", "/api/v1/streams/cut", nil)
	if code != 200 || !strings.Contains(string(b), "lost_records") {
		t.Errorf("after a second restart the shard no longer shows its lost records: %s", b)
	}
	if next := putN(t, srv, "cut", "newer", 1); next <= last+10 {
		t.Errorf("positions went backwards after a second restart: %d", next)
	}
}

// TestTornTailIsNotLoss: a crash in the middle of a write (a tail cut
// inside records never acknowledged) is truncated as before, with no loss
// reported. The test appends half a frame of garbage after the last
// durable record.
func TestTornTailIsNotLoss(t *testing.T) {
	srv, _, seg := oneSegment(t, "torn", 100)
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{40, 0, 0, 0, 1, 2, 3})
	f.Close()
	srv.Start()
	if ps := healthProblems(t, srv); len(ps) > 0 {
		t.Errorf("a torn tail past the durable position was reported as a problem: %v", ps)
	}
	if got := srv.readAll("torn"); len(got) != 100 {
		t.Errorf("read %d records, want 100", len(got))
	}
}

// TestStreamsMetadataLoss deletes, then damages streams.json, then removes
// both it and its copy: the first two recover from streams.json.prev with
// an ERROR (and the streams and records are all there), the last refuses
// to start with a message naming the files. A stream directory no metadata
// names is reported.
func TestStreamsMetadataLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("integrity test skipped in -short mode")
	}
	data := t.TempDir()
	srv := newLimited(t, data)
	srv.Start()
	srv.CreateStream("a", 2)
	srv.CreateStream("b", 1)
	putN(t, srv, "a", "a", 100)
	putN(t, srv, "b", "b", 100)
	time.Sleep(5 * time.Second) // durable positions recorded twice: the copy holds both streams
	srv.Stop()
	meta := filepath.Join(data, "streams.json")
	check := func(what string) {
		t.Helper()
		logs := srv.Logs()
		if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "previous copy") {
			t.Errorf("%s: no ERROR about recovering the metadata; logs:\n%s", what, logs)
		}
		if !hasProblem(healthProblems(t, srv), "metadata_recovered") {
			t.Errorf("%s: /healthz does not list metadata_recovered", what)
		}
		if v := metricValue(t, srv, `runnel_store_problems{kind="metadata_recovered"} `); v != "1" {
			t.Errorf("%s: runnel_store_problems{kind=metadata_recovered} = %q", what, v)
		}
		for _, name := range []string{"a", "b"} {
			if got := srv.readAll(name); len(got) != 100 {
				t.Errorf("%s: stream %s has %d records, want 100", what, name, len(got))
			}
		}
	}

	if err := os.Remove(meta); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	check("streams.json deleted")
	srv.Stop()

	for _, damage := range []string{`{"version": 1, "streams": [`, `{"streams": []}`, `{"version": 1, "streams": [], "extra": true}`} {
		if err := os.WriteFile(meta, []byte(damage), 0o644); err != nil {
			t.Fatal(err)
		}
		srv.Start()
		check("streams.json damaged as " + damage)
		srv.Stop()
	}

	// A stream directory that no metadata names, holding a segment.
	orphan := filepath.Join(data, "streams", "ghost-1", "shardId-000000000000")
	os.MkdirAll(orphan, 0o755)
	os.WriteFile(filepath.Join(orphan, "00000000000000000001.seg"), []byte("RNLSEG01"), 0o644)
	srv.Start()
	if !hasProblem(healthProblems(t, srv), "orphan_directory") || !strings.Contains(srv.Logs(), "ghost-1") {
		t.Errorf("a stream directory no metadata names was not reported; logs:\n%s", srv.Logs())
	}
	srv.Stop()

	os.Remove(meta)
	os.Remove(meta + ".prev")
	err := srv.TryStart()
	if err == nil || !strings.Contains(err.Error(), "streams.json") || !strings.Contains(err.Error(), "both missing") {
		t.Errorf("with streams.json and its copy gone the server must refuse to start naming them; got %v", err)
	}
}
