package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/cluster"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// getJSON reads url's JSON answer into v and returns the status.
func getJSON(t testing.TB, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Logf("GET %s: %v", url, err)
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Errorf("GET %s: %v in %s", url, err, b)
		}
	}
	return resp.StatusCode
}

var listenRE = regexp.MustCompile(`"worker listening" addr=(\S+)`)

// listenAddr is the address a worker's log says it serves on.
func (w *workerProc) listenAddr(t testing.TB) string {
	t.Helper()
	var addr string
	testutil.Eventually(t, time.Minute, func() bool {
		b, _ := os.ReadFile(w.log.Name())
		if m := listenRE.FindSubmatch(b); m != nil {
			addr = string(m[1])
		}
		return addr != ""
	}, "worker %s never logged its --listen address", w.id)
	return addr
}

// tasksOf lists a worker's tasks in a cluster view as "stage:topic/partition".
func tasksOf(st *cluster.Status, worker string) []string {
	var out []string
	for _, w := range st.Workers {
		if w.ID == worker {
			for _, tk := range w.Tasks {
				out = append(out, fmt.Sprintf("%d:%s/%d", tk.Stage, tk.Topic, tk.Partition))
			}
		}
	}
	return out
}

func workerIDs(st *cluster.Status) []string {
	var ids []string
	for _, w := range st.Workers {
		ids = append(ids, w.ID)
	}
	return ids
}

// sumMetric sums the samples of a metric whose line contains every
// part, from a Prometheus text exposition.
func sumMetric(exposition, name string, parts ...string) (sum float64, found bool) {
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
			found = true
		}
	}
	return sum, found
}

func getText(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A job submitted to `runnel serve --cluster` runs on the server's worker
// and on a `runnel worker` of the same job: the whole-job view, from
// either of them, lists both workers and their tasks, the lag of every
// partition drains to 0 once the output is complete, the rebalances show
// the second worker joining, both export worker metrics, and stopping the
// job through the API takes the server's worker out of the group.
func TestServeClusterWholeJobView(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake, a server and a worker")
	}
	c := newWorkerCluster(t)
	srv, _ := c.serveJob(t)
	w2 := c.worker(t, "w2", "--session-timeout", "6s", "--log-level", "info")
	wURL := "http://" + w2.listenAddr(t)

	gen := &clickGen{rng: testutil.Rand(t, 1)}
	produceClicks(t, c.prod, gen.make(2000))
	produceEnd(t, c.prod, workerPartitions)

	// Both workers hold tasks of both stages' partitions between them.
	var view cluster.Status
	testutil.Eventually(t, 2*time.Minute, func() bool {
		view = cluster.Status{}
		if getJSON(t, srv.URL+"/api/v1/jobs/page-views/cluster", &view) != http.StatusOK {
			return false
		}
		all := slices.Concat(tasksOf(&view, "s1"), tasksOf(&view, "w2"))
		return len(tasksOf(&view, "s1")) > 0 && len(tasksOf(&view, "w2")) > 0 && len(all) == 2*workerPartitions
	}, "the cluster view never showed both workers with all %d tasks: %+v", 2*workerPartitions, view)
	if len(view.Stages) != 2 {
		t.Errorf("stages: %+v, want the source stage and the window's", view.Stages)
	}

	want := batchWindows(gen.all)
	got, order := readResults(t, c.kafka.Addr, len(want), 2*time.Minute)
	checkResults(t, got, want, order)

	// The lag of every partition drains to 0, seen from the worker too.
	testutil.Eventually(t, time.Minute, func() bool {
		view = cluster.Status{}
		if getJSON(t, wURL+"/api/v1/jobs/page-views/cluster", &view) != http.StatusOK || len(view.Partitions) != 2*workerPartitions {
			return false
		}
		for _, p := range view.Partitions {
			if p.Lag != 0 || p.End <= 0 {
				return false
			}
		}
		return view.Lag == 0
	}, "the lag never drained to 0: %+v", view.Partitions)
	if ids := workerIDs(&view); !slices.Equal(ids, []string{"s1", "w2"}) {
		t.Errorf("workers seen from w2: %v, want [s1 w2]", ids)
	}
	joined := false
	for _, rb := range view.Rebalances {
		joined = joined || (slices.Contains(rb.After, "s1") && slices.Contains(rb.After, "w2"))
	}
	if !joined {
		t.Errorf("no rebalance shows both workers after it: %+v", view.Rebalances)
	}

	// Metrics of both.
	for _, u := range []string{wURL, srv.URL} {
		m := getText(t, u+"/metrics")
		job := `job="page-views"`
		if v, _ := sumMetric(m, "runnel_worker_records_in_total", job); v <= 0 {
			t.Errorf("%s: runnel_worker_records_in_total is %v, want > 0", u, v)
		}
		if v, _ := sumMetric(m, "runnel_worker_transactions_total", job, `result="commit"`); v <= 0 {
			t.Errorf("%s: committed transactions %v, want > 0", u, v)
		}
		if v, _ := sumMetric(m, "runnel_worker_tasks", job); v <= 0 {
			t.Errorf("%s: runnel_worker_tasks %v, want > 0", u, v)
		}
		for _, name := range []string{"runnel_worker_commit_seconds_count", "runnel_worker_rebalances_total", "runnel_worker_partition_lag", "runnel_worker_records_out_total"} {
			if _, ok := sumMetric(m, name, job); !ok {
				t.Errorf("%s: no %s", u, name)
			}
		}
	}
	both := getText(t, srv.URL+"/metrics") + getText(t, wURL+"/metrics")
	if v, _ := sumMetric(both, "runnel_worker_restore_records_total", `job="page-views"`); v < 0 {
		t.Errorf("restore records %v", v)
	}
	// The clicks' event times are in November 2023: some task of the two
	// workers has passed a watermark of that time on.
	if v, ok := sumMetric(both, "runnel_worker_watermark_seconds", `job="page-views"`); !ok || v < 1.7e9 {
		t.Errorf("runnel_worker_watermark_seconds sums to %v (exported: %v), want a watermark in the clicks' time", v, ok)
	}

	// Stopping the job on the server takes its worker out of the group.
	if st, body := srv.Do("DELETE", "/api/v1/jobs/page-views", "", ""); st != http.StatusOK || !strings.Contains(string(body), `"state":"stopped"`) {
		t.Fatalf("stop: %d %s", st, body)
	}
	testutil.Eventually(t, time.Minute, func() bool {
		view = cluster.Status{}
		return getJSON(t, wURL+"/api/v1/jobs/page-views/cluster", &view) == http.StatusOK && slices.Equal(workerIDs(&view), []string{"w2"}) &&
			len(tasksOf(&view, "w2")) == 2*workerPartitions
	}, "after the stop, w2 did not hold every task alone: %+v", view.Workers)
	if st, _ := srv.Do("GET", "/api/v1/jobs/page-views/cluster", "", ""); st != http.StatusConflict {
		t.Errorf("cluster view of a stopped job on the server: %d, want 409 not_running", st)
	}
}
