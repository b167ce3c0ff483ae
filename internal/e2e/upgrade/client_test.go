package upgrade

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

// api talks to a runnel server over HTTP: the Kinesis JSON API and the
// REST API, with a bearer token when one is set. It imports no package of
// the server, so the same code drives an earlier release's binary.
type api struct {
	t     testing.TB
	url   string
	token string
	hc    *http.Client
}

func newAPI(t testing.TB, url, token string) *api {
	return &api{t: t, url: url, token: token, hc: &http.Client{Timeout: 60 * time.Second}}
}

func (a *api) send(method, path, ctype string, body []byte, header map[string]string) (int, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: read the answer: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// kinesisTry calls a Kinesis operation and returns the status and the
// decoded answer.
func (a *api) kinesisTry(op string, in any) (int, map[string]any) {
	a.t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		a.t.Fatal(err)
	}
	st, b := a.send("POST", "/", "application/x-amz-json-1.1", body,
		map[string]string{"X-Amz-Target": "Kinesis_20131202." + op})
	out := map[string]any{}
	if len(bytes.TrimSpace(b)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&out); err != nil {
			a.t.Fatalf("%s: %d %q: %v", op, st, b, err)
		}
	}
	return st, out
}

// kinesis calls a Kinesis operation; an answer but 200 fails the test.
func (a *api) kinesis(op string, in any) map[string]any {
	a.t.Helper()
	st, out := a.kinesisTry(op, in)
	if st != 200 {
		a.t.Fatalf("%s %v: %d %v", op, in, st, out)
	}
	return out
}

// rest calls the REST API; an answer other than want fails the test.
func (a *api) rest(method, path, ctype, body string, want int) []byte {
	a.t.Helper()
	st, b := a.send(method, path, ctype, []byte(body), nil)
	if st != want {
		a.t.Fatalf("%s %s: %d %s (want %d)", method, path, st, b, want)
	}
	return b
}

// Rec is a record as GetRecords returns it.
type Rec struct {
	Seq     string `json:"seq"`
	Key     string `json:"key"`
	Data    string `json:"data"` // base64, as on the wire
	Arrival string `json:"arrival"`
}

// shards lists a stream's shards (closed ones too) as ListShards answers.
func (a *api) shards(stream string) []any {
	a.t.Helper()
	var all []any
	in := map[string]any{"StreamName": stream}
	for {
		out := a.kinesis("ListShards", in)
		s, _ := out["Shards"].([]any)
		all = append(all, s...)
		next, _ := out["NextToken"].(string)
		if next == "" {
			return all
		}
		in = map[string]any{"NextToken": next}
	}
}

func shardID(s any) string { return s.(map[string]any)["ShardId"].(string) }

