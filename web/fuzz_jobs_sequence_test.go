package web

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/streams"
)

// FuzzJobsSequence runs sequences of job lifecycle operations over the
// REST API — submit, stop, stop with a savepoint, resume, restart from a
// checkpoint or a savepoint, deploy, savepoints, delete — interleaved with
// records put to the jobs' streams (good ones, and ones the jobs cannot
// decode), waits for checkpoints, and restarts of the whole server (the
// HTTP server, the jobs manager and the stream store closed and opened
// again on the same directory). Each input decodes to up to seqMaxSteps
// steps of three bytes (operation, job, argument) over three jobs reading
// two streams.
//
// A model keeps what the API promised, and every answer and every job's
// state is checked against it after each step:
//   - no 5xx but 503, and every error is a code of the table with its
//     status; each operation answers what docs/api.md says it does in the
//     job's state (a running job's name is not taken by a submit without
//     replace, a deploy of a file whose stateful operators changed is
//     refused, ...);
//   - a job's state is a documented one and the one the model allows: a
//     stopped job stays stopped across a server restart, a deleted job
//     never comes back, a running job runs after a restart — or is failed
//     with a reason, which the model allows only when its stream holds a
//     record it cannot decode and its file says on_error: fail;
//   - every savepoint the API named stays listed, across restarts and
//     deletes of its job;
//   - exactly-once output: each job's stream sink writes {id, g}, the
//     record's id and the generation of the job file (each submit and
//     deploy sends a new one). Between two points where the job starts
//     from an earlier state (a submit, a deploy from none, a restart from a
//     checkpoint or savepoint), each input id is in the output at most
//     once, and only ids put to the job's stream are.
func FuzzJobsSequence(f *testing.F) {
	// The seeds are seqSeeds, in testdata/fuzz/FuzzJobsSequence
	// (TestJobsSequenceSeeds keeps them the same).
	f.Fuzz(func(t *testing.T, prog []byte) {
		steps := decodeSteps(prog)
		if len(steps) == 0 {
			return
		}
		w := newSeqWorld(t)
		for _, s := range steps {
			w.step(s)
			w.checkJobs()
		}
		w.checkOutput()
		w.restart()
		w.checkJobs()
		w.checkOutput()
	})
}

// The operations of a step.
const (
	opSubmit = iota
	opSubmitReplace
	opStop
	opStopSavepoint
	opResume
	opRestartCheckpoint
	opRestartSavepoint
	opRestartNone
	opDeploy
	opDeployIncompatible
	opSavepoint
	opDelete
	opPutGood
	opPutBad
	opWaitCheckpoint
	opServerRestart
	numOps
)

var opNames = [numOps]string{"submit", "submit-replace", "stop", "stop-savepoint", "resume", "restart-checkpoint",
	"restart-savepoint", "restart-none", "deploy", "deploy-incompatible", "savepoint", "delete", "put-good", "put-bad",
	"wait-checkpoint", "server-restart"}

const seqMaxSteps = 20

// seqStep is one decoded step: an operation on job job (an index of
// seqJobs) with an argument.
type seqStep struct{ op, job, arg int }

func (s seqStep) String() string {
	if s.op == opPutGood || s.op == opPutBad {
		return fmt.Sprintf("%s %s %d", opNames[s.op], seqStreams[s.arg%len(seqStreams)], s.arg)
	}
	return fmt.Sprintf("%s %s %d", opNames[s.op], seqJobs[s.job].name, s.arg)
}

func decodeSteps(prog []byte) []seqStep {
	var out []seqStep
	for i := 0; i+3 <= len(prog) && len(out) < seqMaxSteps; i += 3 {
		out = append(out, seqStep{op: int(prog[i]) % numOps, job: int(prog[i+1]) % len(seqJobs), arg: int(prog[i+2])})
	}
	return out
}

// seqJobs are the jobs of a sequence and the streams they read.
var seqJobs = []struct{ name, stream string }{{"a", "s1"}, {"b", "s2"}, {"c", "s1"}}

var seqStreams = []string{"s1", "s2"}

