package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/cluster"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// With a cluster registry (a real one, on an in-process kfake), a job
// whose source is Kafka goes to the cluster: the API shows it as a
// cluster job, its cluster view lists this server's worker and tasks,
// stopping it stops the worker (the view answers not_running); a job of
// another source stays local.
func TestClusterJobsThroughTheAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake and a worker")
	}
	brokers := testsrv.Kafka(t, 2, "in", "out")
	dir := t.TempDir()
	st := openStore(t, dir)
	mgr := openJobs(t, st, dir)
	reg, err := cluster.NewRegistry(cluster.RegistryConfig{Brokers: brokers, Worker: cluster.Config{ID: "s1", SessionTimeout: 6 * time.Second, Log: quietLog}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reg.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("registry: %v", err)
		}
	})
	ts := serveAPI(t, Config{Store: st, Jobs: mgr, Cluster: reg})
	do := func(method, path, body string) (int, string) {
		resp, b := roundTrip(t, method, ts.URL+path, body, map[string]string{"Content-Type": "application/yaml"})
		return resp.StatusCode, string(b)
	}
	addr := strings.Join(brokers, ",")
	job := fmt.Sprintf(`name: cj
source:
  kafka: {brokers: [%[1]s], topics: [in]}
operators:
  - id: per-k
    window: {key: "r => r.k", tumbling: 1s, aggregate: {n: count}}
sinks:
  - {id: o, input: per-k, kafka: {brokers: [%[1]s], topic: out}}
`, addr)
	// Its JavaScript is evaluated at submit, as for a local job.
	badKey := strings.Replace(strings.Replace(job, `key: "r => r.k"`, "key: k", 1), "name: cj", "name: cj-bad", 1)
	if code, body := do("POST", "/api/v1/jobs", badKey); code != http.StatusBadRequest || !strings.Contains(body, `"code":"js_error"`) {
		t.Fatalf("submit of a cluster job whose key names no function: %d %s, want 400 with a js_error problem", code, body)
	}
	if code, body := do("POST", "/api/v1/jobs", job); code != http.StatusCreated || !strings.Contains(body, `"cluster":true`) {
		t.Fatalf("submit: %d %s", code, body)
	}
	if code, body := do("POST", "/api/v1/jobs", job); code != http.StatusConflict {
		t.Errorf("second submit of a running cluster job: %d %s, want 409", code, body)
	}
	if code, body := do("GET", "/api/v1/jobs/cj", ""); code != http.StatusOK || !strings.Contains(body, `"state":"running"`) {
		t.Errorf("get: %d %s", code, body)
	}
	var view cluster.Status
	testutil.Eventually(t, time.Minute, func() bool {
		code, body := do("GET", "/api/v1/jobs/cj/cluster", "")
		view = cluster.Status{}
		_ = json.Unmarshal([]byte(body), &view)
		return code == http.StatusOK && len(view.Workers) == 1 && view.Workers[0].ID == "s1" && len(view.Workers[0].Tasks) == 4
	}, "the cluster view never showed s1 with 4 tasks")
	if code, body := do("GET", "/api/v1/jobs", ""); !strings.Contains(body, `"id":"cj"`) {
		t.Errorf("list: %d %s", code, body)
	}

	// A job of another source stays local, and has no cluster view.
	local := "name: local\nsource: {generator: {rate: 10}}\nsinks:\n  - {id: l, input: source, log: {}}\n"
	if code, body := do("POST", "/api/v1/jobs", local); code != http.StatusCreated || strings.Contains(body, `"cluster"`) {
		t.Errorf("local submit: %d %s", code, body)
	}
	if code, _ := do("GET", "/api/v1/jobs/local/cluster", ""); code != http.StatusNotFound {
		t.Errorf("cluster view of a local job: %d, want 404", code)
	}

	if code, body := do("DELETE", "/api/v1/jobs/cj", ""); code != http.StatusOK || !strings.Contains(body, `"state":"stopped"`) {
		t.Fatalf("stop: %d %s", code, body)
	}
	if code, body := do("GET", "/api/v1/jobs/cj/cluster", ""); code != http.StatusConflict {
		t.Errorf("cluster view of a stopped job: %d %s, want 409", code, body)
	}

	// Lifecycle: no checkpoints or savepoints, a restart is from the
	// beginning, a resume runs it again.
	for _, req := range [][3]string{
		{"POST", "/api/v1/jobs/cj/savepoints", ""},
		{"GET", "/api/v1/jobs/cj/checkpoints", ""},
		{"POST", "/api/v1/jobs/cj/restart", `{"savepoint": "x"}`},
	} {
		if code, body := do(req[0], req[1], req[2]); code != http.StatusConflict || !strings.Contains(body, `"code":"cluster_job"`) {
			t.Errorf("%s %s: %d %s, want 409 cluster_job", req[0], req[1], code, body)
		}
	}
	if code, body := do("POST", "/api/v1/jobs/cj/restart", `{"from": "yesterday"}`); code != http.StatusBadRequest || !strings.Contains(body, `"field":"from"`) {
		t.Errorf("restart from yesterday: %d %s, want 400 naming from", code, body)
	}
	if code, body := do("POST", "/api/v1/jobs/cj/restart", `{"form": "beginning"}`); code != http.StatusBadRequest || !strings.Contains(body, `"field":"form"`) || !strings.Contains(body, `{\"from\": \"beginning\"}`) {
		t.Errorf("restart with a misspelt field: %d %s, want 400 naming the field and the body to send", code, body)
	}
	if code, body := do("PUT", "/api/v1/jobs/cj", strings.Replace(job, "name: cj", "name: other", 1)); code != http.StatusBadRequest {
		t.Errorf("deploy of another job's file: %d %s, want 400", code, body)
	}
	if code, body := do("POST", "/api/v1/jobs/cj/resume", ""); code != http.StatusOK || !strings.Contains(body, `"state":"running"`) {
		t.Errorf("resume: %d %s", code, body)
	}
	if code, body := do("DELETE", "/api/v1/jobs/cj", ""); code != http.StatusOK || !strings.Contains(body, `"state":"stopped"`) {
		t.Fatalf("stop again: %d %s", code, body)
	}
	if code, body := do("DELETE", "/api/v1/jobs/cj?purge=true", ""); code != http.StatusOK {
		t.Errorf("purge: %d %s", code, body)
	}
	if code, _ := do("GET", "/api/v1/jobs/cj", ""); code != http.StatusNotFound {
		t.Errorf("get after purge: %d, want 404", code)
	}
}
