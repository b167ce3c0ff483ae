package kinesis

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
)

func TestParseRecordFaults(t *testing.T) {
	got, err := ParseFaults("PutRecords:record-throttle:0, PutRecords:record-internal:1,*:throttle:0,PutRecords:internal:0.5")
	if err != nil {
		t.Fatal(err)
	}
	want := []Fault{{"PutRecords", "record-throttle", 0}, {"PutRecords", "record-internal", 1}, {"*", "throttle", 0}, {"PutRecords", "internal", 0.5}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ParseFaults: %v, want %v", got, want)
	}
	for _, bad := range []string{"PutRecord:record-throttle:0.1", "*:record-internal:0.1", "GetRecords:record-throttle:0.1",
		"PutRecords:record-throttle:1.01", "PutRecords:record-throttle:-0.1", "PutRecords:record-throttle:NaN", "PutRecords:record:0.1",
		"PutRecords:record-throttle", "PutRecords:record-throttle:0.1:x"} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) accepted", bad)
		}
	}
}

// Hash keys that pin an entry to shard 0 or shard 1 of a two-shard stream.
var pinKeys = [2]string{"0", "340282366920938463463374607431768211455"}

// recordRun is one PutRecords call and what it must show.
type recordRun struct {
	throttle, internal float64 // the record rules' rates
	wholeThrottle      bool    // a whole-call rule at rate 0 beside them
	limits             bool    // --shard-limits, one record a shard
	n                  int     // entries
	shards             []int   // each entry's pinned shard
}

// checkRecordFaults sends one PutRecords of r.n entries to a fresh
// two-shard stream with the record rules on and checks the answer entry
// by entry, then that the stream holds exactly the entries answered as
// stored, once each, under their sequence numbers.
func checkRecordFaults(t *testing.T, r recordRun, seed uint64) {
	t.Helper()
	faults := []Fault{{Op: "PutRecords", Kind: faultRecordThrottle, Rate: r.throttle}, {Op: "PutRecords", Kind: faultRecordInternal, Rate: r.internal}}
	if r.wholeThrottle {
		faults = append(faults, Fault{Op: "*", Kind: faultThrottle, Rate: 0})
	}
	now := time.Unix(1_700_000_000, 0)
	opts := Options{CreateDelay: -1, Faults: faults, ShardLimits: r.limits, ShardLimitScale: 0.001, Now: func() time.Time { return now }}
	store := streamstest.Open(t, streams.Options{}, "s", 2)
	h := newHandler(store, opts)
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	h.ids = mrand.NewChaCha8(key)

	type entry struct {
		Data            []byte
		PartitionKey    string
		ExplicitHashKey string
	}
	in := struct {
		StreamName string
		Records    []entry
	}{StreamName: "s"}
	for i := 0; i < r.n; i++ {
		in.Records = append(in.Records, entry{Data: []byte(fmt.Sprintf("r%d", i)), PartitionKey: "k", ExplicitHashKey: pinKeys[r.shards[i]]})
	}
	body, _ := json.Marshal(in)
	w := serve(h, "PutRecords", contentJSON, body)
	if w.Code != 200 {
		t.Fatalf("PutRecords answered %d: %s", w.Code, w.Body)
	}
	var out putRecordsOutput
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out.Records) != r.n {
		t.Fatalf("answer %s: %v", w.Body, err)
	}
	failed, throttled, internal := 0, 0, 0
	seqs := map[string]string{}
	for i, e := range out.Records {
		shard := streams.ShardID(r.shards[i])
		switch e.ErrorCode {
		case "":
			if e.ShardId != shard || e.SequenceNumber == "" || e.ErrorMessage != "" {
				t.Fatalf("entry %d answered %+v, want stored in %s", i, e, shard)
			}
			seqs[string(in.Records[i].Data)] = e.SequenceNumber
			continue
		case excThroughputExceeded:
			throttled++
			if want := fmt.Sprintf("Rate exceeded for shard %s in stream s under account %s.", shard, h.opts.AccountID); e.ErrorMessage != want {
				t.Fatalf("entry %d message %q, want %q", i, e.ErrorMessage, want)
			}
		case excInternalFailure:
			internal++
			if e.ErrorMessage != "Internal Service Failure" {
				t.Fatalf("entry %d message %q", i, e.ErrorMessage)
			}
		default:
			t.Fatalf("entry %d error code %q", i, e.ErrorCode)
		}
		failed++
		if e.ShardId != "" || e.SequenceNumber != "" {
			t.Fatalf("failed entry %d has a shard or sequence number: %+v", i, e)
		}
	}
	if out.FailedRecordCount != failed {
		t.Fatalf("FailedRecordCount %d, %d entries failed", out.FailedRecordCount, failed)
	}
	switch {
	case r.throttle == 1 && throttled != r.n:
		t.Fatalf("rate 1: %d of %d entries throttled", throttled, r.n)
	case r.throttle < 1 && r.internal == 1 && internal != r.n-throttled:
		t.Fatalf("internal rate 1: %d of the %d entries not throttled failed", internal, r.n-throttled)
	case r.throttle == 0 && r.internal == 0 && !r.limits && failed != 0:
		t.Fatalf("rate 0: %d entries failed", failed)
	case r.throttle == 0 && internal == 0 && throttled > 0 && !r.limits:
		t.Fatalf("throttle rate 0: %d entries throttled", throttled)
	case r.internal == 0 && internal > 0:
		t.Fatalf("internal rate 0: %d entries failed internally", internal)
	}
	if r.limits {
		// One record a shard passes the limits; injected entries do not
		// take its place.
		perShard := [2]int{}
		for i, e := range out.Records {
			if e.ErrorCode == "" {
				perShard[r.shards[i]]++
			}
		}
		if perShard[0] > 1 || perShard[1] > 1 {
			t.Fatalf("the limits let through %v records a shard, want at most one", perShard)
		}
	}
	stored := map[string][]string{}
	for i := 0; i < 2; i++ {
		rr, err := store.Read("s", streams.ShardID(i), 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range rr.Records {
			stored[string(rec.Data)] = append(stored[string(rec.Data)], streams.FormatSeq(rr.Tag, i, rec.Seq))
		}
	}
	if len(stored) != len(seqs) {
		t.Fatalf("the stream holds %d records, %d were answered as stored", len(stored), len(seqs))
	}
	for d, s := range seqs {
		if got := stored[d]; len(got) != 1 || got[0] != s {
			t.Fatalf("record %s stored under %v, answered %s", d, got, s)
		}
	}
}

