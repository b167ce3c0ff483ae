package kinesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/sources"
)

// silentProxy forwards Kinesis calls to target, except that the first
// unanswered calls of the operation op get no answer at all: the
// connection is taken and the request read, as by a paused process. With
// fail, they are answered at once with a 500 InternalFailure instead.
type silentProxy struct {
	*httptest.Server
	unanswered atomic.Int64 // op calls still to leave without an answer
	held       atomic.Int64 // op calls left without an answer so far
}

func newSilentProxy(t *testing.T, target, op string, unanswered int64, fail bool) *silentProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	release := make(chan struct{})
	p := &silentProxy{}
	p.unanswered.Store(unanswered)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), "."+op) && p.unanswered.Add(-1) >= 0 {
			p.held.Add(1)
			if fail {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(http.StatusInternalServerError)
				w.Write([]byte(`{"__type":"InternalFailure","message":"injected"}`))
				return
			}
			select { // until the caller gives up, or the test ends
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(release); p.Close() })
	return p
}

// TestUnansweredCallsAreRetried reads a shard through an endpoint that
// takes the first GetRecords and GetShardIterator calls and never answers
// them (a paused server): each call is given up after CallTimeout and
// retried, every record is read, and the source warns naming the stream,
// the shard, the endpoint and the call while it gets no answer.
func TestUnansweredCallsAreRetried(t *testing.T) {
	for _, op := range []string{"GetRecords", "GetShardIterator", "ListShards"} {
		t.Run(op, func(t *testing.T) {
			srv, c := runnelWithStream(t, "paused", 1)
			want := map[string]int{}
			var entries []putEntry
			for i := range 50 {
				k := fmt.Sprintf("k%d", i%3)
				entries = append(entries, putEntry{k, fmt.Sprintf(`{"k":%q,"n":%d}`, k, want[k])})
				want[k]++
			}
			if err := putBatch(c, "paused", entries); err != nil {
				t.Fatal(err)
			}
			proxy := newSilentProxy(t, srv.URL, op, 2, false)
			var logs testutil.Buffer
			src := newSource(t, Config{Stream: "paused", Conn: kinesisconn.Conn{Endpoint: proxy.URL}, CallTimeout: 200 * time.Millisecond})
			src.log = slog.New(slog.NewTextHandler(&logs, nil))
			got := readAll(t, src, len(entries))
			checkOncePerKeyOrder(t, got, want)
			if n := proxy.held.Load(); n != 2 {
				t.Fatalf("the proxy left %d %s calls unanswered, want 2", n, op)
			}
			shard := "shardId-000000000000"
			if op == "ListShards" {
				shard = ""
			}
			wantLog := []string{"level=WARN", "stream=paused", "shard=" + shard, "endpoint=" + proxy.URL, "call=" + op, "no answer"}
			found := false
			for _, line := range strings.Split(logs.String(), "\n") {
				ok := true
				for _, w := range wantLog {
					ok = ok && strings.Contains(line, w)
				}
				found = found || ok
			}
			if !found {
				t.Fatalf("no log line holds all of %q; the logs:\n%s", wantLog, logs.String())
			}
			if src.Retried() < 2 {
				t.Fatalf("retried %d calls, want at least the 2 unanswered", src.Retried())
			}
		})
	}
}

// TestFailureSeriesOutlivesCutReads reads a shard whose first 30
// GetRecords calls fail, with Reads cut short every 100 ms as checkpoints
// cut them: the failures are one series, warned of when it starts and
// every tenth failure (3 warnings, not one a Read), and its end is logged
// once.
func TestFailureSeriesOutlivesCutReads(t *testing.T) {
	reads, proxy, logs := readCutShort(t, "failing", 30, true, 0)
	warns := strings.Count(logs, "level=WARN msg=\"kinesis source: call failed")
	recovered := strings.Count(logs, "call succeeded again")
	t.Logf("%d reads, %d of the calls failed, %d warnings", reads, proxy.held.Load(), warns)
	if proxy.held.Load() != 30 || warns != 3 || recovered != 1 || !strings.Contains(logs, "failures=30") {
		t.Fatalf("30 failed calls: want 3 warnings and one line saying the 30 failures ended, got %d and %d; logs:\n%s", warns, recovered, logs)
	}
}

// TestUnansweredCutReadsAreWarned reads a shard through an endpoint that
// never answers the first 40 GetRecords calls, with Reads cut short every
// 100 ms as checkpoints cut them, so that no single call reaches
// CallTimeout (300 ms): the source still warns that the endpoint does not
// answer, then reads the record once it does.
func TestUnansweredCutReadsAreWarned(t *testing.T) {
	reads, _, logs := readCutShort(t, "cut", 40, false, 300*time.Millisecond)
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "no answer") ||
		!strings.Contains(logs, "call succeeded again") {
		t.Fatalf("%d reads cut short while the endpoint did not answer: no warning that it does not answer, or none that it does again; logs:\n%s", reads, logs)
	}
}

// readCutShort puts a record in a new one-shard stream and reads it
// through a silentProxy that leaves the first unanswered GetRecords calls
// without an answer (with fail, fails them), by a source with the given
// CallTimeout (0: the default) whose Reads are cut short every 100 ms, as
// checkpoints cut them. It returns how many Reads that took, the proxy
// and the source's logs; it fails the test after 2000 Reads without the
// record.
func readCutShort(t *testing.T, stream string, unanswered int64, fail bool, callTimeout time.Duration) (reads int, proxy *silentProxy, logs string) {
	t.Helper()
	srv, c := runnelWithStream(t, stream, 1)
	if err := putBatch(c, stream, []putEntry{{"k", `{"k":"k"}`}}); err != nil {
		t.Fatal(err)
	}
	proxy = newSilentProxy(t, srv.URL, "GetRecords", unanswered, fail)
	var buf testutil.Buffer
	src := newSource(t, Config{Stream: stream, Conn: kinesisconn.Conn{Endpoint: proxy.URL}, CallTimeout: callTimeout})
	src.log = slog.New(slog.NewTextHandler(&buf, nil))
	src.backoffMax = 20 * time.Millisecond
	r, err := src.Open(context.Background(), sources.Shard{ID: "shardId-000000000000"}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	recs := make([]sources.Record, 10)
	for n := 0; n == 0; reads++ {
		if reads == 2000 {
			t.Fatalf("no record after %d reads; logs:\n%s", reads, buf.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		n, err = r.Read(ctx, recs)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read %d: %v", reads, err)
		}
	}
	return reads, proxy, buf.String()
}