// A job file's variants: which stateful operator id it has and what its
// source does with a record it cannot decode. Variants with the same
// window id fit each other's state.
var seqVariants = []struct{ window, onError string }{{"w", "fail"}, {"w", "skip"}, {"w2", "fail"}, {"w2", "skip"}}

// seqFile is job j's file in variant v, generation gen.
func seqFile(j, v, gen int) string {
	name, vr := seqJobs[j].name, seqVariants[v]
	return fmt.Sprintf(`name: %s
source: {stream: %s, shards: 2, on_error: %s}
operators:
  - {id: m, map: "r => ({id: r.id, g: %d})"}
  - id: %s
    input: m
    window: {key: "r => String(r.id %% 3)", tumbling: 1h, aggregate: {n: count}}
sinks:
  - {id: out, input: m, stream: {name: out-%s}}
  - {id: board, input: %s, dashboard: {}}
checkpoint: {every: 100ms}
`, name, seqJobs[j].stream, vr.onError, gen, vr.window, name, vr.window)
}

// Model states of a job.
const (
	mAbsent  = ""
	mRunning = "running"
	mStopped = "stopped"
	mFailed  = "failed"
)

// seqJob is the model of one job.
type seqJob struct {
	state   string
	variant int
	// seg is the job's current lineage: the generations of its files
	// whose output continues one state, and where in the output stream
	// (per shard) rows of those generations start to count.
	seg *seqSegment
	// segs are all lineages, oldest first.
	segs []*seqSegment
}

// codes is what a call on the job may answer: 404 when it is absent,
// running when it runs (or idle too, when it may be failing under the
// call), idle otherwise.
func (m *seqJob) codes(mayFail bool, running, idle int) []int {
	switch {
	case m.state == mAbsent:
		return []int{404}
	case m.state == mRunning && mayFail:
		return []int{running, idle}
	case m.state == mRunning:
		return []int{running}
	}
	return []int{idle}
}

type seqSegment struct {
	gens  map[int]bool
	start map[string]uint64 // shard -> first position of the lineage
}

type seqSavepoint struct {
	name   string
	window string // the stateful operator id of the file it was taken of
}

// seqWorld is a server over a data directory, and the model.
type seqWorld struct {
	t   *testing.T
	dir string
	st  *streams.Store
	mgr *jobs.Manager
	ts  *httptest.Server

	jobs       []seqJob
	savepoints []seqSavepoint
	poisoned   map[string]bool         // streams holding a record jobs cannot decode
	put        map[string]map[int]bool // ids put to each stream
	nextID     int
	gen        int
	// log is the steps so far with their answers' statuses, which a
	// failure prints; inStep says a step's requests are being sent.
	log    []string
	inStep bool
}

var seqClient = &http.Client{Timeout: 2 * time.Minute}

func newSeqWorld(t *testing.T) *seqWorld {
	w := &seqWorld{t: t, dir: t.TempDir(), jobs: make([]seqJob, len(seqJobs)), poisoned: map[string]bool{}, put: map[string]map[int]bool{}}
	w.open()
	t.Cleanup(w.close)
	for _, s := range seqStreams {
		w.expect("create stream "+s, "POST", "/api/v1/streams", `{"name":"`+s+`","shards":2}`, 201)
		w.put[s] = map[int]bool{}
	}
	return w
}

func (w *seqWorld) open() {
	st, err := streams.Open(w.dir, streams.Options{Logger: quietLog})
	if err != nil {
		w.fatalf("open the store: %v", err)
	}
	mgr, err := jobs.NewManager(jobs.ManagerConfig{Store: st, Dir: w.dir + "/jobs", Logger: quietLog})
	if err != nil {
		st.Close()
		w.fatalf("open the jobs: %v", err)
	}
	<-mgr.Booted() // its jobs start in the background
	w.st, w.mgr = st, mgr
	w.ts = httptest.NewServer(New(Config{Store: st, Logger: quietLog, Jobs: mgr}))
}

func (w *seqWorld) close() {
	if w.ts == nil {
		return
	}
	w.ts.Close()
	w.mgr.Close()
	w.st.Close()
	w.ts = nil
}

