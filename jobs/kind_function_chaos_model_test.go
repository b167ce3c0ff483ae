package jobs

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/functions"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

// fnReport is what TestFunctionChaos's model found in the streams.
type fnReport struct {
	// diff is want (each record that passes the filter once) against
	// got (how often each is in the output and in on-failure records).
	diff string
	// dups counts records found more than once.
	dups int
	// openWindows counts tumbling windows of the output that ended more
	// than two seconds ago (their close is due) without a final output.
	openWindows int
	// other are broken rules besides the counts.
	other []string
	// summary says what the streams held.
	summary string
}

// fnOut is one record of the function's output stream.
type fnOut struct {
	ID          *int   `json:"id"`
	Shard       string `json:"shard"`
	Seq         string `json:"seq"`
	PK          string `json:"pk"`
	W           int64  `json:"w"`
	Final       bool   `json:"final"`
	Start       int64  `json:"start"`
	N           int    `json:"n"`
	SawFiltered *int   `json:"sawFiltered"`
	Len         *int   `json:"len"`
}

// fnFailure is the part of an on-failure record the model reads.
type fnFailure struct {
	Timestamp      time.Time `json:"timestamp"`
	RequestContext struct {
		Condition string `json:"condition"`
	} `json:"requestContext"`
	Info struct {
		Shard     string `json:"shardId"`
		Start     string `json:"startSequenceNumber"`
		End       string `json:"endSequenceNumber"`
		BatchSize int    `json:"batchSize"`
	} `json:"KinesisBatchInfo"`
}

// lane is the lane of a partition key, as the operator deals them.
func (e *fnChaos) lane(pk string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(pk))
	return h.Sum32() % uint32(e.cfg.parallel)
}

// check reads the output, the on-failure stream and the input, and
// compares them with the model.
func (e *fnChaos) check() fnReport {
	var rep fnReport
	outs, fails := make([]int, len(e.recs)), make([]int, len(e.recs))
	arrival := map[string]int64{}
	for _, r := range readStream(e.t, e.st, "fnc-in") {
		arrival[r.shard+"/"+fmt.Sprint(r.Seq)] = r.Arrival
	}
	// Output: counts, order, windows.
	type key struct {
		shard string
		w     int64
	}
	perWindow, finals := map[key]int{}, map[key][]int{}
	lastOf := map[string]uint64{}
	for _, r := range readStream(e.t, e.st, "fnc-out") {
		var o fnOut
		if err := json.Unmarshal(r.Data, &o); err != nil {
			rep.other = append(rep.other, fmt.Sprintf("output %s is not the handler's: %v", r.Data, err))
			continue
		}
		switch {
		case o.SawFiltered != nil:
			rep.other = append(rep.other, fmt.Sprintf("the function was given record %d, which the filter drops", *o.SawFiltered))
		case o.Len != nil:
			rep.other = append(rep.other, fmt.Sprintf("the function built a string of %d characters", *o.Len))
		case o.Final:
			finals[key{o.Shard, o.Start}] = append(finals[key{o.Shard, o.Start}], o.N)
		case o.ID == nil || *o.ID < 0 || *o.ID >= len(e.recs):
			rep.other = append(rep.other, fmt.Sprintf("output %s names no record put", r.Data))
		default:
			rec := &e.recs[*o.ID]
			outs[rec.id]++
			if o.Seq != rec.seq || o.Shard != rec.shard || o.PK != rec.pk {
				rep.other = append(rep.other, fmt.Sprintf("output %s: record %d is %s %s %s", r.Data, rec.id, rec.shard, rec.seq, rec.pk))
			}
			perWindow[key{o.Shard, o.W}]++
			order := []string{rec.shard + " key " + rec.pk}
			if e.cfg.parallel == 1 {
				order = append(order, rec.shard)
			}
			for _, k := range order {
				if last, ok := lastOf[k]; ok && rec.counter <= last {
					rep.other = append(rep.other, fmt.Sprintf("output order: record %d (%s #%d) after #%d of %s", rec.id, rec.shard, rec.counter, last, k))
				}
				lastOf[k] = rec.counter
			}
		}
	}
	if e.cfg.tumbling > 0 {
		size := e.cfg.tumbling.Milliseconds()
		due := time.Now().Add(-2 * time.Second).UnixMilli()
		for k, n := range perWindow {
			f := finals[k]
			switch {
			case len(f) == 0 && k.w+size < due:
				rep.openWindows++
			case len(f) > 1:
				rep.other = append(rep.other, fmt.Sprintf("window %s of %s has %d final outputs", time.UnixMilli(k.w).UTC().Format(time.RFC3339), k.shard, len(f)))
			case len(f) == 1 && f[0] != n:
				rep.other = append(rep.other, fmt.Sprintf("window %s of %s: the final state counts %d records, the output holds %d", time.UnixMilli(k.w).UTC().Format(time.RFC3339), k.shard, f[0], n))
			}
		}
		for k, f := range finals {
			if perWindow[k] == 0 && len(f) > 0 && f[0] != 0 {
				rep.other = append(rep.other, fmt.Sprintf("window %s of %s: the final state counts %d records, the output holds none", time.UnixMilli(k.w).UTC().Format(time.RFC3339), k.shard, f[0]))
			}
		}
	}
	// On-failure records: each names a run of its lane's records.
	failRecs := readStream(e.t, e.st, "fnc-failed")
	for _, r := range failRecs {
		var f fnFailure
		if err := json.Unmarshal(r.Data, &f); err != nil {
			rep.other = append(rep.other, fmt.Sprintf("on-failure record %s: %v", r.Data, err))
			continue
		}
		if p := e.failed(&f, arrival, fails); p != "" {
			rep.other = append(rep.other, fmt.Sprintf("on-failure record %s: %s", r.Data, p))
		}
	}
	var want, got []string
	for i := range e.recs {
		rec := &e.recs[i]
		name := fmt.Sprintf("record %d (%s #%d %s %s n=%d)", rec.id, rec.shard, rec.counter, rec.pk, rec.kind, rec.n)
		if !rec.drop {
			want = append(want, name+": once")
		}
		switch n := outs[i] + fails[i]; {
		case n == 1 && !rec.drop:
			got = append(got, name+": once")
		case n > 0 || !rec.drop:
			got = append(got, fmt.Sprintf("%s: %d in the output, %d given up on", name, outs[i], fails[i]))
			if n > 1 {
				rep.dups++
			}
		}
		if outs[i] > 0 && e.bad(rec) {
			rep.other = append(rep.other, fmt.Sprintf("%s is in the output, but it fails every attempt", name))
		}
	}
	rep.diff = testutil.Diff(want, got)
	filtered, out, given := 0, 0, 0
	for i := range e.recs {
		filtered += btoi(e.recs[i].drop)
		out += outs[i]
		given += fails[i]
	}
	rep.summary = fmt.Sprintf("%d records put: %d filtered, %d in the output, %d given up on in %d on-failure records; %d windows closed",
		len(e.recs), filtered, out, given, len(failRecs), len(finals))
	return rep
}

