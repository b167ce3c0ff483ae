package kinesisbench

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"golang.org/x/net/http2"

	"github.com/runnel-dev/runnel/internal/cpuclock"
)

// BenchConfig sets up BenchIngest. Zero fields take the defaults of the
// issue's benchmark: 8 clients, PutRecords of 500 × 100-byte records, a
// 4-shard stream, 5 s per phase, durable (fsync) acknowledgements.
type BenchConfig struct {
	Clients     int
	BatchSize   int
	RecordBytes int
	Shards      int
	Phase       time.Duration // how long each throughput phase runs
	Dir         string        // data directory; a temporary one when empty
	// LatencySamples is how many single records the latency phases put.
	LatencySamples int
	// Rounds is how many times the ceiling and Runnel phases alternate
	// (default 3); each reports its best round, and the report lists the
	// ratio of every round.
	Rounds int
	// PutRecordClients is how many clients send single-record PutRecord
	// calls (default 64): with durable acks, throughput comes from
	// concurrent calls sharing a group commit.
	PutRecordClients int
	// ServerCPUProfile, when set, is where the Runnel server process writes
	// a CPU profile of its whole run.
	ServerCPUProfile string
	// Auth, when "on" or "off", serves the API behind the web server's
	// authentication (see BenchWrap), on or off; Credentials then sign the
	// clients' requests and AuthDir holds the token store.
	Auth        string
	AuthDir     string
	Credentials *aws.Credentials
	// PutRecordsOnly runs only the PutRecords phases (the clients alone,
	// the ceiling and Runnel), so that a server CPU profile shows that
	// path alone.
	PutRecordsOnly bool
}

