package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/runnel-dev/runnel/client/internal/testserver"
	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/internal/backoff"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestReadKind: each error a read can meet falls in the kind its warning
// names; only refused credentials stop the worker.
func TestReadKind(t *testing.T) {
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	status := func(code int) error {
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("x")}}
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("get records: %w", errors.New("dial tcp 127.0.0.1:1: connect: connection refused")), readUnreachable},
		{status(502), readUnreachable},
		{api("ProvisionedThroughputExceededException"), readThrottled},
		{api("LimitExceededException"), readThrottled},
		{api("InternalFailure"), readServer},
		{api("ResourceNotFoundException"), readNotFound},
		{api("AccessDeniedException"), readDenied},
		{api("UnrecognizedClientException"), readDenied},
		{api("ExpiredTokenException"), readDenied},
		{api("MissingAuthenticationTokenException"), readDenied}, // Runnel's own code for a call without a token
		{api("IncompleteSignatureException"), readDenied},
		{status(403), readDenied},
		{status(401), readDenied},
		{status(400), readRefused},
		{api("InvalidArgumentException"), readRefused},
	} {
		if got := readKind(c.err); got != c.want {
			t.Errorf("readKind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// failingReads is a proxy to a real server that fails GetRecords calls
// as its plan says, one entry a call: "down" drops the connection,
// "throttled", "gone" and "denied" answer Kinesis's exceptions.
type failingReads struct {
	mu      sync.Mutex
	plan    []string
	always  string // once the plan is spent ("" answers)
	records int    // GetRecords calls answered
}

func (f *failingReads) next() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.plan) > 0 {
		m := f.plan[0]
		f.plan = f.plan[1:]
		return m
	}
	if f.always == "" {
		f.records++
	}
	return f.always
}

func (f *failingReads) set(always string, plan ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.always, f.plan = always, plan
}

func (f *failingReads) handler(target string) http.Handler {
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".GetRecords") {
			proxy.ServeHTTP(w, r)
			return
		}
		mode := f.next()
		exception := map[string]string{"throttled": "ProvisionedThroughputExceededException", "gone": "ResourceNotFoundException",
			"denied": "AccessDeniedException"}[mode]
		switch {
		case mode == "down":
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case exception != "":
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":%q,"message":"refused by the test"}`, exception)
		default:
			proxy.ServeHTTP(w, r)
		}
	})
}

