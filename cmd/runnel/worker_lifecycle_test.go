package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// produceEndAt writes a record at event time ts into every partition, so
// every window before it fires.
func produceEndAt(t testing.TB, cl *kgo.Client, partitions int32, ts int64) {
	t.Helper()
	for p := range partitions {
		b, _ := json.Marshal(click{TS: ts, End: true})
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "clicks", Partition: p, Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func without(cs []click, page string) []click {
	var out []click
	for _, c := range cs {
		if c.Page != page {
			out = append(out, c)
		}
	}
	return out
}

// The lifecycle of a cluster job on `runnel serve --cluster`:
//   - checkpoints and savepoints are refused with a 409 saying why;
//   - stopped and resumed, it continues from its state: records written
//     while it was stopped count once, in the windows they belong to;
//   - upgraded (a new file deployed over it, operators keeping their
//     ids), it keeps its state and runs the new file from where the old
//     one stopped;
//   - restarted from the beginning, it drops its state and offsets and
//     computes everything again with the file it has.
//
// Each step's read-committed output equals the batch computations so far.
func TestServeClusterJobLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake and a server")
	}
	c := newWorkerCluster(t)
	srv, job := c.serveJob(t)
	seed := testutil.Seed(t)
	gen := &clickGen{rng: rand.New(rand.NewPCG(seed, 1))}
	a := gen.make(1500)
	produceClicks(t, c.prod, a)
	c.waitConsumed(t)

	for _, req := range [][3]string{
		{"POST", "/api/v1/jobs/page-views/savepoints", ""},
		{"GET", "/api/v1/jobs/page-views/checkpoints", ""},
		{"POST", "/api/v1/jobs/page-views/restart", `{"checkpoint": "1"}`},
	} {
		st, body := srv.Do(req[0], req[1], "application/json", req[2])
		if st != http.StatusConflict || !strings.Contains(string(body), `"cluster_job"`) || !strings.Contains(string(body), "changelog") {
			t.Errorf("%s %s on a cluster job: %d %s, want 409 cluster_job saying where its state is", req[0], req[1], st, body)
		}
	}
	if st, body := srv.Do("POST", "/api/v1/jobs/page-views/resume", "", ""); st != http.StatusConflict {
		t.Errorf("resume of a running cluster job: %d %s, want 409", st, body)
	}

	// Stop; records come while it is stopped; resume.
	if st, body := srv.Do("DELETE", "/api/v1/jobs/page-views", "", ""); st != http.StatusOK || !strings.Contains(string(body), `"state":"stopped"`) {
		t.Fatalf("stop: %d %s", st, body)
	}
	b := gen.make(1500)
	produceClicks(t, c.prod, b)
	if st, body := srv.Do("POST", "/api/v1/jobs/page-views/resume", "", ""); st != http.StatusOK || !strings.Contains(string(body), `"state":"running"`) {
		t.Fatalf("resume: %d %s", st, body)
	}
	produceEnd(t, c.prod, workerPartitions)
	first := batchWindows(gen.all)
	got, order := readResults(t, c.kafka.Addr, len(first), 3*time.Minute)
	checkResults(t, got, first, order)

	// Upgrade: the filter now drops page /p0; the window keeps its id,
	// so its state (and the group's offsets) carry over.
	upgraded := strings.Replace(job, `filter: "r => !r.end"`, `filter: "r => !r.end && r.page != '/p0'"`, 1)
	if st, body := srv.Do("PUT", "/api/v1/jobs/page-views", "application/yaml", upgraded); st != http.StatusOK || !strings.Contains(string(body), `"cluster":true`) {
		t.Fatalf("deploy the upgraded job: %d %s", st, body)
	}
	later := &clickGen{rng: rand.New(rand.NewPCG(seed, 2)), next: 1_800_000_100_000 - 1_700_000_000_000}
	cs := later.make(1000)
	produceClicks(t, c.prod, cs)
	produceEndAt(t, c.prod, workerPartitions, 1_900_000_000_000)
	// expect checks that the output is before's windows and then more's.
	expect := func(before, more []windowRow, after string) []windowRow {
		t.Helper()
		want := append(append([]windowRow(nil), before...), more...)
		sortRows(want)
		got, _ := readResults(t, c.kafka.Addr, len(want), 3*time.Minute)
		if d := testutil.Diff(want, got); d != "" {
			t.Errorf("after %s:\n%s", after, d)
		}
		return want
	}
	second := expect(first, batchWindows(without(cs, "/p0")),
		"the upgrade, the output is not the old job's windows plus the new job's over the new records")

	// The same file deployed from no state: everything computed again.
	everything := batchWindows(without(append(append([]click(nil), gen.all...), cs...), "/p0"))
	if st, body := srv.Do("PUT", "/api/v1/jobs/page-views?from=none", "application/yaml", upgraded); st != http.StatusOK || !strings.Contains(string(body), `"cluster":true`) {
		t.Fatalf("deploy the upgraded job from the beginning: %d %s", st, body)
	}
	third := expect(second, everything, "deploying the upgraded file from the beginning, the output is not everything computed again")

	// Restart from the beginning (as the CLI asks for it): state and
	// offsets dropped, everything computed again once more.
	if out, err := srv.CLI("jobs", "restart", "page-views", "--from-beginning"); err != nil || !strings.Contains(out, "restarted job page-views: running") {
		t.Fatalf("runnel jobs restart page-views --from-beginning: %v\n%s", err, out)
	}
	expect(third, everything, "the restart from the beginning, the output is not everything computed again")
}