func (c *BenchConfig) setDefaults() {
	if c.Clients <= 0 {
		c.Clients = 8
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.RecordBytes <= 0 {
		c.RecordBytes = 100
	}
	if c.Shards <= 0 {
		c.Shards = 4
	}
	if c.Phase <= 0 {
		c.Phase = 5 * time.Second
	}
	if c.LatencySamples <= 0 {
		c.LatencySamples = 200
	}
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	if c.PutRecordClients <= 0 {
		c.PutRecordClients = 64
	}
}

// PhaseReport is one throughput phase.
type PhaseReport struct {
	Records       int64
	Elapsed       time.Duration
	RecordsPerSec float64
	// ClientCPU is the CPU time (user+system) of the client process per
	// record, and ServerCPU that of the server process (0 when the phase
	// has no server), each measured with getrusage in its own process.
	ClientCPU, ServerCPU time.Duration
	// Groups and Syncs are the commit groups the server's log wrote and
	// the syncs (fdatasync) that made them durable during the phase (0
	// for the decode-and-discard server).
	Groups, Syncs int64
	// Errors counts failed calls (they put nothing; their CPU time is
	// counted). A phase fails when more than 3 calls and more than 1% of
	// its calls fail.
	Errors int64
}

// tooManyErrors says whether a phase has failed. Against the
// decode-and-discard server the SDK fails to read about one response in a
// thousand ("use of closed network connection" while deserializing; plain
// net/http clients against the same server never do, and SDK clients
// against Runnel have not). Likely cause: the server answers within
// microseconds of reading the body, the SDK closes the request body as
// soon as it has the response, and Go's transport, still checking that
// body for its end, takes the close as a write error and closes the
// connection under the response. Such calls are counted and reported
// rather than ending the run.
func tooManyErrors(errs, calls int64) bool { return errs > 3 && errs*100 > calls }

// BenchReport is what BenchIngest measured.
type BenchReport struct {
	// ClientOnly runs the SDK clients against an in-process transport that
	// answers without a server: the clients' own CPU per record.
	ClientOnly PhaseReport
	// Ceiling runs the clients against a server that decodes and discards.
	Ceiling PhaseReport
	// Runnel runs the clients against the API handler over a durable store.
	Runnel PhaseReport
	// Ratio is Runnel's records/s over the ceiling's, each in its best
	// round.
	Ratio float64
	// RoundRatios is the same ratio in every round (Runnel's phase over
	// the ceiling phase just before it), and MedianRatio their median: on
	// a shared machine one quiet or busy phase swings the best-round ratio
	// by tens of percent, the median much less.
	RoundRatios []float64
	MedianRatio float64
	// PutRecord is single-record PutRecord calls (BenchConfig.PutRecordClients
	// at once) to Runnel; PutRecordClientOnly the same clients answered
	// in-process, and PutRecordCeiling the same clients against the
	// decode-and-discard server.
	PutRecord, PutRecordClientOnly, PutRecordCeiling PhaseReport
	// GetRecordsP99 and SubscribeP99 are how long after a put is
	// acknowledged a consumer sees it (polling a caught-up shard, and on
	// SubscribeToShard over h2c).
	GetRecordsP50, GetRecordsP99 time.Duration
	SubscribeP50, SubscribeP99   time.Duration
}

func (r BenchReport) String() string {
	var b strings.Builder
	us := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", float64(d.Nanoseconds())/1e3)
	}
	fmt.Fprintf(&b, "%-30s %12s %12s %12s\n", "phase (AWS SDK for Go clients)", "records/s", "client µs", "server µs")
	line := func(name string, p PhaseReport) {
		fmt.Fprintf(&b, "%-30s %12.0f %12s %12s", name, p.RecordsPerSec, us(p.ClientCPU), us(p.ServerCPU))
		if p.Errors > 0 {
			fmt.Fprintf(&b, "  (%d failed calls)", p.Errors)
		}
		b.WriteByte('\n')
	}
	line("PutRecords, no server", r.ClientOnly)
	line("PutRecords, decode-and-discard", r.Ceiling)
	line("PutRecords, runnel", r.Runnel)
	if r.PutRecord.Records > 0 {
		line("PutRecord, no server", r.PutRecordClientOnly)
		line("PutRecord, decode-and-discard", r.PutRecordCeiling)
		line("PutRecord, runnel", r.PutRecord)
	}
	fmt.Fprintf(&b, "(µs: CPU time per record of the client and of the server process, getrusage in each)\n")
	if p := r.Runnel; p.Syncs > 0 {
		fmt.Fprintf(&b, "PutRecords, runnel: %d records in %d commit groups and %d syncs (%.0f records a sync)\n",
			p.Records, p.Groups, p.Syncs, float64(p.Records)/float64(p.Syncs))
	}
	fmt.Fprintf(&b, "runnel/ceiling: PutRecords %.1f%%", 100*r.Ratio)
	if r.PutRecord.Records > 0 {
		fmt.Fprintf(&b, ", PutRecord %.1f%%", 100*ratio(r.PutRecord, r.PutRecordCeiling))
	}
	b.WriteByte('\n')
	if len(r.RoundRatios) > 0 {
		fmt.Fprintf(&b, "PutRecords runnel/ceiling by round:")
		for _, x := range r.RoundRatios {
			fmt.Fprintf(&b, " %.1f%%", 100*x)
		}
		fmt.Fprintf(&b, " (median %.1f%%)\n", 100*r.MedianRatio)
	}
	if r.GetRecordsP99 > 0 || r.SubscribeP99 > 0 {
		fmt.Fprintf(&b, "put ack → GetRecords poller  p50 %v  p99 %v\n", r.GetRecordsP50, r.GetRecordsP99)
		fmt.Fprintf(&b, "put ack → SubscribeToShard   p50 %v  p99 %v\n", r.SubscribeP50, r.SubscribeP99)
	}
	return b.String()
}

func ratio(a, b PhaseReport) float64 {
	if b.RecordsPerSec == 0 {
		return 0
	}
	return a.RecordsPerSec / b.RecordsPerSec
}

func benchClient(url string, hc *http.Client) *sdk.Client {
	o := sdk.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return benchCreds, nil
		}),
	}
	if hc != nil {
		o.HTTPClient = hc
	}
	return sdk.New(o)
}