func TestInjectRecordsEdges(t *testing.T) {
	alt := func(n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = i % 2
		}
		return s
	}
	for _, tc := range []struct {
		name string
		run  recordRun
	}{
		{"rate 0", recordRun{n: 500, shards: alt(500), wholeThrottle: true}},
		{"throttle rate 1", recordRun{throttle: 1, n: 500, shards: alt(500)}},
		{"internal rate 1", recordRun{internal: 1, n: 7, shards: alt(7)}},
		{"both rate 1", recordRun{throttle: 1, internal: 1, n: 3, shards: alt(3)}},
		{"one entry", recordRun{throttle: 1, n: 1, shards: []int{1}}},
		{"limits and all injected", recordRun{internal: 1, limits: true, n: 6, shards: alt(6)}},
		{"limits and none injected", recordRun{limits: true, n: 6, shards: alt(6)}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkRecordFaults(t, tc.run, 1) })
	}
}

// TestInjectRecordsRandom: random rates (0 and 1 among them), entry
// counts and shards, with and without the throughput limits.
func TestInjectRecordsRandom(t *testing.T) {
	rng := testutil.Rand(t, 0)
	rate := func() float64 {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return 1
		}
		return rng.Float64()
	}
	for i := 0; i < 40; i++ {
		r := recordRun{throttle: rate(), internal: rate(), wholeThrottle: rng.IntN(2) == 0, limits: rng.IntN(4) == 0, n: 1 + rng.IntN(500)}
		for j := 0; j < r.n; j++ {
			r.shards = append(r.shards, rng.IntN(2))
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkRecordFaults(t, r, rng.Uint64()) })
	}
}

// FuzzInjectRecords: rates, entries and shards from the input.
func FuzzInjectRecords(f *testing.F) {
	f.Add(uint8(0), uint8(0), false, []byte{0, 1, 0})
	f.Add(uint8(255), uint8(0), false, []byte{1, 1})
	f.Add(uint8(100), uint8(100), true, []byte{0, 1, 0, 1, 1, 1, 0})
	f.Fuzz(func(t *testing.T, thr, inter uint8, limits bool, shards []byte) {
		if len(shards) == 0 || len(shards) > maxPutRecords {
			return
		}
		r := recordRun{throttle: float64(thr) / 255, internal: float64(inter) / 255, limits: limits, n: len(shards)}
		for _, b := range shards {
			r.shards = append(r.shards, int(b&1))
		}
		checkRecordFaults(t, r, uint64(thr)<<8|uint64(inter))
	})
}
