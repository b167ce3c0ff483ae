package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/kplvectors"
	"github.com/runnel-dev/runnel/internal/testbin"
)

// TestTailDeaggregatesKPL puts the KPL test vectors (made by an encoder
// independent of Runnel) into a 2-shard stream of a real server and checks
// that tail prints each vector's user records, keeps only those of the
// shard's hash range, and prints the blobs that only look aggregated whole.
func TestTailDeaggregatesKPL(t *testing.T) {
	bin := runnelBinary(t)
	srv := testbin.Start(t, testbin.Options{})
	defer srv.Kill()
	// Stream one has one shard, so every user record belongs to it; stream
	// two has two, and gets the vectors with explicit hash keys on shard 0.
	for _, name := range []string{"one", "two"} {
		shards := map[string]string{"one": "1", "two": "2"}[name]
		if out, err := srv.CLI("streams", "create", name, "--shards", shards); err != nil {
			t.Fatalf("create: %v %s", err, out)
		}
	}
	type want struct {
		key, data string
		sub       *uint64
	}
	wants := map[string][]want{}
	for _, v := range kplvectors.Load(t) {
		for _, stream := range []string{"one", "two"} {
			if stream == "two" && (len(v.UserRecords) == 0 || v.UserRecords[0].InShard0Of2 == nil) {
				continue
			}
			body, _ := json.Marshal(map[string]any{"records": []map[string]any{{"key": v.OuterKey, "explicit_hash_key": "0", "data_base64": v.DataBase64}}})
			resp, err := http.Post(srv.URL+"/api/v1/streams/"+stream+"/records", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				t.Fatalf("put %s: %s", v.Name, resp.Status)
			}
			for _, u := range v.UserRecords {
				switch {
				case u.SubSequence == nil: // only looks aggregated: printed whole
					wants[stream] = append(wants[stream], want{key: v.OuterKey, data: v.DataBase64})
				case stream == "one" || *u.InShard0Of2:
					wants[stream] = append(wants[stream], want{key: u.PartitionKey, data: *u.Data, sub: u.SubSequence})
				}
			}
		}
	}
	for _, stream := range []string{"one", "two"} {
		out, err := exec.Command(bin, "tail", stream, "--format", "json", "--server", srv.URL).Output()
		if err != nil {
			t.Fatalf("tail: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != len(wants[stream]) {
			t.Fatalf("tail %s printed %d lines, want %d", stream, len(lines), len(wants[stream]))
		}
		for i, l := range lines {
			var got struct {
				Key        string  `json:"key"`
				Data       string  `json:"data"`
				DataBase64 string  `json:"data_base64"`
				Sub        *uint64 `json:"sub_sequence_number"`
			}
			if err := json.Unmarshal([]byte(l), &got); err != nil {
				t.Fatalf("line %d %q: %v", i, l, err)
			}
			var keys map[string]any
			json.Unmarshal([]byte(l), &keys)
			_, hasData := keys["data"]
			_, hasB64 := keys["data_base64"]
			if hasData == hasB64 {
				t.Fatalf("tail %s line %d = %s: want exactly one of data and data_base64", stream, i, l)
			}
			w := wants[stream][i]
			data := got.Data
			if w.sub == nil {
				data = got.DataBase64
			}
			if got.Key != w.key || data != w.data || (got.Sub == nil) != (w.sub == nil) || (w.sub != nil && *got.Sub != *w.sub) {
				t.Fatalf("tail %s line %d = %s\nwant key %q data %q sub %v", stream, i, l, w.key, w.data, w.sub)
			}
		}
	}
}
