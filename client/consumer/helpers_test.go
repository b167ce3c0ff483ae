package consumer

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/runnel-dev/runnel/client/internal/testserver"
)

// postRecords puts records (JSON objects {"key":...,"data":...}) to
// stream s of srv through the Runnel API; the test fails unless the
// server stores them.
func postRecords(t *testing.T, srv *testserver.Server, records ...string) {
	t.Helper()
	resp, err := http.Post(srv.URL+"/api/v1/streams/s/records", "application/json", strings.NewReader(`{"records":[`+strings.Join(records, ",")+`]}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("put: %v %v", err, resp)
	}
	resp.Body.Close()
}

// postNumbered puts records from to to (exclusive) to stream s of srv,
// record i with key k<i> and data <i>.
func postNumbered(t *testing.T, srv *testserver.Server, from, to int) {
	t.Helper()
	var recs []string
	for i := from; i < to; i++ {
		recs = append(recs, fmt.Sprintf(`{"key":"k%d","data":"%d"}`, i, i))
	}
	postRecords(t, srv, recs...)
}

// tally is a handler that counts how many times it was handed each
// record (by its data).
type tally struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *tally) handle(_ context.Context, b Batch) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == nil {
		h.n = map[string]int{}
	}
	for _, r := range b.Records {
		h.n[string(r.Data)]++
	}
	return nil
}

// distinct is how many different records were handled.
func (h *tally) distinct() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.n)
}

// counts returns a copy of the counts by record data.
func (h *tally) counts() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.n)
}