// restart closes the server, its jobs and its store, and opens them again
// on the same directory. Savepoints listed before are listed after.
// A job that is not running lists the same newest checkpoint after.
func (w *seqWorld) restart() {
	before := w.listSavepoints()
	latest := map[int]uint64{}
	for j := range seqJobs {
		if st := w.jobs[j].state; st == mStopped || st == mFailed {
			latest[j], _ = w.latestCheckpoint(j)
		}
	}
	w.close()
	w.open()
	after := w.listSavepoints()
	for _, n := range before {
		if !slices.Contains(after, n) {
			w.fatalf("savepoint %s was listed before the server restarted, not after (%v)", n, after)
		}
	}
	for j, e := range latest {
		if got, _ := w.latestCheckpoint(j); got != e {
			w.fatalf("job %s (%s) listed checkpoint %d as its newest before the server restarted, %d after", seqJobs[j].name, w.jobs[j].state, e, got)
		}
	}
}

func (w *seqWorld) fatalf(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("%s\nsteps:\n  %s", fmt.Sprintf(format, args...), strings.Join(w.log, "\n  "))
}

// call sends a request and checks that its answer is a 2xx or an error of
// the table with its status, never a 5xx but 503. It returns the status,
// the error code ("" for a 2xx) and the body.
func (w *seqWorld) call(method, path, body string) (int, string, []byte) {
	w.t.Helper()
	req, err := http.NewRequest(method, w.ts.URL+path, strings.NewReader(body))
	if err != nil {
		w.fatalf("%s %s: %v", method, path, err)
	}
	if ct := bodyType(body); ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := seqClient.Do(req)
	if err != nil {
		w.fatalf("%s %s: %v", method, path, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		w.fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	if w.inStep && method != "GET" {
		w.log[len(w.log)-1] += fmt.Sprintf(" %d", resp.StatusCode)
	}
	if resp.StatusCode < 300 {
		if !json.Valid(b) && len(b) > 0 {
			w.fatalf("%s %s: %d answer is not JSON: %q", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode, "", b
	}
	var out struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Error == nil {
		w.fatalf("%s %s: %d answer is not a JSON error: %q", method, path, resp.StatusCode, b)
	}
	if st, ok := errorStatus[out.Error.Code]; !ok || st != resp.StatusCode {
		w.fatalf("%s %s: %d with code %q, not a code of the table with that status: %s", method, path, resp.StatusCode, out.Error.Code, b)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		w.fatalf("%s %s: %d: %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, out.Error.Code, b
}

// expect calls and fails unless the answer's status is one of want; it
// returns the status and the body.
func (w *seqWorld) expect(what, method, path, body string, want ...int) (int, []byte) {
	w.t.Helper()
	code, _, b := w.call(method, path, body)
	if !slices.Contains(want, code) {
		w.fatalf("%s: %s %s: %d %s, want %v", what, method, path, code, b, want)
	}
	return code, b
}

// observe reads job j's state from the API ("" when it is not found), with
// the reason of a failed job.
func (w *seqWorld) observe(j int) (state, reason string) {
	w.t.Helper()
	code, b := w.expect("get job", "GET", "/api/v1/jobs/"+seqJobs[j].name, "", 200, 404)
	if code == 404 {
		return mAbsent, ""
	}
	var in struct{ State, Reason string }
	if err := json.Unmarshal(b, &in); err != nil {
		w.fatalf("get job %s: %v in %s", seqJobs[j].name, err, b)
	}
	return in.State, in.Reason
}

// mayFail says whether job j, running in the model, may have failed: its
// stream holds a record it cannot decode, and its file fails on those.
func (w *seqWorld) mayFail(j int) bool {
	return w.jobs[j].state == mRunning && w.poisoned[seqJobs[j].stream] && seqVariants[w.jobs[j].variant].onError == "fail"
}

// checkJobs checks every job's state against the model, and takes a
// failure the model allows into it.
func (w *seqWorld) checkJobs() {
	w.t.Helper()
	for j := range seqJobs {
		got, reason := w.observe(j)
		m := &w.jobs[j]
		switch {
		case got == m.state && (got != mFailed || reason != ""):
		case got == mFailed && reason != "" && w.mayFail(j):
			m.state = mFailed
		default:
			w.fatalf("job %s is %q (reason %q); the model says %q", seqJobs[j].name, got, reason, m.state)
		}
	}
	var list struct{ Jobs []struct{ ID string } }
	_, b := w.expect("list jobs", "GET", "/api/v1/jobs", "", 200)
	if err := json.Unmarshal(b, &list); err != nil {
		w.fatalf("list jobs: %v", err)
	}
	var ids, want []string
	for _, in := range list.Jobs {
		ids = append(ids, in.ID)
	}
	for j := range seqJobs {
		if w.jobs[j].state != mAbsent {
			want = append(want, seqJobs[j].name)
		}
	}
	if !slices.Equal(ids, want) {
		w.fatalf("jobs listed: %v, the model has %v", ids, want)
	}
	listed := w.listSavepoints()
	for _, sp := range w.savepoints {
		if !slices.Contains(listed, sp.name) {
			w.fatalf("savepoint %s is not listed (%v)", sp.name, listed)
		}
	}
}

func (w *seqWorld) listSavepoints() []string {
	w.t.Helper()
	var out struct{ Savepoints []struct{ Name string } }
	_, b := w.expect("list savepoints", "GET", "/api/v1/savepoints", "", 200)
	if err := json.Unmarshal(b, &out); err != nil {
		w.fatalf("list savepoints: %v", err)
	}
	var names []string
	for _, sp := range out.Savepoints {
		names = append(names, sp.Name)
	}
	return names
}

// addSavepoint takes the savepoint an answer names into the model.
func (w *seqWorld) addSavepoint(j int, name string) {
	if name == "" {
		w.fatalf("an answer named a savepoint without a name")
	}
	for _, sp := range w.savepoints {
		if sp.name == name {
			w.fatalf("a new savepoint has the name of an earlier one, %s", name)
		}
	}
	w.savepoints = append(w.savepoints, seqSavepoint{name: name, window: seqVariants[w.jobs[j].variant].window})
}

// outPositions are the end positions of job j's output stream's shards.
func (w *seqWorld) outPositions(j int) map[string]uint64 {
	pos := map[string]uint64{}
	info, err := w.st.DescribeStream("out-" + seqJobs[j].name)
	if err != nil {
		return pos
	}
	for _, sh := range info.Shards {
		pos[sh.ID] = sh.LastSeq + 1
	}
	return pos
}

// newLineage starts a lineage of job j at the output stream's end: what
// the job writes from here may repeat what it wrote before.
func (w *seqWorld) newLineage(j int, gen int) {
	s := &seqSegment{gens: map[int]bool{gen: true}, start: w.outPositions(j)}
	w.jobs[j].seg = s
	w.jobs[j].segs = append(w.jobs[j].segs, s)
}

// continueLineage carries job j's lineage over to file generation gen.
func (w *seqWorld) continueLineage(j int, gen int) {
	if w.jobs[j].seg == nil {
		w.newLineage(j, gen)
		return
	}
	w.jobs[j].seg.gens[gen] = true
}

// breakLineage starts a lineage of job j's current generations at the
// output stream's end (a restart from an earlier state).
func (w *seqWorld) breakLineage(j int) {
	old := w.jobs[j].seg
	s := &seqSegment{gens: map[int]bool{}, start: w.outPositions(j)}
	if old != nil {
		for g := range old.gens {
			s.gens[g] = true
		}
	}
	w.jobs[j].seg = s
	w.jobs[j].segs = append(w.jobs[j].segs, s)
}

// checkOutput reads every job's output stream: each row belongs to the
// newest lineage with its generation that started at or before it, and
// within a lineage each input id is there at most once, and was put to
// the job's stream.
func (w *seqWorld) checkOutput() {
	w.t.Helper()
	for j := range seqJobs {
		name := "out-" + seqJobs[j].name
		info, err := w.st.DescribeStream(name)
		if err != nil {
			continue
		}
		seen := map[*seqSegment]map[int]uint64{}
		for _, sh := range info.Shards {
			for from := uint64(0); ; {
				res, err := w.st.Read(name, sh.ID, from, 0, 0)
				if err != nil {
					w.fatalf("read %s %s: %v", name, sh.ID, err)
				}
				for _, r := range res.Records {
					var row struct{ ID, G int }
					if err := json.Unmarshal(r.Data, &row); err != nil {
						w.fatalf("%s %s@%d: %v in %q", name, sh.ID, r.Seq, err, r.Data)
					}
					if !w.put[seqJobs[j].stream][row.ID] {
						w.fatalf("%s %s@%d holds id %d, never put to %s", name, sh.ID, r.Seq, row.ID, seqJobs[j].stream)
					}
					var seg *seqSegment
					for _, s := range w.jobs[j].segs {
						if s.gens[row.G] && r.Seq >= s.start[sh.ID] {
							seg = s
						}
					}
					if seg == nil {
						w.fatalf("%s %s@%d: row %s of no lineage of the model", name, sh.ID, r.Seq, r.Data)
					}
					if seen[seg] == nil {
						seen[seg] = map[int]uint64{}
					}
					if p, dup := seen[seg][row.ID]; dup {
						w.fatalf("%s: id %d written twice in one lineage (%s@%d and @%d, generation %d)", name, row.ID, sh.ID, p, r.Seq, row.G)
					}
					seen[seg][row.ID] = r.Seq
				}
				if len(res.Records) == 0 || res.Next <= from {
					break
				}
				from = res.Next
			}
		}
	}
}

// step runs one step against the server and the model.
func (w *seqWorld) step(s seqStep) {
	w.t.Helper()
	w.log = append(w.log, s.String()+":")
	w.inStep = true
	defer func() { w.inStep = false }()
	j := s.job
	m := &w.jobs[j]
	name := seqJobs[j].name
	base := "/api/v1/jobs/" + name
	what := s.String()
	mayFail := w.mayFail(j)
	notRunning := m.state == mStopped || m.state == mFailed
	switch s.op {
	case opSubmit, opSubmitReplace:
		replace := s.op == opSubmitReplace
		v := s.arg % len(seqVariants)
		w.gen++
		path := "/api/v1/jobs"
		if replace {
			path += "?replace=true"
		}
		want := []int{201}
		switch {
		case m.state == mRunning && replace && mayFail:
			want = []int{201, 409}
		case m.state == mRunning, notRunning && !replace:
			want = []int{409}
		}
		code, _ := w.expect(what, "POST", path, seqFile(j, v, w.gen), want...)
		if code == 201 {
			m.state, m.variant = mRunning, v
			w.newLineage(j, w.gen)
		}
	case opStop:
		if m.state == mAbsent {
			w.expect(what, "DELETE", base, "", 404)
			return
		}
		w.expect(what, "DELETE", base, "", 200)
		m.state = mStopped
	case opStopSavepoint:
		want := m.codes(mayFail, 200, 409)
		code, b := w.expect(what, "DELETE", base+"?savepoint=true", "", want...)
		switch {
		case code == 200:
			var out struct{ Savepoint struct{ Name string } }
			json.Unmarshal(b, &out)
			w.addSavepoint(j, out.Savepoint.Name)
			m.state = mStopped
		case code == 409 && m.state == mRunning:
			// The job failed under the savepoint: it is stopped (the
			// stop came first) or failed.
			if got, _ := w.observe(j); got == mStopped || got == mFailed {
				m.state = got
			}
		}
	case opResume:
		want := m.codes(mayFail, 409, 200)
		if code, _ := w.expect(what, "POST", base+"/resume", "", want...); code == 200 {
			m.state = mRunning
		}
	case opRestartCheckpoint:
		epoch, ok := w.latestCheckpoint(j)
		if !ok {
			epoch = 1 + uint64(s.arg%4)
		}
		want := []int{404}
		switch {
		case m.state == mRunning && mayFail:
			want = []int{409, 200, 404}
		case m.state == mRunning:
			want = []int{409}
		case notRunning && ok:
			want = []int{200}
		}
		if notRunning {
			w.breakLineage(j)
		}
		if code, _ := w.expect(what, "POST", base+"/restart", fmt.Sprintf(`{"checkpoint":"%d"}`, epoch), want...); code == 200 {
			if m.state == mRunning {
				w.breakLineage(j)
			}
			m.state = mRunning
		}
	case opRestartSavepoint:
		sp := seqSavepoint{name: "nope"}
		if len(w.savepoints) > 0 {
			sp = w.savepoints[s.arg%len(w.savepoints)]
		}
		fits := sp.window == seqVariants[m.variant].window
		// Restart looks up the job, refuses a running one, then looks up
		// the savepoint and checks that the job's file fits it.
		var want []int
		switch {
		case m.state == mAbsent:
			want = []int{404}
		case m.state == mRunning && mayFail:
			want = []int{409, 404, 200}
		case m.state == mRunning:
			want = []int{409}
		case sp.name == "nope":
			want = []int{404}
		case fits:
			want = []int{200}
		default:
			want = []int{409}
		}
		if notRunning {
			w.breakLineage(j)
		}
		code, _, b := w.call("POST", base+"/restart", `{"savepoint":"`+sp.name+`"}`)
		if !slices.Contains(want, code) {
			w.fatalf("%s (savepoint %s of %s, job %s): %d %s, want %v", what, sp.name, sp.window, seqVariants[m.variant].window, code, b, want)
		}
		if code == 200 {
			if m.state == mRunning {
				w.breakLineage(j)
			}
			m.state = mRunning
		}
	case opRestartNone:
		w.expect(what, "POST", base+"/restart", `{}`, 400)
	case opDeploy, opDeployIncompatible:
		v := s.arg % len(seqVariants)
		fromNone := s.op == opDeployIncompatible && s.arg&0x80 != 0
		fits := seqVariants[v].window == seqVariants[m.variant].window
		if s.op == opDeployIncompatible && fits {
			v ^= 2 // the other window id
			fits = false
		}
		w.gen++
		path := base
		if fromNone {
			path += "?from=none"
		}
		want := []int{200}
		switch {
		case m.state == mAbsent:
			want = []int{404}
		case !fits && !fromNone:
			want = []int{409}
		case m.state == mRunning && mayFail && !fromNone:
			want = []int{200, 409}
		}
		code, b := w.expect(what, "PUT", path, seqFile(j, v, w.gen), want...)
		switch {
		case code == 200:
			var out struct{ Savepoint string }
			json.Unmarshal(b, &out)
			if out.Savepoint != "" {
				w.addSavepoint(j, out.Savepoint)
			}
			m.variant = v
			if fromNone {
				w.newLineage(j, w.gen)
			} else {
				w.continueLineage(j, w.gen)
			}
			m.state = mRunning
		case code == 409 && fits && m.state == mRunning:
			// The job failed under the deploy's savepoint.
			if got, _ := w.observe(j); got == mStopped || got == mFailed {
				m.state = got
			}
		}
	case opSavepoint:
		want := m.codes(mayFail, 201, 409)
		if code, b := w.expect(what, "POST", base+"/savepoints", "", want...); code == 201 {
			var out struct{ Name string }
			json.Unmarshal(b, &out)
			w.addSavepoint(j, out.Name)
		}
	case opDelete:
		want := m.codes(mayFail, 409, 200)
		if code, _ := w.expect(what, "DELETE", base+"?purge=true", "", want...); code == 200 {
			m.state = mAbsent
			m.seg = nil
		}
	case opPutGood:
		stream := seqStreams[s.arg%len(seqStreams)]
		var recs []string
		for i := range 1 + s.arg%7 {
			w.nextID++
			w.put[stream][w.nextID] = true
			recs = append(recs, fmt.Sprintf(`{"key":"k%d","json":{"id":%d}}`, (s.arg+i)%5, w.nextID))
		}
		w.expect(what, "POST", "/api/v1/streams/"+stream+"/records", `{"records":[`+strings.Join(recs, ",")+`]}`, 200)
	case opPutBad:
		stream := seqStreams[s.arg%len(seqStreams)]
		w.expect(what, "POST", "/api/v1/streams/"+stream+"/records", fmt.Sprintf(`{"records":[{"key":"k%d","data":"not JSON"}]}`, s.arg%5), 200)
		w.poisoned[stream] = true
	case opWaitCheckpoint:
		w.waitCheckpoint(j)
	case opServerRestart:
		w.restart()
	}
}

// latestCheckpoint is the newest complete checkpoint job j lists.
func (w *seqWorld) latestCheckpoint(j int) (uint64, bool) {
	code, _, b := w.call("GET", "/api/v1/jobs/"+seqJobs[j].name+"/checkpoints", "")
	if code != 200 {
		return 0, false
	}
	var out struct {
		Checkpoints []struct {
			Epoch  uint64
			Status string
		}
	}
	if err := json.Unmarshal(b, &out); err != nil {
		w.fatalf("checkpoints of %s: %v", seqJobs[j].name, err)
	}
	var latest uint64
	for _, c := range out.Checkpoints {
		if c.Status == "complete" && c.Epoch > latest {
			latest = c.Epoch
		}
	}
	return latest, latest > 0
}

// waitCheckpoint waits (a bounded poll) until running job j lists a
// checkpoint newer than the newest it listed when the wait began.
func (w *seqWorld) waitCheckpoint(j int) {
	if w.jobs[j].state != mRunning {
		return
	}
	first, _ := w.latestCheckpoint(j)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if e, _ := w.latestCheckpoint(j); e > first {
			return
		}
		if got, _ := w.observe(j); got != mRunning {
			return // checkJobs judges the state
		}
		time.Sleep(20 * time.Millisecond)
	}
	w.fatalf("job %s ran 20s without a new checkpoint (every 100ms) after epoch %d", seqJobs[j].name, first)
}

// seqSeeds are hand-written sequences covering every operation.
var seqSeeds = [][]byte{
	seqProg(opSubmit, 0, 0, opPutGood, 0, 4, opWaitCheckpoint, 0, 0, opStop, 0, 0, opResume, 0, 0,
		opPutGood, 0, 2, opWaitCheckpoint, 0, 0, opServerRestart, 0, 0, opWaitCheckpoint, 0, 0, opSubmit, 0, 1),
	seqProg(opSubmit, 0, 0, opSubmit, 1, 1, opPutGood, 0, 3, opPutGood, 1, 5, opStopSavepoint, 0, 0,
		opSavepoint, 1, 0, opRestartSavepoint, 0, 0, opRestartSavepoint, 0, 1, opDeploy, 1, 1, opDeployIncompatible, 1, 0,
		opServerRestart, 0, 0, opRestartNone, 0, 0),
	seqProg(opSubmit, 2, 0, opPutGood, 0, 6, opWaitCheckpoint, 2, 0, opStop, 2, 0, opRestartCheckpoint, 2, 0,
		opPutBad, 0, 0, opWaitCheckpoint, 2, 0, opSubmitReplace, 2, 1, opResume, 2, 0, opDeploy, 2, 0,
		opServerRestart, 0, 0, opDelete, 2, 0, opStop, 2, 0, opDelete, 2, 0, opSubmit, 2, 1),
	seqProg(opSubmit, 0, 0, opSubmit, 2, 0, opPutGood, 0, 2, opPutBad, 0, 2, opSavepoint, 0, 0,
		opDeployIncompatible, 2, 0x80, opServerRestart, 0, 0, opDelete, 0, 0, opStop, 0, 0, opDelete, 0, 0,
		opServerRestart, 0, 0, opSubmit, 0, 1, opPutGood, 0, 4, opWaitCheckpoint, 0, 0),
}

func seqProg(b ...int) []byte {
	out := make([]byte, len(b))
	for i, v := range b {
		out[i] = byte(v)
	}
	return out
}

// TestSavepointOfJobFailingOnARecord: a savepoint is taken just as a
// record the job cannot decode makes it fail. The answer is the
// savepoint, or 409 not_running when the failure came first or under the
// savepoint's checkpoint; it was 500 when the checkpoint saw the failure
// before the job's state did.
func TestSavepointOfJobFailingOnARecord(t *testing.T) {
	for i := range 10 {
		w := newSeqWorld(t)
		w.step(seqStep{op: opSubmit, job: 0})
		w.step(seqStep{op: opPutGood, job: 0, arg: 2})
		w.step(seqStep{op: opPutBad, job: 0})
		code, ecode, b := w.call("POST", "/api/v1/jobs/a/savepoints", "")
		if code != 201 && !(code == 409 && ecode == "not_running") {
			t.Fatalf("try %d: savepoint: %d %s", i, code, b)
		}
		w.close()
	}
}

// TestJobsSequenceSeeds: the seeds use every operation, and
// testdata/fuzz/FuzzJobsSequence holds them (go test -run
// TestJobsSequenceSeeds ./web/ -args -seq.write writes them).
func TestJobsSequenceSeeds(t *testing.T) {
	used := map[int]bool{}
	dir := filepath.Join("testdata", "fuzz", "FuzzJobsSequence")
	for i, p := range seqSeeds {
		for _, s := range decodeSteps(p) {
			used[s.op] = true
		}
		file := filepath.Join(dir, fmt.Sprintf("seed-%d", i))
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", p)
		if *seqWrite {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := os.ReadFile(file); err != nil || string(got) != want {
			t.Errorf("%s is not seed %d (%v): write the seeds with -args -seq.write", file, i, err)
		}
	}
	for op := range numOps {
		if !used[op] {
			t.Errorf("no seed does %s", opNames[op])
		}
	}
}

var seqWrite = flag.Bool("seq.write", false, "write FuzzJobsSequence's seeds to testdata")

// TestStoppedJobListsCheckpointsAfterServerRestart: a stopped job lists
// the complete checkpoints its store keeps after the server restarted,
// and restarts from the newest; it listed none, so a restart from a
// checkpoint had no epoch to name.
func TestStoppedJobListsCheckpointsAfterServerRestart(t *testing.T) {
	w := newSeqWorld(t)
	for _, s := range []seqStep{{op: opSubmit}, {op: opPutGood, arg: 4}, {op: opWaitCheckpoint}, {op: opStop}} {
		w.step(s)
	}
	latest, ok := w.latestCheckpoint(0)
	if !ok {
		w.fatalf("a stopped job lists no checkpoint")
	}
	w.restart()
	if got, _ := w.latestCheckpoint(0); got != latest {
		w.fatalf("after the server restarted the newest checkpoint listed is %d, not %d", got, latest)
	}
	w.expect("restart from it", "POST", "/api/v1/jobs/a/restart", fmt.Sprintf(`{"checkpoint":"%d"}`, latest), 200)
}

// TestRestartFromAnotherJobsSavepointWritesNoneOfItsOutput: job a
// restarts from a savepoint of job b, taken while b wrote to its stream
// sink. What b's sink had staged in the savepoint is b's output, which b
// commits itself: a writes none of it to its own output stream. It did:
// a's sink committed b's staged records, ids a never read, to out-a.
func TestRestartFromAnotherJobsSavepointWritesNoneOfItsOutput(t *testing.T) {
	for i := range 5 {
		w := newSeqWorld(t)
		for _, s := range []seqStep{{op: opSubmit, job: 0}, {op: opSubmit, job: 1}, {op: opPutGood, arg: 5}, {op: opPutGood, arg: 5},
			{op: opStopSavepoint, job: 0}, {op: opSavepoint, job: 1}, {op: opRestartSavepoint, job: 0, arg: 1}, {op: opWaitCheckpoint, job: 0}} {
			w.step(s)
			w.checkJobs()
		}
		if !strings.HasPrefix(w.savepoints[1].name, "b-") {
			t.Fatalf("the savepoint to restart from is %s, not b's", w.savepoints[1].name)
		}
		w.log = append(w.log, fmt.Sprintf("(try %d)", i))
		w.checkOutput()
		w.close()
	}
}
