package kinesis

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/runnel-dev/runnel/streams"
)

func sortedOps() []string {
	ops := make([]string, 0, len(operations))
	for op := range operations {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

// fuzzHandler serves a store with one 2-shard stream "f".
func fuzzHandler(f *testing.F) *Handler {
	h, _ := storeHandler(f, Options{CreateDelay: -1, SubscriptionTTL: 10 * time.Millisecond, Heartbeat: time.Millisecond}, "f", 2)
	return h
}

func serve(h *Handler, op string, ct string, body []byte) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, opRequest(op, ct, body))
	return w
}

// opRequest is a Kinesis request of operation op, with a body of content
// type ct, as an SDK sends it (signature headers included, not checked).
func opRequest(op string, ct string, body []byte) *http.Request {
	req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("X-Amz-Target", targetPrefix+op)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=c")
	req.Header.Set("X-Amz-Date", "20240101T000000Z")
	return req
}

// FuzzRequestBody sends arbitrary bodies, in both encodings, to every
// operation: never a panic, never a 5xx.
func FuzzRequestBody(f *testing.F) {
	h := fuzzHandler(f)
	ops := sortedOps()
	seeds := []string{
		`{}`, `{"StreamName":"f"}`, `{"StreamName":"f","ShardCount":1}`,
		`{"StreamName":"f","Records":[{"Data":"AAE=","PartitionKey":"k"},{"Data":"","PartitionKey":"k2","ExplicitHashKey":"7"}]}`,
		`{"StreamName":"f","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1.5e9}`,
		`{"StreamName":"f","ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":0}}`,
		`{"ShardIterator":"AAAA"}`, `{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/f","ConsumerName":"c"}`,
		`{"StreamName":"f","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"1"}`,
	}
	for i, s := range seeds {
		for j := range ops {
			if j%len(seeds) == i {
				f.Add(uint8(j), false, []byte(s))
				var v any
				_ = json.Unmarshal([]byte(s), &v)
				cb, _ := cbor.Marshal(v)
				f.Add(uint8(j), true, cb)
			}
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, useCBOR bool, body []byte) {
		ct := contentJSON
		if useCBOR {
			ct = contentCBOR
		}
		name := ops[int(op)%len(ops)]
		w := serve(h, name, ct, body)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", name, ct, body, w.Code, w.Body.Bytes())
		}
		if w.Code == http.StatusOK || name == "SubscribeToShard" {
			return
		}
		if w.Header().Get("X-Amzn-ErrorType") == "" {
			t.Fatalf("%s: error %d without X-Amzn-ErrorType", name, w.Code)
		}
	})
}

