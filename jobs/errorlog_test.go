package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

// TestErrorLogKeepsTheNewest: the history keeps the last ErrorHistory
// entries, newest first, and counts all.
func TestErrorLogKeepsTheNewest(t *testing.T) {
	var l errorLog
	for i := range ErrorHistory + 5 {
		l.add(ErrorEntry{Message: fmt.Sprint(i)})
	}
	p := l.read(0)
	if p.Total != ErrorHistory+5 || len(p.Errors) != ErrorHistory {
		t.Fatalf("total %d, kept %d", p.Total, len(p.Errors))
	}
	if p.Errors[0].Message != fmt.Sprint(ErrorHistory+4) || p.Errors[ErrorHistory-1].Message != "5" {
		t.Fatalf("newest %s, oldest %s", p.Errors[0].Message, p.Errors[ErrorHistory-1].Message)
	}
	if p := l.read(3); len(p.Errors) != 3 || p.Errors[2].Message != fmt.Sprint(ErrorHistory+2) {
		t.Fatalf("limit 3: %+v", p.Errors)
	}
	var small errorLog
	small.add(ErrorEntry{Message: "a"})
	small.add(ErrorEntry{Message: "b"})
	if p := small.read(0); len(p.Errors) != 2 || p.Errors[0].Message != "b" {
		t.Fatalf("two entries: %+v", p.Errors)
	}
}

// waitErrors waits until job id's error history counts n entries, and
// fails the test when it never does or counts more.
func waitErrors(t *testing.T, m *Manager, id string, n int64) ErrorPage {
	t.Helper()
	var p ErrorPage
	testutil.Within(20*time.Second, func() bool {
		p, _ = m.Errors(id, 0)
		return p.Total >= n
	})
	if p.Total != n {
		t.Fatalf("job %s: history %+v, want %d errors", id, p, n)
	}
	return p
}

const deadLetterJob = `name: dl
source: {stream: in, shards: 2}
operators:
  - id: parse
    map: "r => ({page: r.page.toUpperCase()})"
    on_error: {dead_letter: bad}
sinks:
  - {id: out, log: {}}
`

// TestErrorHistory: a dead-lettered record and a run's failure are in the
// job's error history with operator, origin, a clean message and the
// record; the history's times are UTC with milliseconds.
func TestErrorHistory(t *testing.T) {
	st, dir, log := managerStore(t)
	m := startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log})
	if _, err := m.Submit([]byte(strings.Replace(deadLetterJob, "log: {}", "stream: {name: out}", 1) + "checkpoint: {every: 200ms}\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(context.Background(), "in", []streams.PutRecord{
		{PartitionKey: "a", Data: []byte(`{"page":"/a"}`)},
		{PartitionKey: "b", Data: []byte(`{"nopage":1}`)},
	}); err != nil {
		t.Fatal(err)
	}
	e := waitErrors(t, m, "dl", 1).Errors[0]
	if e.Operator != "parse" || e.Origin == nil || e.Origin.Stream != "in" || e.Origin.Sequence == "" || e.Shard != e.Origin.Shard ||
		e.DeadLetter == nil || e.DeadLetter.Stream != "bad" {
		t.Fatalf("entry %+v origin %+v", e, e.Origin)
	}
	if !strings.HasPrefix(e.Message, "TypeError") || strings.Contains(e.Message, "<eval>") {
		t.Fatalf("message %q", e.Message)
	}
	b, _ := json.Marshal(e)
	if !regexp.MustCompile(`"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`).Match(b) || !strings.Contains(string(b), `"record":{"nopage":1}`) {
		t.Fatalf("entry as JSON: %s", b)
	}

	// The dead letter in its stream carries the same clean message.
	var letter map[string]any
	testutil.Within(20*time.Second, func() bool {
		rr, err := st.Read("bad", "shardId-000000000000", 0, 10, 0)
		if err != nil || len(rr.Records) == 0 {
			return false
		}
		return json.Unmarshal(rr.Records[0].Data, &letter) == nil
	})
	if msg, _ := letter["error"].(string); msg != e.Message || letter["operator"] != "parse" || letter["origin"] == nil {
		t.Fatalf("dead letter %v: want error %q", letter, e.Message)
	}

	// A job whose operator fails the run: the failure is in its history.
	failing := strings.NewReplacer("name: dl", "name: fl", "    on_error: {dead_letter: bad}\n", "", "stream: in", "stream: in2").Replace(deadLetterJob)
	if _, err := m.Submit([]byte(failing)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(context.Background(), "in2", []streams.PutRecord{{PartitionKey: "b", Data: []byte(`{"nopage":1}`)}}); err != nil {
		t.Fatal(err)
	}
	if e := waitErrors(t, m, "fl", 1).Errors[0]; e.Operator != "parse" || e.Origin == nil || e.Origin.Stream != "in2" || e.DeadLetter != nil || !strings.HasPrefix(e.Message, "TypeError") {
		t.Fatalf("failure entry %+v", e)
	}
	if _, err := m.Errors("nope", 0); err == nil {
		t.Fatal("errors of an unknown job")
	}

	// A restart starts the history empty but for the failure that ended
	// the failed job's run, at the time it ended.
	before := waitErrors(t, m, "fl", 1).Errors[0]
	m.Close()
	closed := time.Now()
	m = startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log})
	page, err := m.Errors("fl", 0)
	if err != nil || len(page.Errors) != 1 {
		t.Fatalf("after a restart, the failed job's history: %+v %v; want its failure", page, err)
	}
	if e := page.Errors[0]; e.Policy != "fail" || e.Operator != before.Operator || e.Message != before.Message ||
		e.Origin == nil || before.Origin == nil || *e.Origin != *before.Origin || time.Time(e.Time).After(closed) {
		t.Fatalf("after a restart: %+v (origin %+v)\nbefore:        %+v (origin %+v)", e, e.Origin, before, before.Origin)
	}
	if page, _ := m.Errors("dl", 0); len(page.Errors) != 0 {
		t.Fatalf("after a restart, the running job's history: %+v; want it empty", page)
	}
}

// TestFailureEntryNamesTheSource: a run that ended because a source could
// not read a shard (its stream deleted) names the source and the shard.
func TestFailureEntryNamesTheSource(t *testing.T) {
	j := &Job{ID: "j", Spec: &Spec{Name: "j"}}
	j.failureEntry(`read source/shardId-000000000002: read: stream "rx" does not exist`)
	e := j.errors.read(1).Errors[0]
	if e.Operator != "source" || e.Shard != "shardId-000000000002" || e.Policy != "fail" {
		t.Fatalf("entry %+v: want operator source, shard shardId-000000000002", e)
	}
}