// runPhase has every client call fn in a loop for d; fn returns how many
// records it put. Calls in flight at the end run to completion and count,
// so that no request is cut off (a cancelled request costs the server CPU
// but puts nothing). srv, when not nil, is the server whose CPU time is
// measured too.
func runPhase(ctx context.Context, srv *benchServer, clients int, d time.Duration, fn func(ctx context.Context, i int) (int, error)) (PhaseReport, error) {
	var s0 serverStats
	if srv != nil {
		var err error
		if s0, err = srv.stats(ctx); err != nil {
			return PhaseReport{}, err
		}
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var n, errs, calls atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	cpu0, t0 := cpuclock.Process(), time.Now()
	end := t0.Add(d)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pctx.Err() == nil && time.Now().Before(end) {
				k, err := fn(pctx, i)
				c := calls.Add(1)
				if err != nil {
					if !tooManyErrors(errs.Add(1), c) && pctx.Err() == nil {
						continue
					}
					once.Do(func() { firstErr = err })
					cancel()
					return
				}
				n.Add(int64(k))
			}
		}()
	}
	wg.Wait()
	el, cpu := time.Since(t0), cpuclock.Since(cpu0)
	p := PhaseReport{Records: n.Load(), Elapsed: el, Errors: errs.Load()}
	if firstErr != nil {
		return p, firstErr
	}
	var scpu time.Duration
	if srv != nil {
		s, err := srv.stats(ctx)
		if err != nil {
			return p, err
		}
		scpu = s.CPU - s0.CPU
		p.Groups, p.Syncs = s.Groups-s0.Groups, s.Syncs-s0.Syncs
	}
	if p.Records > 0 {
		p.RecordsPerSec = float64(p.Records) / el.Seconds()
		p.ClientCPU = cpu / time.Duration(p.Records)
		p.ServerCPU = scpu / time.Duration(p.Records)
	}
	return p, nil
}