// records reads every record of each of a stream's shards from its trim
// horizon up to the end of what is there now.
func (a *api) records(stream string) map[string][]Rec {
	a.t.Helper()
	recs := map[string][]Rec{}
	for _, s := range a.shards(stream) {
		id := shardID(s)
		it := a.kinesis("GetShardIterator", map[string]any{
			"StreamName": stream, "ShardId": id, "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"].(string)
		recs[id] = []Rec{}
		for it != "" {
			out := a.kinesis("GetRecords", map[string]any{"ShardIterator": it, "Limit": 10000})
			rs, _ := out["Records"].([]any)
			for _, r := range rs {
				m := r.(map[string]any)
				recs[id] = append(recs[id], Rec{
					Seq: m["SequenceNumber"].(string), Key: m["PartitionKey"].(string),
					Data: m["Data"].(string), Arrival: fmt.Sprint(m["ApproximateArrivalTimestamp"]),
				})
			}
			it, _ = out["NextShardIterator"].(string)
			if behind, _ := out["MillisBehindLatest"].(json.Number); len(rs) == 0 && behind.String() == "0" {
				break
			}
		}
	}
	return recs
}

// streamNames lists the server's streams, sorted.
func (a *api) streamNames() []string {
	a.t.Helper()
	var names []string
	in := map[string]any{"Limit": 100}
	for {
		out := a.kinesis("ListStreams", in)
		for _, n := range out["StreamNames"].([]any) {
			names = append(names, n.(string))
		}
		if more, _ := out["HasMoreStreams"].(bool); !more || len(names) == 0 {
			break
		}
		in = map[string]any{"Limit": 100, "ExclusiveStartStreamName": names[len(names)-1]}
	}
	sort.Strings(names)
	return names
}

// Row is a window result row of the counts jobs.
type Row struct {
	Start int64  `json:"window_start"`
	End   int64  `json:"window_end"`
	Key   string `json:"key"`
	Views int64  `json:"views"`
}

// rows decodes the window results a stream sink wrote to stream.
func (a *api) rows(stream string) []Row {
	a.t.Helper()
	var rows []Row
	for shard, rs := range a.records(stream) {
		for _, r := range rs {
			var row Row
			if err := json.Unmarshal(decodeB64(a.t, r.Data), &row); err != nil {
				a.t.Fatalf("%s %s %s: not a window row: %v", stream, shard, r.Seq, err)
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// jobState returns a job's state from GET /api/v1/jobs/{id}.
func (a *api) jobState(id string) string {
	a.t.Helper()
	var j struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(a.rest("GET", "/api/v1/jobs/"+id, "", "", 200), &j); err != nil {
		a.t.Fatal(err)
	}
	return j.State
}

// submit submits a job file (from a savepoint when sp is set) and
// returns the job's id.
func (a *api) submit(file, sp string) string {
	a.t.Helper()
	path := "/api/v1/jobs"
	if sp != "" {
		path += "?savepoint=" + sp
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(a.rest("POST", path, "application/yaml", file, 201), &out); err != nil {
		a.t.Fatal(err)
	}
	return out.ID
}

// countsJob is the windowed job whose output the fixtures check: views per
// page in tumbling windows of 2 s of the records' own times, into a stream
// sink.
func countsJob(name, in, out string) string {
	return strings.NewReplacer("NAME", name, "IN", in, "OUT", out).Replace(`name: NAME
source:
  stream: IN
  shards: 2
  start: trim_horizon
  format: json
  event_time: "r => r.ts"
  watermark: 1s
operators:
  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 2s
      aggregate:
        views: count
sinks:
  - {id: out, input: per-page, stream: {name: OUT}}
checkpoint: {every: 1s}
`)
}

// Click i of the counts job's input: its page and its event time.
const clickBase = int64(1_700_000_000_000)

func click(i int) (key, data string) {
	pages := []string{"home", "cart", "search"}
	return fmt.Sprintf("u%d", i%7), fmt.Sprintf(`{"page":%q,"ts":%d}`, pages[i%3], clickBase+int64(i)*100)
}

// putClicks puts clicks [from, to) to stream in order and returns the
// sequence number each got, by index.
func (a *api) putClicks(stream string, from, to int) map[int]string {
	a.t.Helper()
	seqs := map[int]string{}
	for lo := from; lo < to; lo += 50 {
		hi := min(lo+50, to)
		var entries []map[string]any
		for i := lo; i < hi; i++ {
			k, d := click(i)
			entries = append(entries, map[string]any{"PartitionKey": k, "Data": encodeB64(d)})
		}
		out := a.kinesis("PutRecords", map[string]any{"StreamName": stream, "Records": entries})
		for j, r := range out["Records"].([]any) {
			m := r.(map[string]any)
			seq, _ := m["SequenceNumber"].(string)
			if seq == "" {
				a.t.Fatalf("put click %d: %v", lo+j, m)
			}
			seqs[lo+j] = seq
		}
	}
	return seqs
}

// model is the counts job's answer for clicks [0, n): views per window
// start and page.
func model(n int) map[string]int64 {
	m := map[string]int64{}
	for i := 0; i < n; i++ {
		_, d := click(i)
		var c struct {
			Page string `json:"page"`
			TS   int64  `json:"ts"`
		}
		json.Unmarshal([]byte(d), &c)
		m[fmt.Sprintf("%d/%s", c.TS-c.TS%2000, c.Page)]++
	}
	return m
}