// TestReadFailuresAreLogged runs a worker against a real server behind a
// proxy that fails its reads for a while: the server unreachable, then
// throttling, then the shard not found. The worker says so at WARN once
// per kind (not once per retry), then at INFO that reads work again with
// the count of failures by kind, and hands every record. When the
// credentials are then refused, Run returns a *ReadError.
func TestReadFailuresAreLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := testserver.Start(t)
	srv.CreateStream("s", 1)
	reads := &failingReads{}
	reads.set("", "down", "down", "throttled", "throttled", "gone", "gone")
	proxy := httptest.NewServer(reads.handler(srv.URL))
	defer proxy.Close()

	var logs testutil.Buffer
	g := Runnel(proxy.URL, "s", "g", "", consumergroups.Config{LeaseDuration: time.Hour})
	g.Worker = "w"
	g.IdleTimeBetweenReads = 10 * time.Millisecond
	g.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var handled tally
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, g, handled.handle) }()
	postNumbered(t, srv, 0, 5)
	testutil.Eventually(t, 60*time.Second, func() bool { return handled.distinct() == 5 }, "the records were not handled after the reads recovered; log:\n%s", &logs)
	testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "reads of the shard work again") },
		"no INFO that reads work again; log:\n%s", &logs)

	log := logs.String()
	if n := strings.Count(log, "level=WARN msg=\"cannot read the shard: "); n != 3 {
		t.Errorf("%d warnings that the shard cannot be read, want 3 (one per kind, not one per retry); log:\n%s", n, log)
	}
	for _, kind := range []string{"unreachable", `"not found"`, "throttled"} {
		if !strings.Contains(log, "kind="+kind) {
			t.Errorf("no warning of kind %s; log:\n%s", kind, log)
		}
	}
	if !strings.Contains(log, "failures=\"not_found=2 throttled=2 unreachable=2\"") {
		t.Errorf("the INFO of recovery does not count the failures by kind; log:\n%s", log)
	}
	if strings.Contains(log, "level=ERROR") {
		t.Errorf("an ERROR while reads were retried; log:\n%s", log)
	}

	reads.set("denied")
	postNumbered(t, srv, 5, 6)
	select {
	case err := <-done:
		var re *ReadError
		if !errors.As(err, &re) || re.Op != "GetRecords" || !strings.Contains(err.Error(), "AccessDeniedException") {
			t.Fatalf("Run returned %v, want a *ReadError of GetRecords naming AccessDeniedException", err)
		}
		t.Logf("Run: %v\nlog:\n%s", err, &logs)
		resp, err := http.Get(srv.URL + "/api/v1/streams/s/consumer-groups/g")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var grp struct {
			Leases []struct {
				Owner string `json:"owner"`
			} `json:"leases"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&grp); err != nil || len(grp.Leases) != 1 || grp.Leases[0].Owner != "" {
			t.Errorf("after Run returned, the group's leases are %+v (%v), want the one lease free: the worker left", grp.Leases, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("Run did not return after the reads were denied; log:\n%s", logs.String())
	}
}

// TestReadHealthRateLimits: in a long run of failures a shard reader
// warns once per kind, then sums up once per readSummaryEvery; once
// reads work it says so at INFO; failures that come back soon after
// warn again only for a kind not warned of lately.
func TestReadHealthRateLimits(t *testing.T) {
	var logs testutil.Buffer
	now := time.Unix(1_800_000_000, 0)
	h := &readHealth{log: slog.New(slog.NewTextHandler(&logs, nil)), shard: "s0", clock: func() time.Time { return now },
		b: backoff.Backoff{Base: time.Nanosecond, Max: time.Nanosecond}}
	down := errors.New("connection refused")
	throttled := &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}
	fail := func(err error, n int, step time.Duration) {
		for range n {
			if e := h.failed(context.Background(), "GetRecords", err); e != nil {
				t.Fatal(e)
			}
			now = now.Add(step)
		}
	}
	count := func(msg string) int { return strings.Count(logs.String(), msg) }
	fail(down, 100, time.Second) // 100 s down: one warning, one summary
	fail(throttled, 5, time.Second)
	if a, b := count("cannot read the shard: "), count("still cannot read the shard"); a != 2 || b != 1 {
		t.Errorf("%d warnings and %d summaries after 100 s down and 5 throttled, want 2 and 1:\n%s", a, b, &logs)
	}
	h.ok()
	if !strings.Contains(logs.String(), `msg="reads of the shard work again" shard=s0 failed_for=1m45s failures="throttled=5 unreachable=100"`) {
		t.Errorf("no INFO of recovery with the failures:\n%s", &logs)
	}
	h.ok() // reads that keep working say nothing more
	fail(throttled, 1, time.Second)
	h.ok()
	if a, b := count("cannot read the shard: "), count("work again"); a != 2 || b != 1 {
		t.Errorf("a throttled read soon after a warning of throttling: %d warnings, %d recoveries, want 2 and 1:\n%s", a, b, &logs)
	}
	now = now.Add(readSummaryEvery)
	fail(throttled, 1, time.Second)
	if a := count("cannot read the shard: "); a != 3 {
		t.Errorf("a throttled read long after the last warning: %d warnings, want 3:\n%s", a, &logs)
	}
	if re := h.failed(context.Background(), "GetRecords", &smithy.GenericAPIError{Code: "AccessDeniedException"}); !errors.As(re, new(*ReadError)) {
		t.Errorf("access denied: %v, want a *ReadError", re)
	}
}
