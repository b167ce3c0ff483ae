package kinesisbench

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/runnel-dev/runnel/web/kinesis"
)

// discardHandler is the decode-and-discard server: it reads PutRecords and
// PutRecord bodies, decodes them as Runnel's handler does
// (kinesis.DecodePutRecords), and answers with made-up sequence numbers
// in the shape Runnel's answers have. It is the ceiling a server could
// reach with these clients on this machine.
func discardHandler() http.Handler {
	var seq atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bp := discardBufs.Get().(*[]byte)
		defer discardBufs.Put(bp)
		body, err := readAll(r.Body, r.ContentLength, (*bp)[:0])
		*bp = body[:0]
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out := discardOut.Get().(*[]byte)
		defer discardOut.Put(out)
		b := (*out)[:0]
		switch r.Header.Get("X-Amz-Target") {
		case "Kinesis_20131202.PutRecords":
			n, err := kinesis.DecodePutRecords(body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			first := seq.Add(uint64(n)) - uint64(n) + 1
			b = append(b, `{"FailedRecordCount":0,"Records":[`...)
			for i := range n {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendResult(b, first+uint64(i))
			}
			b = append(b, "]}"...)
		case "Kinesis_20131202.PutRecord":
			if err := kinesis.DecodePutRecord(body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			b = appendResult(b, seq.Add(1))
		default:
			http.Error(w, "the decode-and-discard server takes PutRecords and PutRecord", http.StatusBadRequest)
			return
		}
		*out = b[:0]
		w.Header()["Content-Type"] = []string{"application/x-amz-json-1.1"}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(b))}
		w.Write(b)
	})
}

var (
	discardBufs = sync.Pool{New: func() any { b := make([]byte, 0, 128<<10); return &b }}
	discardOut  = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
)

// appendResult writes one record's result as Runnel does: a 56-digit
// sequence number and the shard's id.
func appendResult(b []byte, seq uint64) []byte {
	const zeros = "00000000000000000000000000000000000000000000"
	b = append(b, `{"SequenceNumber":"49`...)
	b = append(b, zeros[:10]...)
	var tmp [20]byte
	d := strconv.AppendUint(tmp[:0], seq, 10)
	b = append(b, zeros[:max(0, 44-len(d))]...)
	b = append(b, d...)
	return append(b, `","ShardId":"shardId-000000000000"}`...)
}

// readAll reads a request body of n bytes (-1: unknown) into buf.
func readAll(r io.Reader, n int64, buf []byte) ([]byte, error) {
	if n > 0 && int64(cap(buf)) < n+1 {
		buf = make([]byte, 0, n+1)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