// failed counts the records an on-failure record names into fails and
// says what is wrong with it ("" if nothing).
func (e *fnChaos) failed(f *fnFailure, arrival map[string]int64, fails []int) string {
	if !e.cfg.onFailure {
		return "the job has no on_failure"
	}
	si, ok1 := e.bySeq[f.Info.Start]
	ei, ok2 := e.bySeq[f.Info.End]
	if !ok1 || !ok2 {
		return "its sequence numbers name no records put"
	}
	start, end := &e.recs[si], &e.recs[ei]
	var ids []int
	for i := range e.recs {
		r := &e.recs[i]
		if r.shard == f.Info.Shard && r.counter >= start.counter && r.counter <= end.counter && !r.drop && e.lane(r.pk) == e.lane(start.pk) {
			ids = append(ids, r.id)
		}
	}
	if len(ids) != f.Info.BatchSize || start.shard != f.Info.Shard {
		return fmt.Sprintf("it spans records %v of its shard and lane, but batchSize is %d", ids, f.Info.BatchSize)
	}
	for _, id := range ids {
		fails[id]++
	}
	switch f.RequestContext.Condition {
	case functions.ConditionRetriesExhausted:
		for _, id := range ids {
			if e.bad(&e.recs[id]) {
				return ""
			}
		}
		return fmt.Sprintf("retries exhausted, but none of records %v fails more than %d times", ids, e.cfg.retries)
	case functions.ConditionRecordAge:
		if e.cfg.age <= 0 {
			return "record age exceeded, but the function has no maximum_record_age"
		}
		cutoff := f.Timestamp.Add(-e.cfg.age).UnixMilli()
		for _, id := range ids {
			r := &e.recs[id]
			if a := arrival[r.shard+"/"+fmt.Sprint(r.counter)]; a >= cutoff {
				return fmt.Sprintf("record %d arrived at %s, less than maximum_record_age before %s", id,
					time.UnixMilli(a).UTC().Format(time.RFC3339Nano), f.Timestamp.Format(time.RFC3339Nano))
			}
		}
		return ""
	}
	return fmt.Sprintf("condition %q", f.RequestContext.Condition)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// shardRecord is a record read back with its shard.
type shardRecord struct {
	streams.Record
	shard string
}

// readStream reads every record of a stream, shard by shard, each in
// order.
func readStream(t testingTB, st *streams.Store, name string) []shardRecord {
	info, err := st.DescribeStream(name)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(info.Shards, func(a, b int) bool { return info.Shards[a].ID < info.Shards[b].ID })
	var out []shardRecord
	for _, sh := range info.Shards {
		for from := uint64(0); ; {
			res, err := st.Read(name, sh.ID, from, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Records {
				out = append(out, shardRecord{r, sh.ID})
			}
			if len(res.Records) == 0 || res.Next <= from {
				break
			}
			from = res.Next
		}
	}
	return out
}

// testingTB is the part of testing.TB readStream needs.
type testingTB interface{ Fatal(args ...any) }

// TestFunctionChaosFilters: each of TestFunctionChaos's filters passes
// exactly the records whose data.drop is false, as its model assumes.
func TestFunctionChaosFilters(t *testing.T) {
	for _, src := range fnChaosFilters {
		spec, err := Parse([]byte("name: f\nsource: {stream: in}\noperators:\n  - id: f\n    function:\n      handler: 'b => {}'\n      filter_criteria: " + src + "\nsinks: [{id: o, log: {}}]\n"))
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		fl, err := functions.ParseFilter(extConfig[Function](&spec.Operators[0].ext, KindFunction, false).Filters...)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		for _, k := range []string{"ok", "throw", "item"} {
			for _, drop := range []bool{false, true} {
				rec := map[string]any{"partitionKey": "pk3", "sequenceNumber": "1", "approximateArrivalTimestamp": 1.5,
					"data": map[string]any{"id": int64(7), "k": k, "n": int64(0), "drop": drop}}
				if got := fl.Match(rec); got == drop {
					t.Errorf("filter %s: record of kind %s with drop %t passes: %t", src, k, drop, got)
				}
			}
		}
	}
}
