package web

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

var ckptJob = viewsJob("cp", "cp-in", 2, "")

// TestCheckpointsAndSavepointsAPI walks the checkpoint history, a
// savepoint, a stop with a savepoint and a start from it, and the errors
// of each.
func TestCheckpointsAndSavepointsAPI(t *testing.T) {
	ts := serverWithJob(t, ckptJob)
	put := `{"records":[{"key":"a","json":{"page":"/","ts":1700000000000}},{"key":"b","json":{"page":"/x","ts":1700000001000}}]}`
	if code, m := call(t, ts, "POST", "/api/v1/streams/cp-in/records", put); code != 200 {
		t.Fatalf("put: %d %v", code, m)
	}
	var cps []any
	testutil.Eventually(t, 20*time.Second, func() bool {
		code, m := call(t, ts, "GET", "/api/v1/jobs/cp/checkpoints", "")
		if code != 200 {
			t.Fatalf("checkpoints: %d %v", code, m)
		}
		cps, _ = m["checkpoints"].([]any)
		return len(cps) >= 2
	}, "fewer than 2 checkpoints: %v", cps)
	first := cps[0].(map[string]any)
	for _, f := range []string{"epoch", "time", "duration_ms", "held_ms", "size_bytes", "status"} {
		if _, ok := first[f]; !ok {
			t.Errorf("checkpoint lacks %q: %v", f, first)
		}
	}
	if first["status"] != "complete" {
		t.Errorf("status %v", first["status"])
	}
	// The job's own info carries the history too (the UI shows it).
	if _, m := call(t, ts, "GET", "/api/v1/jobs/cp", ""); m["checkpoints"] == nil {
		t.Errorf("job info has no checkpoints: %v", m)
	}

	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`runnel_job_checkpoint_epoch{job="cp"}`, `runnel_job_checkpoint_held_seconds{job="cp"}`,
		`runnel_job_checkpoint_size_bytes{job="cp"}`, `runnel_job_checkpoint_age_seconds{job="cp"}`, `runnel_job_checkpoints_failed{job="cp"} 0`} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	code, sp := call(t, ts, "POST", "/api/v1/jobs/cp/savepoints", "")
	if code != 201 || sp["name"] == nil || sp["epoch"] == nil {
		t.Fatalf("savepoint: %d %v", code, sp)
	}
	code, m := call(t, ts, "DELETE", "/api/v1/jobs/cp?savepoint=true", "")
	if code != 200 {
		t.Fatalf("stop with savepoint: %d %v", code, m)
	}
	stopSP, _ := m["savepoint"].(map[string]any)
	job, _ := m["job"].(map[string]any)
	if stopSP == nil || job["state"] != "stopped" {
		t.Fatalf("stop with savepoint answered %v", m)
	}
	name := stopSP["name"].(string)
	if code, m := call(t, ts, "GET", "/api/v1/savepoints", ""); code != 200 || len(m["savepoints"].([]any)) != 2 {
		t.Fatalf("list savepoints: %d %v", code, m)
	}
	if code, m := call(t, ts, "POST", "/api/v1/jobs/cp/savepoints", ""); code != 409 || !strings.Contains(fmt.Sprint(m), `"cp" is stopped; a savepoint is taken of a running job`) {
		t.Fatalf("savepoint of a stopped job: %d %v, want 409 saying it is stopped and what to do", code, m)
	}
	if code, m := call(t, ts, "DELETE", "/api/v1/jobs/cp?savepoint=maybe", ""); code != 400 {
		t.Fatalf("savepoint=maybe: %d %v, want 400", code, m)
	}

	// A changed file whose window has another id cannot use the state.
	renamed := strings.Replace(ckptJob, "id: per-page", "id: per-path", 1)
	code, m = call(t, ts, "POST", "/api/v1/jobs?savepoint="+name, renamed)
	if code != 409 || !strings.Contains(m["error"].(map[string]any)["message"].(string), `"per-page"`) {
		t.Fatalf("incompatible savepoint: %d %v, want 409 naming per-page", code, m)
	}
	if code, m := call(t, ts, "POST", "/api/v1/jobs?savepoint=nope-1", ckptJob); code != 404 {
		t.Fatalf("unknown savepoint: %d %v, want 404", code, m)
	}
	// A compatible change (a new sink) starts from the savepoint.
	changed := ckptJob + "# changed\n"
	if code, m := call(t, ts, "POST", "/api/v1/jobs?savepoint="+name, changed); code != 201 {
		t.Fatalf("start from savepoint: %d %v", code, m)
	}
	// The restored job continues from the savepoint's epoch.
	testutil.Eventually(t, 20*time.Second, func() bool {
		_, m := call(t, ts, "GET", "/api/v1/jobs/cp/checkpoints", "")
		cps, _ := m["checkpoints"].([]any)
		return len(cps) > 0 && cps[len(cps)-1].(map[string]any)["epoch"].(float64) > stopSP["epoch"].(float64)
	}, "the job started from the savepoint took no later checkpoint")
}
