package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runnel-dev/runnel/cluster"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// failuresSeen waits until the worker at url shows a failure of kind for
// worker id both in its metrics and in its whole-job view, and returns
// the view's failures of that kind.
func failuresSeen(t *testing.T, url, id, kind string) []cluster.Failure {
	t.Helper()
	var found []cluster.Failure
	var view cluster.Status
	testutil.Eventually(t, 3*time.Minute, func() bool {
		if v, _ := sumMetric(getText(t, url+"/metrics"), "runnel_worker_failures_total", `job="page-views"`, `kind="`+kind+`"`); v < 1 {
			return false
		}
		view = cluster.Status{}
		if getJSON(t, url+"/api/v1/jobs/page-views/cluster", &view) != http.StatusOK {
			return false
		}
		found = nil
		for _, w := range view.Workers {
			if w.ID != id {
				continue
			}
			for _, f := range w.Failures {
				if f.Kind == kind {
					found = append(found, f)
				}
			}
		}
		return len(found) > 0
	}, "no %s failure of worker %s in the metrics and the cluster view: %+v", kind, id, view.Workers)
	for _, f := range found {
		if time.Time(f.At).IsZero() || f.Text == "" {
			t.Errorf("failure without time or text: %+v", f)
		}
	}
	return found
}

// errorLogged checks that the worker's log holds an ERROR of kind.
func errorLogged(t *testing.T, w *workerProc, kind string) {
	t.Helper()
	b, _ := os.ReadFile(w.log.Name())
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, "kind="+kind) {
			return
		}
	}
	t.Errorf("worker %s logged no ERROR of kind %s:\n%s", w.id, kind, testutil.Tail(string(b), 3000))
}

// Snapshots that do not decode, and uploads to a snapshot store that is
// gone, do not stop the job (the changelogs hold the state) but are not
// silent: each is an ERROR, a runnel_worker_failures_total{kind} count and
// a failure in the worker's entry of the whole-job view; and the output
// still equals the batch computation.
func TestWorkerSnapshotFailuresAreVisible(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake, versitygw and a worker")
	}
	s3p := testsrv.StartS3(t, "snaps")
	for p := range workerPartitions {
		key := "runnel/page-views/per-page/" + strconv.Itoa(int(p))
		if _, err := s3p.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("snaps"), Key: aws.String(key),
			Body: strings.NewReader("not a snapshot")}); err != nil {
			t.Fatal(err)
		}
	}
	c := newWorkerCluster(t)
	gen := &clickGen{rng: testutil.Rand(t, 1)}
	snap := "s3://snaps/runnel?endpoint=" + s3p.Endpoint
	w := startWorkerEnv(t, c.bin, c.kafka.Addr, c.job, "w1", s3p.Env(), "--data", t.TempDir(), "--snapshot", snap,
		"--snapshot-every", "1", "--log-level", "info")
	url := "http://" + w.listenAddr(t)
	produceClicks(t, c.prod, gen.make(1000))

	bad := failuresSeen(t, url, "w1", cluster.FailSnapshotRestore)
	if !strings.Contains(bad[0].Text, "runnel/page-views/per-page/") || !strings.Contains(bad[0].Text, "bad snapshot") || bad[0].Task == "" {
		t.Errorf("the failure does not name the snapshot, the task and what is wrong: %+v", bad[0])
	}
	errorLogged(t, w, cluster.FailSnapshotRestore)

	c.waitConsumed(t)
	s3p.Kill()
	produceClicks(t, c.prod, gen.make(1000))
	up := failuresSeen(t, url, "w1", cluster.FailSnapshotUpload)
	if !strings.Contains(up[0].Text, "bucket snaps") {
		t.Errorf("the upload failure does not name its bucket: %+v", up[0])
	}
	errorLogged(t, w, cluster.FailSnapshotUpload)

	produceEnd(t, c.prod, workerPartitions)
	want := batchWindows(gen.all)
	got, order := readResults(t, c.kafka.Addr, len(want), 2*time.Minute)
	checkResults(t, got, want, order)
}

// A worker whose --data directory is corrupt runs without local state:
// its tasks restore from their changelogs, the output equals the batch
// computation, and the failure is an ERROR, a metric and an entry in the
// whole-job view, also as seen from another worker (through the status
// topic).
func TestWorkerCorruptLocalStateIsVisible(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake and two workers")
	}
	c := newWorkerCluster(t)
	gen := &clickGen{rng: testutil.Rand(t, 1)}
	w, data := c.consumedAndKilled(t, gen, 2000)
	// Overwrite every Pebble manifest of the local state with garbage.
	manifests, _ := filepath.Glob(filepath.Join(data, "live", "MANIFEST-*"))
	if len(manifests) == 0 {
		t.Fatalf("no Pebble manifest under %s", data)
	}
	for _, m := range manifests {
		if err := os.WriteFile(m, []byte("garbage, not a manifest"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w.start(c.bin)
	url := "http://" + w.listenAddr(t)
	produceClicks(t, c.prod, gen.make(500))
	fs := failuresSeen(t, url, "w1", cluster.FailLocalState)
	if !strings.Contains(fs[0].Text, data) {
		t.Errorf("the failure does not name the data directory %s: %+v", data, fs[0])
	}
	errorLogged(t, w, cluster.FailLocalState)

	// Another worker shows w1's failure from w1's report.
	w2 := c.worker(t, "w2", "--log-level", "info")
	failuresSeen2 := func() bool {
		var view cluster.Status
		if getJSON(t, "http://"+w2.listenAddr(t)+"/api/v1/jobs/page-views/cluster", &view) != http.StatusOK {
			return false
		}
		for _, wk := range view.Workers {
			if wk.ID == "w1" {
				for _, f := range wk.Failures {
					if f.Kind == cluster.FailLocalState {
						return true
					}
				}
			}
		}
		return false
	}
	testutil.Eventually(t, 3*time.Minute, failuresSeen2, "w2's cluster view never showed w1's local state failure")

	produceEnd(t, c.prod, workerPartitions)
	want := batchWindows(gen.all)
	got, order := readResults(t, c.kafka.Addr, len(want), 2*time.Minute)
	checkResults(t, got, want, order)
}
