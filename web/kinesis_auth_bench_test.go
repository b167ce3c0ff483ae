package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
	"github.com/runnel-dev/runnel/web/auth"
	"github.com/runnel-dev/runnel/web/kinesis"
)

// BenchmarkKinesisPutRecordsAuth is the server's cost of a PutRecords call
// of 500 × 100-byte records through the whole web server, with auth off
// and on (SigV4 verified, body hashed), in one process so that both see
// the same machine. The store syncs on an interval, so that the figure is
// the CPU of the request path rather than the disk's latency.
func BenchmarkKinesisPutRecordsAuth(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := streamstest.Open(b, streams.Options{Logger: log, SyncInterval: time.Second}, "bench", 4)
	tokens, err := auth.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	c, err := tokens.Create("bench", auth.Writer, nil, true)
	if err != nil {
		b.Fatal(err)
	}
	type rec struct{ Data, PartitionKey string }
	recs := make([]rec, 500)
	for i := range recs {
		recs[i] = rec{base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'x'}, 100)), "k" + strings.Repeat("0", i%7)}
	}
	body, _ := json.Marshal(map[string]any{"StreamName": "bench", "Records": recs})
	sum := sha256.Sum256(body)
	newReq := func() *http.Request {
		r := httptest.NewRequest("POST", "http://127.0.0.1:7070/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecords")
		return r
	}
	// A signed request stays valid for the skew window; its headers are
	// reused for every call.
	signed := newReq()
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey},
		signed, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	// "noop" replaces the Kinesis handler by one that reads the body and
	// answers 200: the difference between its two modes is what auth
	// adds to a call.
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	for _, mode := range []string{"off", "on", "noop-off", "noop-on"} {
		b.Run("auth="+mode, func(b *testing.B) {
			var kh http.Handler = kinesis.New(st, kinesis.Options{Logger: log, CreateDelay: -1})
			if strings.HasPrefix(mode, "noop-") {
				kh = noop
			}
			srv := New(Config{Store: st, Logger: log, Security: Security{Auth: strings.HasSuffix(mode, "on"), Tokens: tokens}, Kinesis: kh})
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			cpu0 := cpuclock.Process()
			for b.Loop() {
				r := newReq()
				r.Header = signed.Header.Clone()
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, r)
				if w.Code != 200 || strings.Contains(w.Body.String(), `"ErrorCode"`) {
					b.Fatalf("%d %s", w.Code, w.Body.String())
				}
			}
			b.ReportMetric(float64(cpuclock.Since(cpu0))/float64(b.N), "cpu-ns/op")
		})
	}
}
