package producer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// TestProducerAnswerAfterSlowRequestWrite pins down an answer that the
// client stack lost: the server read a whole PutRecords body, wrote the
// records and answered 200, while net/http's write loop had not yet
// returned from writing that body (a loaded machine deschedules it).
// The SDK closes a request's body as soon as the answer's headers are in;
// the write loop, reading on, then found it closed, failed the request
// and closed the connection under the answer still being read ("use of
// closed network connection"). The producer took that for a failed call
// and sent the written records again: duplicates in the stream. Here the
// write loop is held at the end of the body until the answer is being
// read: every record must be written once and no call may fail.
func TestProducerAnswerAfterSlowRequestWrite(t *testing.T) {
	srv := &fakeKinesis{seen: map[string]int{}}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	rt := &holdingTransport{base: &http.Transport{}, closed: make(chan struct{})}
	rt.base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &notifyConn{Conn: c, closed: func() { rt.closeOnce.Do(func() { close(rt.closed) }) }}, nil
	}
	defer rt.base.CloseIdleConnections()
	client := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(hs.URL),
		HTTPClient: &http.Client{Transport: rt}, Retryer: aws.NopRetryer{},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})})
	c := newCollector()
	calls, logger := callFailures()
	p, err := New(context.Background(), Target{Stream: "s", Client: client}, Options{OnResult: c.onResult, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for i := range 200 {
		k := fmt.Sprintf("key-%d", i)
		want[k] = 1
		d, _ := json.Marshal(rec{K: k, I: 0})
		if err := p.Put(context.Background(), k, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkResults(t, c, want)
	if s := p.Metrics().Snapshot(); s.FailedRequests != 0 || s.Requests != 1 {
		t.Errorf("%v PutRecords calls, %v failed as a whole; want one that succeeded\n%s", s.Requests, s.FailedRequests, calls)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for d, n := range srv.seen {
		if n != 1 {
			t.Errorf("record %s written %d times", d, n)
		}
	}
	if len(srv.seen) != 200 {
		t.Errorf("%d records written, want 200", len(srv.seen))
	}
}

// fakeKinesis answers ListShards with one shard and PutRecords by
// writing every record (counting them by data) and acknowledging each,
// in an answer larger than a client reads with its headers.
type fakeKinesis struct {
	mu   sync.Mutex
	seen map[string]int
}

func (f *fakeKinesis) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".ListShards") {
		io.WriteString(w, `{"Shards":[{"ShardId":"shardId-000000000000","HashKeyRange":{"StartingHashKey":"0",`+
			`"EndingHashKey":"340282366920938463463374607431768211455"},"SequenceNumberRange":{"StartingSequenceNumber":"1"}}]}`)
		return
	}
	var in struct{ Records []struct{ Data []byte } }
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	type result struct{ ShardId, SequenceNumber string }
	out := struct {
		Padding           string
		FailedRecordCount int
		Records           []result
	}{Padding: strings.Repeat("x", 256<<10)}
	f.mu.Lock()
	for i, r := range in.Records {
		f.seen[string(r.Data)]++
		out.Records = append(out.Records, result{"shardId-000000000000", fmt.Sprint(1000 + i)})
	}
	f.mu.Unlock()
	json.NewEncoder(w).Encode(out)
}

// holdingTransport holds net/http's write loop at the end of the first
// PutRecords body until the answer's body is first read, as a busy
// machine may; then it lets the loop go on, and when the loop fails the
// write (it then closes the connection) waits for the close before the
// answer is read.
type holdingTransport struct {
	base      *http.Transport
	held      bool
	closed    chan struct{} // closed when a connection closes
	closeOnce sync.Once
}

func (h *holdingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.held || r.Body == nil || !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") {
		return h.base.RoundTrip(r)
	}
	h.held = true // calls to one shard go one at a time
	b := &heldBody{inner: r.Body, release: make(chan struct{}), done: make(chan error, 1)}
	r = r.Clone(r.Context())
	r.Body = b
	res, err := h.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	res.Body = &releasingBody{ReadCloser: res.Body, held: b, closed: h.closed}
	return res, nil
}

// heldBody is a request body whose read past its end (net/http reads on
// to check the body's length, through WriteTo) waits for release.
type heldBody struct {
	inner   io.ReadCloser
	release chan struct{}
	done    chan error // what the read past the end returned (nil: none)
	once    sync.Once
}

func (b *heldBody) Read(p []byte) (int, error) { return b.inner.Read(p) }

func (b *heldBody) WriteTo(w io.Writer) (int64, error) {
	<-b.release
	n, err := io.Copy(w, b.inner)
	b.once.Do(func() { b.done <- err })
	return n, err
}

// Close is net/http's last word on the body, whether it read past the
// end or not.
func (b *heldBody) Close() error {
	b.once.Do(func() { b.done <- nil })
	return b.inner.Close()
}

// releasingBody is the answer's body: its first read lets the request's
// write loop go on.
type releasingBody struct {
	io.ReadCloser
	held    *heldBody
	closed  chan struct{}
	started bool
}

func (r *releasingBody) Read(p []byte) (int, error) {
	if !r.started {
		r.started = true
		close(r.held.release)
		if err := <-r.held.done; err != nil {
			<-r.closed
		}
	}
	return r.ReadCloser.Read(p)
}

type notifyConn struct {
	net.Conn
	closed func()
}

func (c *notifyConn) Close() error {
	c.closed()
	return c.Conn.Close()
}
