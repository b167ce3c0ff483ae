package kinesis

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/runnel-dev/runnel/streams"
)

// DiscardHandler decodes PutRecords and PutRecord bodies and answers with
// made-up results: the ceiling a server could reach with these clients
// (the benchmark harness, internal/kinesisbench, measures Runnel against it).
func DiscardHandler() http.Handler {
	h := &Handler{}
	var seq atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, aerr := readBody(r)
		if aerr != nil {
			http.Error(w, aerr.Message, http.StatusBadRequest)
			return
		}
		defer putBuf(body)
		var b []byte
		switch r.Header.Get("X-Amz-Target") {
		case targetPrefix + "PutRecords":
			var in putRecordsInput
			slab := getBuf(base64.StdEncoding.DecodedLen(len(body)))
			defer func() { putBuf(slab) }()
			if !parsePutRecordsJSON(body, &in, &slab) {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			res := make([]streams.PutResult, len(in.Records))
			first := seq.Add(uint64(len(res)))
			for i := range res {
				res[i] = streams.PutResult{ShardID: "shardId-000000000000", Seq: first + uint64(i)}
			}
			b = h.appendPutRecordsResult(codecJSON, "", res, nil, nil, false)
		case targetPrefix + "PutRecord":
			var in putRecordInput
			if !parsePutRecordJSON(body, &in) {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			b = getBuf(128)
			b = append(b, `{"SequenceNumber":"`...)
			b = appendSeq(b, 0, seq.Add(1))
			b = append(b, `","ShardId":"shardId-000000000000"}`...)
		default:
			http.Error(w, "the decode-and-discard server takes PutRecords and PutRecord", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", contentJSON)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
		putBuf(b)
	})
}
