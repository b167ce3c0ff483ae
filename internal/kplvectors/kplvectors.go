// Package kplvectors loads the shared KPL aggregation test vectors
// (streams/kpl/testdata/vectors.json: blobs made from the published
// format by an encoder independent of Runnel's, with the user records each
// holds) for the tests of every package that reads or writes the format.
package kplvectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Vector is one blob of the file and what de-aggregating it gives.
type Vector struct {
	Name string `json:"name"`
	Note string `json:"note"`
	// OuterKey is the partition key of the Kinesis record carrying the
	// blob.
	OuterKey    string       `json:"outer_partition_key"`
	DataBase64  string       `json:"data_base64"`
	UserRecords []UserRecord `json:"user_records"`
}

// UserRecord is one record a blob holds; a blob that only looks
// aggregated holds one, itself, with no sub-sequence number.
type UserRecord struct {
	SubSequence     *uint64 `json:"sub_sequence"`
	PartitionKey    string  `json:"partition_key"`
	ExplicitHashKey *string `json:"explicit_hash_key"`
	// HashKey is the record's hash key in decimal.
	HashKey string `json:"hash_key"`
	// Data is the record's data when it is text, DataBase64 otherwise.
	Data       *string `json:"data"`
	DataBase64 *string `json:"data_base64"`
	// InShard0Of2 says whether shard 0 of a 2-shard stream keeps the
	// record (nil where the vector does not say).
	InShard0Of2 *bool `json:"in_shard_0_of_2"`
}

// Load reads the vectors, failing the test if it cannot.
func Load(t testing.TB) []Vector {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("kplvectors: cannot find the vectors file")
	}
	path := filepath.Join(filepath.Dir(self), "..", "..", "streams", "kpl", "testdata", "vectors.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []Vector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(f.Vectors) == 0 {
		t.Fatalf("%s: no vectors", path)
	}
	return f.Vectors
}
