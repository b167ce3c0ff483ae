package kpl

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/runnel-dev/runnel/streams"
)

// vectors.json is made by testdata/make_vectors.py from the published
// format alone, an encoder independent of this package.
type vectorFile struct {
	Vectors []struct {
		Name        string `json:"name"`
		Note        string `json:"note"`
		OuterKey    string `json:"outer_partition_key"`
		DataBase64  string `json:"data_base64"`
		UserRecords []struct {
			SubSequence     *uint64 `json:"sub_sequence"`
			PartitionKey    string  `json:"partition_key"`
			ExplicitHashKey *string `json:"explicit_hash_key"`
			Data            *string `json:"data"`
			HashKey         string  `json:"hash_key"`
			InShard0Of2     *bool   `json:"in_shard_0_of_2"`
		} `json:"user_records"`
	} `json:"vectors"`
}

func loadVectors(t testing.TB) vectorFile {
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf vectorFile
	if err := json.Unmarshal(b, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	return vf
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t).Vectors {
		t.Run(v.Name, func(t *testing.T) {
			data, err := base64.StdEncoding.DecodeString(v.DataBase64)
			if err != nil {
				t.Fatal(err)
			}
			recs, ok, err := Deaggregate(data)
			if err != nil {
				t.Fatalf("%s: %v", v.Note, err)
			}
			// A vector whose one user record has no sub-sequence is a
			// blob that only looks aggregated: the whole data is the record.
			if len(v.UserRecords) == 1 && v.UserRecords[0].SubSequence == nil {
				if ok {
					t.Fatalf("%s: de-aggregated into %d records, want an ordinary record", v.Note, len(recs))
				}
				return
			}
			if !ok {
				t.Fatalf("%s: not recognised as aggregated", v.Note)
			}
			if len(recs) != len(v.UserRecords) {
				t.Fatalf("%s: %d user records, want %d", v.Note, len(recs), len(v.UserRecords))
			}
			for i, want := range v.UserRecords {
				got := recs[i]
				wantEHK := ""
				if want.ExplicitHashKey != nil {
					wantEHK = *want.ExplicitHashKey
				}
				if got.SubSequence != *want.SubSequence || got.PartitionKey != want.PartitionKey ||
					got.ExplicitHashKey != wantEHK || string(got.Data) != *want.Data {
					t.Errorf("record %d = {%d %q %q %q}, want {%d %q %q %q}", i, got.SubSequence, got.PartitionKey,
						got.ExplicitHashKey, got.Data, *want.SubSequence, want.PartitionKey, wantEHK, *want.Data)
				}
				if want.HashKey != "" {
					hk, err := got.HashKey()
					if err != nil || hk.String() != want.HashKey {
						t.Errorf("record %d hash key = %v, %v; want %s", i, hk, err, want.HashKey)
					}
				}
				if t.Failed() {
					t.FailNow()
				}
			}
			// Hash-range filtering as a KCL consumer of shard 0 of 2 does.
			if want := v.UserRecords[0].InShard0Of2; want != nil {
				kept, err := Filter(append([]UserRecord(nil), recs...), streams.EvenRanges(2)[0])
				if err != nil {
					t.Fatal(err)
				}
				var wantSubs, gotSubs []uint64
				for _, u := range v.UserRecords {
					if *u.InShard0Of2 {
						wantSubs = append(wantSubs, *u.SubSequence)
					}
				}
				for _, u := range kept {
					gotSubs = append(gotSubs, u.SubSequence)
				}
				if len(gotSubs) != len(wantSubs) {
					t.Fatalf("kept sub-sequences %v, want %v", gotSubs, wantSubs)
				}
				for i := range gotSubs {
					if gotSubs[i] != wantSubs[i] {
						t.Fatalf("kept sub-sequences %v, want %v", gotSubs, wantSubs)
					}
				}
			}
		})
	}
}

// withDigest frames a protobuf body as an aggregated record.
func withDigest(body []byte) []byte {
	sum := md5.Sum(body)
	return append(append(append([]byte{}, Magic...), body...), sum[:]...)
}

func TestDamagedBodyIsAnError(t *testing.T) {
	rec := protowire.AppendTag(nil, 1, protowire.VarintType)
	rec = protowire.AppendVarint(rec, 3) // no such partition key
	rec = protowire.AppendTag(rec, 3, protowire.BytesType)
	rec = protowire.AppendBytes(rec, []byte("x"))
	body := protowire.AppendTag(nil, 1, protowire.BytesType)
	body = protowire.AppendString(body, "k")
	body = protowire.AppendTag(body, 3, protowire.BytesType)
	body = protowire.AppendBytes(body, rec)
	for name, data := range map[string][]byte{
		"index out of table": withDigest(body),
		"truncated":          withDigest(body[:len(body)-2]),
		"missing data":       withDigest(append(protowire.AppendTag(body[:3:3], 3, protowire.BytesType), protowire.AppendBytes(nil, rec[:2])...)),
	} {
		recs, ok, err := Deaggregate(data)
		if !ok || !errors.Is(err, ErrMalformed) || recs != nil {
			t.Errorf("%s: Deaggregate = %d records, %v, %v; want ErrMalformed", name, len(recs), ok, err)
		}
	}
}

func TestEmptyAggregateHasNoRecords(t *testing.T) {
	recs, ok, err := Deaggregate(withDigest(nil))
	if !ok || err != nil || len(recs) != 0 {
		t.Fatalf("Deaggregate(empty) = %v, %v, %v", recs, ok, err)
	}
}

func FuzzDeaggregate(f *testing.F) {
	for _, v := range loadVectors(f).Vectors {
		data, _ := base64.StdEncoding.DecodeString(v.DataBase64)
		f.Add(data)
		if len(data) > 20 {
			f.Add(data[4 : len(data)-16]) // the bare body, to be framed below
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, withDigest(data)} {
			recs, ok, err := Deaggregate(in)
			if !ok && (recs != nil || err != nil) {
				t.Fatalf("not aggregated but %d records, %v", len(recs), err)
			}
			if err != nil && recs != nil {
				t.Fatalf("error %v with %d records", err, len(recs))
			}
			for i, r := range recs {
				if r.SubSequence != uint64(i) {
					t.Fatalf("record %d has sub-sequence %d", i, r.SubSequence)
				}
				if _, err := Filter([]UserRecord{r}, streams.HashRange{End: streams.MaxHashKey}); err != nil && r.ExplicitHashKey == "" {
					t.Fatalf("a partition key always hashes: %v", err)
				}
			}
		}
	})
}

// BenchmarkDeaggregate de-aggregates the 500-record vector; ns/op over 500
// is the cost per user record.
func BenchmarkDeaggregate(b *testing.B) {
	var data []byte
	for _, v := range loadVectors(b).Vectors {
		if v.Name == "five-hundred" {
			data, _ = base64.StdEncoding.DecodeString(v.DataBase64)
		}
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		recs, ok, err := Deaggregate(data)
		if !ok || err != nil || len(recs) != 500 {
			b.Fatal(len(recs), ok, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/500, "ns/user-record")
}
