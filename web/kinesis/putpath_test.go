package kinesis

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

// TestSeqTextMatchesFormatSeq renders runs of consecutive counters on
// shards that share seqText's slots, across decimal carries, and holds
// every number to streams.FormatSeq; a shard's tag changes now and then
// (a slot must not keep another tag's text).
func TestSeqTextMatchesFormatSeq(t *testing.T) {
	rng := testutil.Rand(t, 0)
	// 3, 11 and 19 share a slot; 9_999_999_999 is the widest index a
	// sequence number has room for.
	shardsOf := []int{0, 3, 11, 19, 7, 1023, 9_999_999_999}
	startsOf := []uint64{1, 9, 99, 999_999, 1<<40 - 3, 9_999_999_999_999_999_990, ^uint64(0) - 4}
	tagsOf := []uint64{0, 1, 123_456_789_012, 999_999_999_999}
	for round := 0; round < 200; round++ {
		next := map[int]uint64{}
		tag := map[int]uint64{}
		var want, got []string
		var b []byte
		var seqs seqText
		for i := 0; i < 1+rng.IntN(300); i++ {
			sh := shardsOf[rng.IntN(len(shardsOf))]
			ctr, ok := next[sh]
			if !ok || ctr == 0 || rng.IntN(20) == 0 {
				ctr = startsOf[rng.IntN(len(startsOf))] + uint64(rng.IntN(3))
			}
			next[sh] = ctr + 1
			if _, ok := tag[sh]; !ok || rng.IntN(20) == 0 {
				tag[sh] = tagsOf[rng.IntN(len(tagsOf))]
			}
			n := len(b)
			b = seqs.append(b, tag[sh], sh, ctr)
			got = append(got, fmt.Sprintf("%d %d %d %s", tag[sh], sh, ctr, b[n:]))
			want = append(want, fmt.Sprintf("%d %d %d %s", tag[sh], sh, ctr, streams.FormatSeq(tag[sh], sh, ctr)))
		}
		if d := testutil.Diff(want, got); d != "" {
			t.Fatalf("round %d: sequence numbers differ from streams.FormatSeq:\n%s", round, d)
		}
	}
}

// TestPutRecordsKeysOutliveTheirRequest puts records through the JSON
// fast path, then more with other keys of the same lengths (so that the
// pooled buffer the first request's keys were gathered in is overwritten),
// and reads every record back: each keeps its own key and data, and the
// answer's sequence numbers and shards name where it is.
func TestPutRecordsKeysOutliveTheirRequest(t *testing.T) {
	h, store := storeHandler(t, Options{CreateDelay: -1}, "keys", 3)
	type put struct{ key, data, seq, shard string }
	var puts []put
	for call := 0; call < 4; call++ {
		var body strings.Builder
		body.WriteString(`{"StreamName":"keys","Records":[`)
		var batch []put
		for i := 0; i < 50; i++ {
			p := put{key: fmt.Sprintf("%c-%03d", 'a'+call, i), data: fmt.Sprintf("call %d record %d", call, i)}
			if i > 0 {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `{"Data":%q,"PartitionKey":%q}`, base64.StdEncoding.EncodeToString([]byte(p.data)), p.key)
			batch = append(batch, p)
		}
		body.WriteString(`]}`)
		w := serve(h, "PutRecords", contentJSON, []byte(body.String()))
		if w.Code != 200 {
			t.Fatalf("PutRecords: %d %s", w.Code, w.Body.Bytes())
		}
		var out struct {
			FailedRecordCount int
			Records           []struct{ SequenceNumber, ShardId string }
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.FailedRecordCount != 0 || len(out.Records) != len(batch) {
			t.Fatalf("PutRecords answer %s (%v)", w.Body.Bytes(), err)
		}
		for i, r := range out.Records {
			batch[i].seq, batch[i].shard = r.SequenceNumber, r.ShardId
		}
		puts = append(puts, batch...)
	}
	var want, got []string
	stored := map[string]streams.Record{}
	for i := 0; i < 3; i++ {
		id := streams.ShardID(i)
		rr, err := store.Read("keys", id, 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range rr.Records {
			stored[streams.FormatSeq(rr.Tag, i, rec.Seq)+" "+id] = rec
		}
	}
	for _, p := range puts {
		want = append(want, p.seq+" "+p.shard+" "+p.key+" "+p.data)
		rec := stored[p.seq+" "+p.shard]
		got = append(got, p.seq+" "+p.shard+" "+rec.PartitionKey+" "+string(rec.Data))
	}
	if d := testutil.Diff(want, got); d != "" {
		t.Fatalf("stored records differ from what was put and acknowledged:\n%s", d)
	}
}
