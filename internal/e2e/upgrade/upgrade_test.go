package upgrade

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestUpgrade runs the current binary on each fixture's data directory,
// written and then killed (SIGKILL) by an earlier release (its first start
// dies too, in a checkpoint before its sinks commit), and checks that
// the upgrade neither resurrects, truncates nor forgets: the streams, their
// shards, tags, retention and consumers as they were; every acknowledged
// record with its sequence number; the tokens; the running job resumed
// from its checkpoint with each window result exactly once; the stopped
// job stopped; both savepoints restorable.
func TestUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary on each fixture")
	}
	fixtures, err := filepath.Glob(filepath.Join("testdata", "*.tar.gz"))
	if err != nil || len(fixtures) == 0 {
		t.Fatalf("no fixtures in testdata: %v", err)
	}
	for _, f := range fixtures {
		name := strings.TrimSuffix(filepath.Base(f), ".tar.gz")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkUpgrade(t, name)
		})
	}
}

func checkUpgrade(t *testing.T, name string) {
	var e Expect
	f, err := os.Open(filepath.Join("testdata", name+".json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err == nil {
		err = json.NewDecoder(zr).Decode(&e)
	}
	if err != nil {
		t.Fatalf("%s.json.gz: %v", name, err)
	}
	data := t.TempDir()
	untar(t, filepath.Join("testdata", name+".tar.gz"), data)
	crashFirstStart(t, data)
	srv := testbin.Start(t, testbin.Options{Data: data, Flags: []string{"--auth"}, Token: e.AdminToken, LogLevel: "info"})
	a := newAPI(t, srv.URL, e.AdminToken)

	t.Logf("%s: the current binary serves the data directory of %s", time.Now().Format(time.TimeOnly), e.Commit)
	checkStreams(t, a, &e)
	checkSeeks(t, a, &e)
	checkOldIterator(t, a, &e)
	checkTokens(t, a, &e)
	checkGroup(t, a, &e)
	checkChannel(t, a, &e)
	if st := a.jobState("idle"); st != "stopped" {
		t.Errorf("job idle (stopped by its user) is %s after the upgrade", st)
	}

	// The counts job resumes from its last checkpoint: with the clicks put
	// after the upgrade, its output holds every window exactly once.
	a.putClicks("clicks", e.Clicks, e.Clicks+100)
	flush(t, a, "clicks")
	waitExactly(t, a, "counts", "counts-out", model(e.Clicks+100))
	t.Logf("%s: the counts job resumed", time.Now().Format(time.TimeOnly))

	// Its savepoint, taken under the earlier binary, starts a new job on
	// the same input: each result it gives is the model's, none twice.
	a.submit(countsJob("counts-sp", "clicks", "counts-sp-out"), e.CountsSavepoint)
	want := model(e.Clicks + 100)
	waitRows(t, a, "counts-sp-out")
	late := map[string]int64{}
	for k, v := range want {
		var start int64
		fmt.Sscan(k, &start)
		if start >= clickBase+int64(e.Clicks)*100 {
			late[k] = v
		}
	}
	waitSubset(t, a, "counts-sp", "counts-sp-out", want, late)
	t.Logf("%s: the counts job's savepoint restored", time.Now().Format(time.TimeOnly))

	// The stopped job starts again from its savepoint: its output before
	// the stop and after it hold every window exactly once.
	a.submit(countsJob("idle", "idle-in", "idle-out"), e.IdleSavepoint)
	a.putClicks("idle-in", e.IdleClicks, e.IdleClicks+100)
	flush(t, a, "idle-in")
	waitExactly(t, a, "idle", "idle-out", model(e.IdleClicks+100))

	checkIncreasing(t, a, "clicks")
	reshapeAfter(t, a)
	checkRestart(t, srv, a, &e)
	waitExactly(t, a, "counts", "counts-out", model(e.Clicks+100))
	waitExactly(t, a, "idle", "idle-out", model(e.IdleClicks+100))
}

// crashFirstStart starts the current binary on data with the failpoint
// before-commit armed: the upgrade's first checkpoint of the counts job
// stages its output over what the earlier binary staged, and the process
// dies before its sinks commit.
func crashFirstStart(t *testing.T, data string) {
	s := testbin.New(t, testbin.Options{Data: data, Env: []string{"RUNNEL_FAILPOINTS=before-commit=1"}})
	if err := s.TryStart(); err == nil {
		select {
		case <-s.Exited():
		case <-time.After(2 * time.Minute):
			t.Fatalf("the current binary did not reach its failpoint before-commit:\n%s", testutil.Tail(s.Logs(), 4000))
		}
	} else if !errors.Is(err, testbin.ErrExited) {
		t.Fatal(err)
	}
	if !strings.Contains(s.Logs(), "failpoint before-commit") {
		t.Fatalf("the current binary ended without reaching its failpoint before-commit:\n%s", testutil.Tail(s.Logs(), 4000))
	}
}

// untar extracts a fixture into dir.
func untar(t *testing.T, file, dir string) {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(h.Mode)|0o700)
		case tar.TypeReg:
			var w *os.File
			if w, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)|0o600); err == nil {
				_, err = io.Copy(w, tr)
				if cerr := w.Close(); err == nil {
					err = cerr
				}
			}
		default:
			err = fmt.Errorf("%s: unexpected entry type %c", h.Name, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// same says whether two values decoded from JSON are the same, numbers
// compared by their text.
func same(x, y any) bool {
	bx, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	var vx, vy any
	json.Unmarshal(bx, &vx)
	json.Unmarshal(by, &vy)
	return reflect.DeepEqual(vx, vy)
}

func checkStreams(t *testing.T, a *api, e *Expect) {
	if got := a.streamNames(); !reflect.DeepEqual(got, e.Streams) {
		t.Errorf("streams after the upgrade: %v, before: %v (deleted: %v)", got, e.Streams, e.Gone)
	}
	for _, s := range e.Gone {
		if st, _ := a.kinesisTry("DescribeStreamSummary", map[string]any{"StreamName": s}); st != 400 {
			t.Errorf("deleted stream %s: DescribeStreamSummary answers %d", s, st)
		}
	}
	if acc := a.kinesis("DescribeAccountSettings", map[string]any{}); !same(acc, e.Account) {
		t.Errorf("DescribeAccountSettings after the upgrade: %v, before: %v", acc, e.Account)
	}
	for _, s := range e.Streams {
		resharding := slices.Contains(e.Resharding, s)
		if resharding {
			waitActive(t, a, s)
			checkCover(t, a, s)
		}
		sum := a.kinesis("DescribeStreamSummary", map[string]any{"StreamName": s})["StreamDescriptionSummary"].(map[string]any)
		for k, v := range e.Summaries[s] {
			if resharding && (k == "OpenShardCount" || k == "StreamStatus") {
				continue
			}
			if !same(sum[k], v) {
				t.Errorf("stream %s: DescribeStreamSummary's %s is %v after the upgrade, %v before", s, k, sum[k], v)
			}
		}
		if got := a.shards(s); !resharding && !same(got, e.Shards[s]) {
			t.Errorf("stream %s: ListShards after the upgrade:\n%v\nbefore:\n%v", s, got, e.Shards[s])
		}
		tags, _ := a.kinesis("ListTagsForStream", map[string]any{"StreamName": s})["Tags"].([]any)
		if !same(tags, e.Tags[s]) {
			t.Errorf("stream %s: tags %v after the upgrade, %v before", s, tags, e.Tags[s])
		}
		cs, _ := a.kinesis("ListStreamConsumers", map[string]any{"StreamARN": sum["StreamARN"]})["Consumers"].([]any)
		if !same(cs, e.Consumers[s]) {
			t.Errorf("stream %s: consumers %v after the upgrade, %v before", s, cs, e.Consumers[s])
		}
		if p := policyOf(a, sum["StreamARN"]); !same(p, e.Policies[s]) {
			t.Errorf("stream %s: resource policy %v after the upgrade, %v before", s, p, e.Policies[s])
		}
		growing := slices.Contains(e.Growing, s)
		got := a.records(s)
		for shard, want := range e.Records[s] {
			have := got[shard]
			if len(have) < len(want) || (!growing && len(have) != len(want)) {
				t.Errorf("stream %s shard %s: %d records after the upgrade, %d acknowledged before", s, shard, len(have), len(want))
			}
			for i := range min(len(have), len(want)) {
				if have[i] != want[i] {
					t.Errorf("stream %s shard %s record %d: %+v after the upgrade, %+v before", s, shard, i, have[i], want[i])
					break
				}
			}
		}
	}
}

// checkTokens checks that the tokens made by the earlier binary still
// admit their holders, with their roles and stream patterns.
func checkTokens(t *testing.T, a *api, e *Expect) {
	r := newAPI(t, a.url, e.ReaderToken)
	for path, want := range map[string]int{"/api/v1/streams/plain": 200, "/api/v1/streams/clicks": 403} {
		if st, b := r.send("GET", path, "", nil, nil); st != want {
			t.Errorf("reader token (streams plain*): GET %s answers %d %s, want %d", path, st, b, want)
		}
	}
	if st, b := r.send("DELETE", "/api/v1/streams/plain", "", nil, nil); st != 403 {
		t.Errorf("reader token: DELETE a stream answers %d %s, want 403", st, b)
	}
	if st, _ := newAPI(t, a.url, "not-a-token").send("GET", "/api/v1/streams", "", nil, nil); st != 401 {
		t.Errorf("an unknown token answers %d, want 401", st)
	}
}

// flush puts a click far ahead in event time to each open shard of stream,
// so the job's watermark passes every window of the clicks before it.
func flush(t *testing.T, a *api, stream string) {
	for _, s := range a.shards(stream) {
		m := s.(map[string]any)
		if m["SequenceNumberRange"].(map[string]any)["EndingSequenceNumber"] != nil {
			continue
		}
		a.kinesis("PutRecord", map[string]any{"StreamName": stream, "PartitionKey": "flush",
			"ExplicitHashKey": m["HashKeyRange"].(map[string]any)["StartingHashKey"],
			"Data":            encodeB64(fmt.Sprintf(`{"page":"flush","ts":%d}`, clickBase+1_000_000))})
	}
}

// tally counts a stream sink's rows by window start and page, and lists
// the rows that are not the model's or come twice.
func tally(rows []Row, want map[string]int64) (seen map[string]int64, wrong []string) {
	seen = map[string]int64{}
	for _, r := range rows {
		k := fmt.Sprintf("%d/%s", r.Start, r.Key)
		if _, dup := seen[k]; dup {
			wrong = append(wrong, fmt.Sprintf("%s twice", k))
		} else if w, ok := want[k]; !ok || w != r.Views || r.End != r.Start+2000 {
			wrong = append(wrong, fmt.Sprintf("%+v, the model says %d", r, w))
		}
		seen[k] = r.Views
	}
	sort.Strings(wrong)
	return seen, wrong
}

// waitExactly waits until job's output in stream holds every window of
// the model, then checks that it holds nothing else and nothing twice.
func waitExactly(t *testing.T, a *api, job, stream string, want map[string]int64) {
	waitSubset(t, a, job, stream, want, want)
}

// waitSubset waits until job's output in stream holds every window of
// must, then checks that each of its rows is the model's (want) and none
// comes twice.
func waitSubset(t *testing.T, a *api, job, stream string, want, must map[string]int64) {
	t.Helper()
	var seen map[string]int64
	complete := testutil.Within(3*time.Minute, func() bool {
		st, _ := a.kinesisTry("DescribeStreamSummary", map[string]any{"StreamName": stream})
		if st != 200 {
			return false
		}
		seen, _ = tally(a.rows(stream), want)
		for k := range must {
			if _, ok := seen[k]; !ok {
				return false
			}
		}
		return true
	})
	rows := a.rows(stream)
	_, wrong := tally(rows, want)
	t.Logf("job %s: %d rows in %s, the model has %d windows (%d needed)", job, len(rows), stream, len(want), len(must))
	for _, w := range wrong {
		t.Errorf("job %s: %s: %s", job, stream, w)
	}
	if !complete {
		var missing []string
		for k := range must {
			if _, ok := seen[k]; !ok {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		info := a.rest("GET", "/api/v1/jobs/"+job, "", "", 200)
		t.Fatalf("job %s: %s lacks %d of the model's %d windows: %v\njob: %s", job, stream, len(missing), len(must), missing, info)
	}
}
