package kinesis

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/uuid"
)

// call sends a raw request and returns status, headers and body.
func (e *env) call(target, contentType string, body []byte, signed bool) (int, http.Header, []byte) {
	e.t.Helper()
	resp := e.send(target, contentType, body, signed)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// send sends a raw request (to the operation target, without
// targetPrefix; "" for none) and returns the response, whose body the
// caller closes.
func (e *env) send(target, contentType string, body []byte, signed bool) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", targetPrefix+target)
	}
	if signed {
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc")
		req.Header.Set("X-Amz-Date", "20240101T000000Z")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func errType(t *testing.T, b []byte) (string, string) {
	t.Helper()
	var m struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return m.Type, m.Message
}

func TestProtocolErrorsAndHeaders(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CreateDelay = -1 })
	cases := []struct {
		name, target, ct, body string
		signed                 bool
		status                 int
		typ                    string
	}{
		{"unsigned", "ListStreams", contentJSON, `{}`, false, 400, "MissingAuthenticationTokenException"},
		{"unknown operation", "Nope", contentJSON, `{}`, true, 400, "UnknownOperationException"},
		{"no target", "", contentJSON, `{}`, true, 400, "UnknownOperationException"},
		{"malformed JSON", "ListStreams", contentJSON, `{"Limit":`, true, 400, "SerializationException"},
		{"wrong type", "CreateStream", contentJSON, `{"StreamName":"x","ShardCount":"two"}`, true, 400, "SerializationException"},
		{"bad base64", "PutRecord", contentJSON, `{"StreamName":"x","PartitionKey":"k","Data":"!!"}`, true, 400, "SerializationException"},
		{"missing member", "CreateStream", contentJSON, `{"ShardCount":1}`, true, 400, "ValidationException"},
		{"malformed CBOR", "ListStreams", contentCBOR, "\xbf\x61", true, 400, "SerializationException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, hd, b := e.call(tc.target, tc.ct, []byte(tc.body), tc.signed)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%s)", status, tc.status, b)
			}
			var typ string
			if tc.ct == contentCBOR {
				var m map[string]string
				if err := cbor.Unmarshal(b, &m); err != nil {
					t.Fatalf("CBOR error body: %v", err)
				}
				typ = m["__type"]
			} else {
				typ, _ = errType(t, b)
			}
			if typ != tc.typ || hd.Get("X-Amzn-ErrorType") != tc.typ {
				t.Fatalf("__type %q (header %q), want %q: %s", typ, hd.Get("X-Amzn-ErrorType"), tc.typ, b)
			}
		})
	}
	status, hd, b := e.call("ListStreams", contentJSON, []byte(`{}`), true)
	if status != 200 || hd.Get("Content-Type") != contentJSON || hd.Get("Content-Length") != strconv.Itoa(len(b)) {
		t.Fatalf("ListStreams: %d %v %s", status, hd, b)
	}
	if _, err := uuid.Parse(hd.Get("X-Amzn-Requestid")); err != nil {
		t.Fatalf("x-amzn-RequestId %q is not a UUID", hd.Get("X-Amzn-Requestid"))
	}
	_, _, b = e.call("CreateStream", contentJSON, []byte(`{"StreamName":"x","ShardCount":0,"StreamModeDetails":{"StreamMode":"FAST"}}`), true)
	if _, msg := errType(t, b); msg != "2 validation errors detected: Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1; Value 'FAST' at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]" {
		t.Fatalf("message %q", msg)
	}
}

// TestCBORRoundTrip puts and gets records in CBOR, as the Java SDK, KCL and
// KPL do: blobs as byte strings, timestamps as tag 1 epoch milliseconds.
func TestCBORRoundTrip(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CreateDelay = -1 })
	mustCBOR := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	status, hd, b := e.call("CreateStream", contentCBOR, mustCBOR(map[string]any{"StreamName": "cb", "ShardCount": 2}), true)
	if status != 200 || hd.Get("Content-Type") != contentCBOR {
		t.Fatalf("create: %d %x", status, b)
	}
	payload := []byte{0, 1, 2, 0xff}
	recs := []map[string]any{}
	for i := 0; i < 10; i++ {
		recs = append(recs, map[string]any{"Data": payload, "PartitionKey": "pk" + strconv.Itoa(i)})
	}
	status, _, b = e.call("PutRecords", contentCBOR, mustCBOR(map[string]any{"StreamName": "cb", "Records": recs}), true)
	var put struct {
		FailedRecordCount int
		Records           []struct{ SequenceNumber, ShardId string }
	}
	if status != 200 || cbor.Unmarshal(b, &put) != nil || len(put.Records) != 10 || put.FailedRecordCount != 0 {
		t.Fatalf("put records: %d %x", status, b)
	}
	total := 0
	for _, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
		_, _, b = e.call("GetShardIterator", contentCBOR, mustCBOR(map[string]any{"StreamName": "cb", "ShardId": shard, "ShardIteratorType": "AT_TIMESTAMP",
			"Timestamp": cbor.Tag{Number: 1, Content: time.Now().Add(-time.Minute).UnixMilli()}}), true)
		var it struct{ ShardIterator string }
		if err := cbor.Unmarshal(b, &it); err != nil || it.ShardIterator == "" {
			t.Fatalf("iterator: %v %x", err, b)
		}
		_, _, b = e.call("GetRecords", contentCBOR, mustCBOR(map[string]any{"ShardIterator": it.ShardIterator}), true)
		var raw map[string]cbor.RawMessage
		if err := cbor.Unmarshal(b, &raw); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Records []struct {
				Data                        []byte
				PartitionKey                string
				SequenceNumber              string
				ApproximateArrivalTimestamp cbor.Tag
			}
			NextShardIterator  string
			MillisBehindLatest int64
		}
		if err := cbor.Unmarshal(b, &got); err != nil {
			t.Fatalf("get records: %v", err)
		}
		for _, r := range got.Records {
			ms, ok := r.ApproximateArrivalTimestamp.Content.(uint64)
			if !bytes.Equal(r.Data, payload) || r.ApproximateArrivalTimestamp.Number != 1 || !ok || time.Since(time.UnixMilli(int64(ms))) > time.Minute {
				t.Fatalf("record %+v", r)
			}
		}
		if got.NextShardIterator == "" {
			t.Fatal("no next iterator on an open shard")
		}
		total += len(got.Records)
	}
	if total != 10 {
		t.Fatalf("read back %d records", total)
	}
}