// cannedPutRecords is the decode-and-discard server's answer to a
// PutRecords of n records, which the client-only phase replays.
func cannedPutRecords(n int) ([]byte, error) {
	var body strings.Builder
	body.WriteString(`{"StreamName":"bench","Records":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(`{"Data":"eA==","PartitionKey":"k"}`)
	}
	body.WriteString(`]}`)
	req := httptest.NewRequest("POST", "/", strings.NewReader(body.String()))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecords")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	w := httptest.NewRecorder()
	discardHandler().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		return nil, fmt.Errorf("canned PutRecords answer: %d %s", w.Code, w.Body)
	}
	return w.Body.Bytes(), nil
}

func benchEntries(n, size int) []types.PutRecordsRequestEntry {
	out := make([]types.PutRecordsRequestEntry, n)
	buf := make([]byte, 8)
	for i := range out {
		rand.Read(buf)
		data := make([]byte, size)
		rand.Read(data)
		out[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(hex.EncodeToString(buf)), Data: data}
	}
	return out
}

// cannedTransport answers every request with the same body, without a
// network or server.
type cannedTransport struct{ body []byte }

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
		ContentLength: int64(len(c.body)), Body: io.NopCloser(strings.NewReader(string(c.body)))}, nil
}

// BenchIngest measures the Kinesis API's ingest path with the AWS SDK for
// Go v2 as the client, on loopback: the clients alone, a decode-and-discard
// server (the ceiling), Runnel over a durable store, single-record
// PutRecord the same three ways, and put-to-consumer latency for GetRecords
// polling and SubscribeToShard. The servers run as child processes (see
// BenchServerMain), so client and server CPU are measured apart. It is
// `runnel bench ingest --api kinesis`.
func BenchIngest(ctx context.Context, cfg BenchConfig) (BenchReport, error) {
	cfg.setDefaults()
	if cfg.Credentials != nil {
		benchCreds = *cfg.Credentials
	}
	var rep BenchReport
	entries := make([][]types.PutRecordsRequestEntry, cfg.Clients)
	for i := range entries {
		entries[i] = benchEntries(cfg.BatchSize, cfg.RecordBytes)
	}
	putBatch := func(clients []*sdk.Client, stream string) func(context.Context, int) (int, error) {
		return func(ctx context.Context, i int) (int, error) {
			out, err := clients[i].PutRecords(ctx, &sdk.PutRecordsInput{StreamName: aws.String(stream), Records: entries[i]})
			if err != nil {
				return 0, err
			}
			return len(entries[i]) - int(aws.ToInt32(out.FailedRecordCount)), nil
		}
	}
	mk := func(url string, hc func() *http.Client) []*sdk.Client {
		cs := make([]*sdk.Client, cfg.Clients)
		for i := range cs {
			var c *http.Client
			if hc != nil {
				c = hc()
			}
			cs[i] = benchClient(url, c)
		}
		return cs
	}

	// 1. The clients alone.
	canned, err := cannedPutRecords(cfg.BatchSize)
	if err != nil {
		return rep, err
	}
	rep.ClientOnly, err = runPhase(ctx, nil, cfg.Clients, cfg.Phase, putBatch(mk("http://127.0.0.1:1", func() *http.Client {
		return &http.Client{Transport: cannedTransport{canned}}
	}), "bench"))
	if err != nil {
		return rep, fmt.Errorf("client-only phase: %w", err)
	}

	// 2 and 3. The ceiling and Runnel, alternating for cfg.Rounds rounds
	// so that both see the same machine; each keeps its best round.
	dsrv, err := startBenchServer(ctx, benchServerSpec{Discard: true})
	if err != nil {
		return rep, err
	}
	defer dsrv.stop()
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "runnel-bench-"); err != nil {
			return rep, err
		}
		defer os.RemoveAll(dir)
	} else {
		if dir, err = os.MkdirTemp(dir, "runnel-bench-"); err != nil {
			return rep, err
		}
		defer os.RemoveAll(dir)
	}
	srv, err := startBenchServer(ctx, benchServerSpec{Dir: dir, CPUProfile: cfg.ServerCPUProfile, Auth: cfg.Auth, AuthDir: cfg.AuthDir})
	if err != nil {
		return rep, err
	}
	defer srv.stop()
	admin := benchClient(srv.url, nil)
	stream := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if _, err := admin.CreateStream(ctx, &sdk.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(int32(cfg.Shards))}); err != nil {
		return rep, err
	}
	dclients, clients := mk(dsrv.url, nil), mk(srv.url, nil)
	best := func(into *PhaseReport, p PhaseReport) {
		if p.RecordsPerSec > into.RecordsPerSec {
			*into = p
		}
	}
	for round := 0; round < cfg.Rounds; round++ {
		c, err := runPhase(ctx, dsrv, cfg.Clients, cfg.Phase, putBatch(dclients, "bench"))
		if err != nil {
			return rep, fmt.Errorf("decode-and-discard phase: %w", err)
		}
		best(&rep.Ceiling, c)
		p, err := runPhase(ctx, srv, cfg.Clients, cfg.Phase, putBatch(clients, stream))
		if err != nil {
			return rep, fmt.Errorf("runnel phase: %w", err)
		}
		best(&rep.Runnel, p)
		rep.RoundRatios = append(rep.RoundRatios, ratio(p, c))
	}
	rep.Ratio = ratio(rep.Runnel, rep.Ceiling)
	rep.MedianRatio = median(rep.RoundRatios)
	if cfg.PutRecordsOnly {
		return rep, nil
	}

	// 4. Single-record PutRecord: the clients alone, against the ceiling,
	// against Runnel.
	data := make([]byte, cfg.RecordBytes)
	putOne := func(c *sdk.Client) func(context.Context, int) (int, error) {
		return func(ctx context.Context, i int) (int, error) {
			_, err := c.PutRecord(ctx, &sdk.PutRecordInput{StreamName: aws.String(stream), PartitionKey: entries[i%cfg.Clients][i%cfg.BatchSize].PartitionKey, Data: data})
			return 1, err
		}
	}
	pooled := func(url string) *sdk.Client {
		return benchClient(url, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.PutRecordClients}})
	}
	cannedOne := []byte(`{"SequenceNumber":"49000000000000000000000000000000000000000000000000000001","ShardId":"shardId-000000000000"}`)
	rep.PutRecordClientOnly, err = runPhase(ctx, nil, cfg.PutRecordClients, cfg.Phase, putOne(benchClient("http://127.0.0.1:1", &http.Client{Transport: cannedTransport{cannedOne}})))
	if err != nil {
		return rep, fmt.Errorf("PutRecord client-only phase: %w", err)
	}
	if rep.PutRecordCeiling, err = runPhase(ctx, dsrv, cfg.PutRecordClients, cfg.Phase, putOne(pooled(dsrv.url))); err != nil {
		return rep, fmt.Errorf("PutRecord decode-and-discard phase: %w", err)
	}
	if rep.PutRecord, err = runPhase(ctx, srv, cfg.PutRecordClients, cfg.Phase, putOne(pooled(srv.url))); err != nil {
		return rep, fmt.Errorf("PutRecord phase: %w", err)
	}

	// 5. Latency from acknowledgement to consumer.
	if err := benchLatency(ctx, &rep, cfg, srv.url); err != nil {
		return rep, err
	}
	return rep, nil
}

func benchLatency(ctx context.Context, rep *BenchReport, cfg BenchConfig, url string) error {
	stream := fmt.Sprintf("latency-%d", time.Now().UnixNano())
	producer := benchClient(url, nil)
	if _, err := producer.CreateStream(ctx, &sdk.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)}); err != nil {
		return err
	}
	sum, err := producer.DescribeStreamSummary(ctx, &sdk.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		return err
	}
	poller := benchClient(url, nil)
	fan := benchClient(url, h2cHTTPClient())
	reg, err := fan.RegisterStreamConsumer(ctx, &sdk.RegisterStreamConsumerInput{StreamARN: sum.StreamDescriptionSummary.StreamARN, ConsumerName: aws.String("bench")})
	if err != nil {
		return err
	}
	sub, err := fan.SubscribeToShard(ctx, &sdk.SubscribeToShardInput{ConsumerARN: reg.Consumer.ConsumerARN, ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	events := sub.GetStream()
	defer events.Close()
	it, err := poller.GetShardIterator(ctx, &sdk.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeLatest})
	if err != nil {
		return err
	}

	var mu sync.Mutex
	acked := map[string]time.Time{}
	pollSeen, subSeen := map[string]time.Time{}, map[string]time.Time{}
	see := func(seq string, into map[string]time.Time, at time.Time) {
		mu.Lock()
		into[seq] = at
		mu.Unlock()
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // GetRecords poller on a caught-up shard
		defer wg.Done()
		iter := it.ShardIterator
		for lctx.Err() == nil && iter != nil {
			out, err := poller.GetRecords(lctx, &sdk.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				return
			}
			now := time.Now()
			for _, r := range out.Records {
				see(*r.SequenceNumber, pollSeen, now)
			}
			iter = out.NextShardIterator
		}
	}()
	go func() { // SubscribeToShard
		defer wg.Done()
		for ev := range events.Events() {
			now := time.Now()
			if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok {
				for _, r := range e.Value.Records {
					see(*r.SequenceNumber, subSeen, now)
				}
			}
		}
	}()
	for i := 0; i < cfg.LatencySamples; i++ {
		out, err := producer.PutRecord(ctx, &sdk.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte("ping")})
		if err != nil {
			return err
		}
		now := time.Now()
		mu.Lock()
		acked[*out.SequenceNumber] = now
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	events.Close()
	wg.Wait()
	// A consumer that saw a record before the ack reached the producer
	// counts as zero latency; a record a consumer never saw is an error.
	var pollLat, subLat []time.Duration
	for seq, at := range acked {
		p, ok1 := pollSeen[seq]
		s, ok2 := subSeen[seq]
		if !ok1 || !ok2 {
			return fmt.Errorf("latency phase: record %s not seen by both consumers", seq)
		}
		pollLat = append(pollLat, max(0, p.Sub(at)))
		subLat = append(subLat, max(0, s.Sub(at)))
	}
	if len(pollLat) == 0 {
		return errors.New("latency phase: consumers saw no records")
	}
	rep.GetRecordsP50, rep.GetRecordsP99 = percentiles(pollLat)
	rep.SubscribeP50, rep.SubscribeP99 = percentiles(subLat)
	return nil
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], d[min(len(d)-1, len(d)*99/100)]
}

// h2cHTTPClient speaks cleartext HTTP/2, as SubscribeToShard clients do
// against an endpoint that offers it.
func h2cHTTPClient() *http.Client {
	return &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
}
