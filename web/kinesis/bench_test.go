package kinesis

import (
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/internal/jsonscan"
	"github.com/runnel-dev/runnel/streams"
	simd "github.com/segmentio/asm/base64"
)

// BenchmarkPutRecordsDecode is the JSON decode of a 500-record body on the
// fast path and through encoding/json.
func BenchmarkPutRecordsDecode(b *testing.B) {
	body := putRecordsBody(500, 100)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			var in putRecordsInput
			if !parsePutRecordsJSON(body, &in, new([]byte)) {
				b.Fatal("fast path refused")
			}
		}
		b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("pooled", func(b *testing.B) {
		// As the handler decodes: with a pooled scratch and data slab.
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		cpu := cpuclock.Process()
		for i := 0; i < b.N; i++ {
			if n, err := DecodePutRecords(body); err != nil || n != 500 {
				b.Fatal(n, err)
			}
		}
		reportPerRecord(b, cpu, b.N*500)
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			var in putRecordsInput
			if err := decode(codecJSON, body, &in); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkHandlerPutRecords is the server's PutRecords path without the
// network: request parsing, validation, the durable append and the
// response, for 500 × 100-byte records per call.
func BenchmarkHandlerPutRecords(b *testing.B) {
	h, _ := storeHandler(b, Options{CreateDelay: -1}, "bench", 4)
	body := putRecordsBody(500, 100)
	b.ResetTimer()
	cpu := cpuclock.Process()
	for i := 0; i < b.N; i++ {
		if w := serve(h, "PutRecords", contentJSON, body); w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
		}
	}
	reportPerRecord(b, cpu, b.N*500)
}

// BenchmarkHandlerPutRecord is one single-record PutRecord through the
// handler without the network, from 64 goroutines (group commit shares
// the durable writes among them).
func BenchmarkHandlerPutRecord(b *testing.B) {
	h, _ := storeHandler(b, Options{CreateDelay: -1}, "bench", 4)
	body := []byte(`{"StreamName":"bench","PartitionKey":"key","Data":"` + strings.Repeat("A", 136) + `"}`)
	putParallel(b, h, "PutRecord", body, 32, 1)
}

// BenchmarkHandlerPutRecordsConcurrent is BenchmarkHandlerPutRecords from
// 8 goroutines at once, as the SDK bench's 8 clients call: concurrent
// puts share the shards' commit groups (their writes and fdatasyncs), so
// the CPU per record is the one a busy server sees, without HTTP.
func BenchmarkHandlerPutRecordsConcurrent(b *testing.B) {
	h, store := storeHandler(b, Options{CreateDelay: -1}, "bench", 4)
	body := putRecordsBody(500, 100)
	putParallel(b, h, "PutRecords", body, max(1, 8/runtime.GOMAXPROCS(0)), 500)
	if ws := store.WriteStats(); ws.Syncs > 0 {
		b.ReportMetric(float64(ws.Records)/float64(ws.Syncs), "records/sync")
	}
}

// BenchmarkPutRecordsResult renders the JSON answer to a 500-record
// PutRecords over four shards, records routed to them in turn as MD5
// routing scatters them.
func BenchmarkPutRecordsResult(b *testing.B) {
	var h Handler
	res := make([]streams.PutResult, 500)
	for i := range res {
		sh := i % 4
		res[i] = streams.PutResult{ShardID: streams.ShardID(sh), ShardIndex: sh, Seq: uint64(123456789 + i/4)}
	}
	b.ReportAllocs()
	cpu := cpuclock.Process()
	for i := 0; i < b.N; i++ {
		putBuf(h.appendPutRecordsResult(codecJSON, "bench", res, 0, nil, false))
	}
	reportPerRecord(b, cpu, b.N*500)
}

// putParallel runs op with body from p goroutines per GOMAXPROCS, every
// call expecting 200, and reports it as records of perCall records.
func putParallel(b *testing.B, h *Handler, op string, body []byte, p, perCall int) {
	b.SetParallelism(p)
	b.ResetTimer()
	cpu := cpuclock.Process()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w := serve(h, op, contentJSON, body); w.Code != 200 {
				b.Errorf("status %d: %s", w.Code, w.Body.Bytes())
				return
			}
		}
	})
	reportPerRecord(b, cpu, b.N*perCall)
}

// reportPerRecord reports records/s over the benchmark's wall time and the
// process CPU time per record since cpu0 (a cpuclock.Process reading).
func reportPerRecord(b *testing.B, cpu0 time.Duration, records int) {
	cpu := cpuclock.Since(cpu0)
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(records), "cpu-ns/record")
}

// BenchmarkRecordData decodes one record's Data as the fast path does
// (jsonscan.Base64: finding the string's end, then segmentio/asm's
// decoder), and with each decoder alone, at the base64 lengths of 16-,
// 100- and 1000-byte records.
func BenchmarkRecordData(b *testing.B) {
	for _, size := range []int{16, 100, 1000} {
		raw := make([]byte, size)
		for i := range raw {
			raw[i] = byte(i * 7)
		}
		v := base64.StdEncoding.EncodeToString(raw)
		body := []byte(`"` + v + `",`)
		dst := make([]byte, 0, base64.StdEncoding.DecodedLen(len(v)))
		b.Run(fmt.Sprintf("fastpath/%d", len(v)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := jsonscan.Base64(dst, body, 0); !ok {
					b.Fatal("refused")
				}
			}
		})
		b.Run(fmt.Sprintf("asm/%d", len(v)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := simd.StdEncoding.Decode(dst[:cap(dst)], body[1:len(v)+1]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("stdlib/%d", len(v)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := base64.StdEncoding.Decode(dst[:cap(dst)], body[1:len(v)+1]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