// FuzzPutRecordsFastPath: whatever the fast scanner accepts, the general
// decoder accepts too, with the same result.
func FuzzPutRecordsFastPath(f *testing.F) {
	for _, s := range []string{
		`{"StreamName":"s","Records":[{"Data":"aGVsbG8=","PartitionKey":"k"}]}`,
		`{"Records":[{"PartitionKey":"é","Data":"","ExplicitHashKey":"12"}],"StreamARN":"arn"}`,
		` { "Records" : [ ] } `, `{"Records":[{}]}`, "{\"Records\":[{\"PartitionKey\":\"\xa9\"}]}", `{"StreamName":"a\"b"}`, `{"Records":[{"Data":"aGVsbG8"}]}`,
		"{\"Records\":[{\"Data\":\"aGVs\nbG8=\",\"PartitionKey\":\"k\"}]}", `{"Records":[{"Data":"aGVs\u0062G8=","PartitionKey":"k"}]}`,
		`{"Records":[{"PartitionKey":"a","Data":"AA==","PartitionKey":"b"},{"Data":"AA=="},{"PartitionKey":"c"}]}`,
		`{"Records":[{ "Data" : "AA==" , "PartitionKey" :"k"}]}`, `{"Records":[{"DataX":"AA==","PartitionKey":"k"}]}`,
		`{"Records":[{"D\u0061ta":"AA==","PartitionKey":"k"}]}`, `{"Records":[{"ExplicitHashKey":"1","PartitionKey":"k","Data":"AA=="}]}`,
		`{"Records":[{"PartitionKey":"k","Data":"AA==","ExplicitHashKey":"2","Data":"AQ=="}]}`, `{"Records":[{"Data"`,
		// Long enough for the SIMD decoder, plain, with a non-zero
		// trailing bit and with CR LF in the middle.
		`{"Records":[{"Data":"` + strings.Repeat("aGVsbG8h", 17) + `AA==","PartitionKey":"k"}]}`,
		`{"Records":[{"Data":"` + strings.Repeat("aGVsbG8h", 17) + `AF==","PartitionKey":"k"}]}`,
		"{\"Records\":[{\"Data\":\"" + strings.Repeat("aGVsbG8h", 8) + "\r\n\r\n" + strings.Repeat("aGVsbG8h", 8) + "\",\"PartitionKey\":\"k\"}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast putRecordsInput
		if !parsePutRecordsJSON(body, &fast, new([]byte)) {
			return
		}
		var slow putRecordsInput
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json rejects it: %v", body, err)
		}
		for i := range slow.Records {
			if slow.Records[i].Data == nil && fast.Records[i].Data != nil && len(fast.Records[i].Data) == 0 {
				slow.Records[i].Data = []byte{}
			}
		}
		if !reflect.DeepEqual(normalize(fast), normalize(slow)) {
			t.Fatalf("%q:\nfast %+v\nslow %+v", body, fast, slow)
		}
	})
}

func normalize(in putRecordsInput) string {
	b, _ := json.Marshal(in)
	return string(b)
}

// putRecordsBody is a JSON PutRecords body as the SDKs write it.
func putRecordsBody(n, size int) []byte {
	var in struct {
		StreamName string
		Records    []struct {
			Data         []byte
			PartitionKey string
		}
	}
	in.StreamName = "bench"
	for i := 0; i < n; i++ {
		in.Records = append(in.Records, struct {
			Data         []byte
			PartitionKey string
		}{make([]byte, size), "key-" + itoa(i)})
	}
	b, _ := json.Marshal(in)
	return b
}

// FuzzPutRecordFastPath: the single-record scanner agrees with
// encoding/json wherever it accepts a body.
func FuzzPutRecordFastPath(f *testing.F) {
	for _, s := range []string{
		`{"StreamName":"s","PartitionKey":"k","Data":"aGVsbG8="}`,
		`{"StreamARN":"a","PartitionKey":"é","Data":"","ExplicitHashKey":"1","SequenceNumberForOrdering":"2"}`,
		`{}`, `{"Data":"aGVsbG8"}`, "{\"PartitionKey\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast, slow putRecordInput
		if !parsePutRecordJSON(body, &fast) {
			return
		}
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json rejects it: %v", body, err)
		}
		if slow.Data == nil && len(fast.Data) == 0 {
			fast.Data = nil
		}
		a, _ := json.Marshal(fast)
		b, _ := json.Marshal(slow)
		if string(a) != string(b) {
			t.Fatalf("%q:\nfast %s\nslow %s", body, a, b)
		}
	})
}

func TestSeqStringMatchesStreams(t *testing.T) {
	for _, c := range []struct {
		tag   uint64
		shard int
		ctr   uint64
	}{{0, 0, 0}, {0, 1, 1}, {7, 12, 1 << 40}, {999_999_999_999, 1023, ^uint64(0)}} {
		if got, want := seqString(c.tag, c.shard, c.ctr), streams.FormatSeq(c.tag, c.shard, c.ctr); got != want {
			t.Fatalf("seqString(%d, %d, %d) = %s, want %s", c.tag, c.shard, c.ctr, got, want)
		}
	}
}
