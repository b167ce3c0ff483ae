package kinesis

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
)

// env is a real loopback server with the handler over a real store.
type env struct {
	t      *testing.T
	store  *streams.Store
	h      *Handler
	srv    *httptest.Server
	client *sdk.Client
	clock  *fakeClock
	// settleBy is how far to move the clock for a status change to end.
	settleBy time.Duration
}

// settle moves the clock past every CREATING/UPDATING/DELETING window.
func (e *env) settle() { e.clock.Advance(e.settleBy) }

// fakeClock is a clock tests can move forward; it follows real time
// otherwise.
type fakeClock struct {
	mu     sync.Mutex
	skew   time.Duration
	frozen time.Time // when set, time stands still here
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.frozen.IsZero() {
		return c.frozen
	}
	return time.Now().Add(c.skew)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.skew += d
	if !c.frozen.IsZero() {
		c.frozen = c.frozen.Add(d)
	}
	c.mu.Unlock()
}

// Freeze stops the clock (until the test ends).
func (c *fakeClock) Freeze() {
	now := c.Now()
	c.mu.Lock()
	c.frozen = now
	c.mu.Unlock()
}

// Status windows. Tests that look at CREATING, UPDATING or DELETING use
// slowStatus (an hour) and move the shared fake clock past it, so that no
// assertion depends on how fast the machine is; the others see every
// change at once.
const slowStatus = time.Hour

func newEnv(t *testing.T, mod func(*Options)) *env {
	return newEnvWith(t, 0, mod)
}

func newEnvWith(t *testing.T, updateVisibility time.Duration, mod func(*Options)) *env {
	t.Helper()
	clock := &fakeClock{}
	store, err := streams.Open(t.TempDir(), streams.Options{UpdateVisibility: updateVisibility, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{CreateDelay: -1, Now: clock.Now, Heartbeat: 200 * time.Millisecond}
	if mod != nil {
		mod(&opts)
	}
	h := newHandler(store, opts)
	srv := httptest.NewServer(h)
	e := &env{t: t, store: store, h: h, srv: srv, clock: clock, client: newClient(srv.URL), settleBy: max(h.opts.CreateDelay, updateVisibility)}
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		store.Close()
	})
	return e
}

func newClient(url string) *sdk.Client {
	return sdk.New(sdk.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}, nil
		}),
		Retryer: testRetryer(),
	})
}

// testRetryer retries what the SDK deems retryable (as every real client
// does) at once, without backoff: on a loaded machine a loopback
// connection is now and then reset under the client. Retrying cannot hide
// an API error: an exception the SDK retries (throttling, limits) comes
// back the same on every attempt.
func testRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		o.RateLimiter = ratelimit.None
	})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// create makes a provisioned stream and waits until it is ACTIVE.
func (e *env) create(name string, shards int32) {
	e.t.Helper()
	_, err := e.client.CreateStream(ctx(e.t), &sdk.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)})
	if err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	e.settle()
	e.waitStatus(name, types.StreamStatusActive)
}

// waitStatus expects the stream to report status, once settled.
func (e *env) waitStatus(name string, want types.StreamStatus) {
	e.t.Helper()
	if want == types.StreamStatusActive {
		e.settle()
	}
	for i := 0; i < 500; i++ {
		out, err := e.client.DescribeStreamSummary(ctx(e.t), &sdk.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			e.t.Fatalf("describe %s: %v", name, err)
		}
		if out.StreamDescriptionSummary.StreamStatus == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("stream %s never became %s", name, want)
}

// apiErr asserts err is the AWS exception code (and, if msg is not empty,
// message).
func apiErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want %s, got %s: %s", code, ae.ErrorCode(), ae.ErrorMessage())
	}
	if msg != "" && ae.ErrorMessage() != msg {
		t.Fatalf("%s message:\n got %q\nwant %q", code, ae.ErrorMessage(), msg)
	}
}

// storeHandler is a handler with opts over a store in tb's temporary
// directory that holds one stream of shards shards; the store closes when
// tb ends.
func storeHandler(tb testing.TB, opts Options, stream string, shards int) (*Handler, *streams.Store) {
	tb.Helper()
	store := streamstest.Open(tb, streams.Options{}, stream, shards)
	return newHandler(store, opts), store
}