// TestEventStreamFraming checks the message framing against a decoder
// written from the format's description.
func TestEventStreamFraming(t *testing.T) {
	msg := appendMessage(nil, [][2]string{{":event-type", "initial-response"}, {":message-type", "event"}}, []byte("{}"))
	total := binary.BigEndian.Uint32(msg)
	hlen := binary.BigEndian.Uint32(msg[4:])
	if int(total) != len(msg) || binary.BigEndian.Uint32(msg[8:]) != crc32.ChecksumIEEE(msg[:8]) ||
		binary.BigEndian.Uint32(msg[len(msg)-4:]) != crc32.ChecksumIEEE(msg[:len(msg)-4]) {
		t.Fatalf("bad framing % x", msg)
	}
	h := msg[12 : 12+hlen]
	if n := int(h[0]); string(h[1:1+n]) != ":event-type" || h[1+n] != 7 || string(h[4+n:4+n+16]) != "initial-response" {
		t.Fatalf("bad header % x", h)
	}
	if string(msg[12+hlen:len(msg)-4]) != "{}" {
		t.Fatal("bad payload")
	}
}

// readMessage reads one event-stream message: its string headers and
// payload.
func readMessage(t *testing.T, r io.Reader) (map[string]string, []byte) {
	t.Helper()
	var pre [12]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		t.Fatalf("read prelude: %v", err)
	}
	total, hlen := binary.BigEndian.Uint32(pre[:]), binary.BigEndian.Uint32(pre[4:])
	if binary.BigEndian.Uint32(pre[8:]) != crc32.ChecksumIEEE(pre[:8]) {
		t.Fatal("bad prelude CRC")
	}
	rest := make([]byte, total-12)
	if _, err := io.ReadFull(r, rest); err != nil {
		t.Fatalf("read message: %v", err)
	}
	msg := append(pre[:], rest...)
	if binary.BigEndian.Uint32(msg[len(msg)-4:]) != crc32.ChecksumIEEE(msg[:len(msg)-4]) {
		t.Fatal("bad message CRC")
	}
	hd := map[string]string{}
	for h := rest[:hlen]; len(h) > 0; {
		n := int(h[0])
		name := string(h[1 : 1+n])
		vlen := int(binary.BigEndian.Uint16(h[2+n:]))
		hd[name] = string(h[4+n : 4+n+vlen])
		h = h[4+n+vlen:]
	}
	return hd, rest[hlen : len(rest)-4]
}

// TestSubscribeToShardCBOROverHTTP1 reads SubscribeToShard as a CBOR
// client over HTTP/1.1: the initial response, a record, then heartbeats.
func TestSubscribeToShardCBOROverHTTP1(t *testing.T) {
	e := newEnv(t, nil)
	e.create("cs", 1)
	arn := e.register("cs", "java")
	body, _ := cbor.Marshal(map[string]any{"ConsumerARN": arn, "ShardId": "shardId-000000000000", "StartingPosition": map[string]any{"Type": "LATEST"}})
	resp := e.send("SubscribeToShard", contentCBOR, body, true)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.amazon.eventstream" || resp.ProtoMajor != 1 {
		t.Fatalf("response %d %s HTTP/%d", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ProtoMajor)
	}
	hd, _ := readMessage(t, resp.Body)
	if hd[":event-type"] != "initial-response" || hd[":message-type"] != "event" {
		t.Fatalf("first message headers %v", hd)
	}
	status, _, _ := e.call("PutRecord", contentJSON, []byte(`{"StreamName":"cs","PartitionKey":"k","Data":"AAEC"}`), true)
	if status != 200 {
		t.Fatalf("put: %d", status)
	}
	var got, heartbeats int
	for got == 0 || heartbeats == 0 {
		hd, payload := readMessage(t, resp.Body)
		if hd[":event-type"] != "SubscribeToShardEvent" || hd[":content-type"] != contentCBOR {
			t.Fatalf("event headers %v", hd)
		}
		var ev struct {
			Records                    []struct{ Data []byte }
			ContinuationSequenceNumber string
		}
		if err := cbor.Unmarshal(payload, &ev); err != nil || len(ev.ContinuationSequenceNumber) != 56 {
			t.Fatalf("event %x: %v", payload, err)
		}
		if len(ev.Records) == 0 {
			heartbeats++
			continue
		}
		if !bytes.Equal(ev.Records[0].Data, []byte{0, 1, 2}) {
			t.Fatalf("record data %x", ev.Records[0].Data)
		}
		got++
	}
}
