package web

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestJobOutputAPI: GET /api/v1/jobs/{id}/output returns a sink's rows in
// order with the number to read on from, and names what is wrong with a
// bad request.
func TestJobOutputAPI(t *testing.T) {
	ts, mgr := jobsServer(t)
	if _, err := mgr.Submit([]byte("name: o\nsource:\n  generator: {rate: max, count: 30, keys: 2}\nsinks:\n  - {id: printed, log: {}}\n")); err != nil {
		t.Fatal(err)
	}
	type page struct {
		Sink string `json:"sink"`
		Kind string `json:"kind"`
		Rows []struct {
			Seq   uint64         `json:"seq"`
			Time  time.Time      `json:"time"`
			Value map[string]any `json:"value"`
		} `json:"rows"`
		Next uint64 `json:"next"`
	}
	var got []uint64
	var after uint64
	testutil.Within(20*time.Second, func() bool {
		resp, err := http.Get(ts.URL + "/api/v1/jobs/o/output?limit=7&wait=1s&after=" + strconv.FormatUint(after, 10))
		if err != nil {
			t.Fatal(err)
		}
		var p page
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || p.Sink != "printed" || p.Kind != "log" || len(p.Rows) > 7 {
			t.Fatalf("status %d, page %+v, %v", resp.StatusCode, p, err)
		}
		for _, r := range p.Rows {
			if r.Value["page"] == nil || r.Time.IsZero() {
				t.Fatalf("row %+v", r)
			}
			got = append(got, r.Seq)
		}
		after = p.Next
		return len(got) >= 30
	})
	for i, s := range got {
		if s != uint64(i+1) {
			t.Fatalf("row numbers %v", got)
		}
	}
	if len(got) != 30 {
		t.Fatalf("read %d rows, want 30", len(got))
	}
	for _, c := range []struct{ q, code, field string }{
		{"after=x", "invalid_argument", "after"},
		{"limit=0", "invalid_argument", "limit"},
		{"wait=forever", "invalid_argument", "wait"},
		{"sink=nope", "not_found", ""},
	} {
		resp, err := http.Get(ts.URL + "/api/v1/jobs/o/output?" + c.q)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct{ Code, Field, Message string } `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode/100 != 4 || e.Error.Code != c.code || e.Error.Field != c.field || strings.Contains(e.Error.Message, "jobs: jobs:") {
			t.Errorf("%s: %d %+v", c.q, resp.StatusCode, e.Error)
		}
	}
}

// TestResumeAPI: POST /api/v1/jobs/{id}/resume starts a stopped job again
// and refuses a running one with 409.
func TestResumeAPI(t *testing.T) {
	ts, mgr := jobsServer(t)
	if _, err := mgr.Submit([]byte("name: r\nsource:\n  generator: {rate: 10}\nsinks:\n  - {id: printed, log: {}}\n")); err != nil {
		t.Fatal(err)
	}
	post := func() (int, string) {
		resp, err := http.Post(ts.URL+"/api/v1/jobs/r/resume", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		io.Copy(&b, resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := post(); code != 409 || !strings.Contains(body, "already_exists") {
		t.Fatalf("resume of a running job: %d %s", code, body)
	}
	if err := mgr.Stop("r"); err != nil {
		t.Fatal(err)
	}
	if code, body := post(); code != 200 || !strings.Contains(body, `"state":"running"`) {
		t.Fatalf("resume of a stopped job: %d %s", code, body)
	}
}
