package kinesis

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
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"golang.org/x/net/http2"

	"github.com/runnel-dev/runnel/streams"
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
	// (default 2); each reports its best round.
	Rounds int
	// PutRecordClients is how many clients send single-record PutRecord
	// calls (default 64): with durable acks, throughput comes from
	// concurrent calls sharing a group commit.
	PutRecordClients int
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
		c.Rounds = 2
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
	// CPUPerRecord is process CPU time (user+system, clients and server
	// together) divided by records.
	CPUPerRecord time.Duration
}

// BenchReport is what BenchIngest measured.
type BenchReport struct {
	// ClientOnly runs the SDK clients against an in-process transport that
	// answers without a server: the clients' own CPU per record.
	ClientOnly PhaseReport
	// Ceiling runs the clients against a server that decodes and discards.
	Ceiling PhaseReport
	// Runnel runs the clients against this handler over a real store.
	Runnel PhaseReport
	// ServerCPUPerRecord estimates Runnel's server CPU per record: process
	// CPU per record minus the clients' own. The clients' socket work is not
	// in ClientOnly, so this errs high.
	ServerCPUPerRecord time.Duration
	// Ratio is Runnel's records/s over the ceiling's.
	Ratio float64
	// PutRecord is single-record PutRecord calls (BenchConfig.PutRecordClients
	// at once), and PutRecordClientOnly the same clients answered in-process.
	PutRecord, PutRecordClientOnly PhaseReport
	// PutRecordServerCPU estimates the server's CPU per PutRecord call.
	PutRecordServerCPU time.Duration
	// GetRecordsP99 and SubscribeP99 are how long after a put is
	// acknowledged a consumer sees it (polling a caught-up shard, and on
	// SubscribeToShard over h2c).
	GetRecordsP50, GetRecordsP99 time.Duration
	SubscribeP50, SubscribeP99   time.Duration
}

func (r BenchReport) String() string {
	var b strings.Builder
	line := func(name string, p PhaseReport) {
		fmt.Fprintf(&b, "%-24s %10.0f records/s  %7.2f µs CPU/record (process)\n", name, p.RecordsPerSec, float64(p.CPUPerRecord.Nanoseconds())/1e3)
	}
	line("client only (no server)", r.ClientOnly)
	line("decode-and-discard", r.Ceiling)
	line("runnel PutRecords", r.Runnel)
	fmt.Fprintf(&b, "runnel server CPU/record %.2f µs (estimate, errs high); runnel/ceiling %.1f%%\n", float64(r.ServerCPUPerRecord.Nanoseconds())/1e3, 100*r.Ratio)
	line("client only PutRecord", r.PutRecordClientOnly)
	line("runnel PutRecord", r.PutRecord)
	fmt.Fprintf(&b, "runnel server CPU/PutRecord %.2f µs (estimate, errs high)\n", float64(r.PutRecordServerCPU.Nanoseconds())/1e3)
	fmt.Fprintf(&b, "put ack → GetRecords poller  p50 %v  p99 %v\n", r.GetRecordsP50, r.GetRecordsP99)
	fmt.Fprintf(&b, "put ack → SubscribeToShard   p50 %v  p99 %v\n", r.SubscribeP50, r.SubscribeP99)
	return b.String()
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchClient(url string, hc *http.Client) *sdk.Client {
	o := sdk.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDBENCH", SecretAccessKey: "bench"}, nil
		}),
	}
	if hc != nil {
		o.HTTPClient = hc
	}
	return sdk.New(o)
}

// runPhase has every client call fn in a loop for d; fn returns how many
// records it put.
func runPhase(ctx context.Context, clients int, d time.Duration, fn func(ctx context.Context, i int) (int, error)) (PhaseReport, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	cpu0, t0 := processCPU(), time.Now()
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k, err := fn(ctx, i)
				if err != nil {
					if ctx.Err() == nil {
						once.Do(func() { firstErr = err })
						cancel()
					}
					return
				}
				n.Add(int64(k))
			}
		}()
	}
	wg.Wait()
	el, cpu := time.Since(t0), processCPU()-cpu0
	p := PhaseReport{Records: n.Load(), Elapsed: el}
	if p.Records > 0 {
		p.RecordsPerSec = float64(p.Records) / el.Seconds()
		p.CPUPerRecord = cpu / time.Duration(p.Records)
	}
	return p, firstErr
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

// discardHandler decodes PutRecords bodies and answers with made-up
// results, the ceiling a server could reach with these clients.
func discardHandler() http.Handler {
	h := &Handler{}
	var seq atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, aerr := readBody(r)
		if aerr != nil {
			http.Error(w, aerr.Message, http.StatusBadRequest)
			return
		}
		defer putBuf(body)
		var in putRecordsInput
		slab := getBuf(0)
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
		b := h.appendPutRecordsResult(codecJSON, "", res, nil, nil, false)
		w.Header().Set("Content-Type", contentJSON)
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Write(b)
		putBuf(b)
	})
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
		Header:        http.Header{"Content-Type": {contentJSON}},
		ContentLength: int64(len(c.body)), Body: io.NopCloser(strings.NewReader(string(c.body)))}, nil
}

func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// BenchIngest measures the Kinesis API's ingest path with the AWS SDK for
// Go v2 as the client, on loopback: the clients alone, a decode-and-discard
// server (the ceiling), Runnel over a durable store, single-record
// PutRecord, and put-to-consumer latency for GetRecords polling and
// SubscribeToShard. It is `runnel bench ingest --api kinesis`.
func BenchIngest(ctx context.Context, cfg BenchConfig) (BenchReport, error) {
	cfg.setDefaults()
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
	res := make([]streams.PutResult, cfg.BatchSize)
	canned := (&Handler{}).appendPutRecordsResult(codecJSON, "", res, nil, nil, false)
	var err error
	rep.ClientOnly, err = runPhase(ctx, cfg.Clients, cfg.Phase, putBatch(mk("http://127.0.0.1:1", func() *http.Client {
		return &http.Client{Transport: cannedTransport{canned}}
	}), "bench"))
	if err != nil {
		return rep, fmt.Errorf("client-only phase: %w", err)
	}

	// 2 and 3. The ceiling and Runnel, alternating for cfg.Rounds rounds
	// so that both see the same machine; each keeps its best round.
	durl, dstop, err := serveLoopback(discardHandler())
	if err != nil {
		return rep, err
	}
	defer dstop()
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "runnel-bench-"); err != nil {
			return rep, err
		}
		defer os.RemoveAll(dir)
	}
	store, err := streams.Open(dir, streams.Options{})
	if err != nil {
		return rep, err
	}
	defer store.Close()
	h := newHandler(store, Options{CreateDelay: -1})
	url, stop, err := serveLoopback(H2C(h))
	if err != nil {
		return rep, err
	}
	defer stop()
	stream := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if _, err := store.CreateStream(stream, cfg.Shards, streams.CreateOptions{}); err != nil {
		return rep, err
	}
	dclients, clients := mk(durl, nil), mk(url, nil)
	best := func(into *PhaseReport, p PhaseReport) {
		if p.RecordsPerSec > into.RecordsPerSec {
			*into = p
		}
	}
	for round := 0; round < cfg.Rounds; round++ {
		p, err := runPhase(ctx, cfg.Clients, cfg.Phase, putBatch(dclients, "bench"))
		if err != nil {
			return rep, fmt.Errorf("decode-and-discard phase: %w", err)
		}
		best(&rep.Ceiling, p)
		if p, err = runPhase(ctx, cfg.Clients, cfg.Phase, putBatch(clients, stream)); err != nil {
			return rep, fmt.Errorf("runnel phase: %w", err)
		}
		best(&rep.Runnel, p)
	}
	rep.ServerCPUPerRecord = max(0, rep.Runnel.CPUPerRecord-rep.ClientOnly.CPUPerRecord)
	if rep.Ceiling.RecordsPerSec > 0 {
		rep.Ratio = rep.Runnel.RecordsPerSec / rep.Ceiling.RecordsPerSec
	}

	// 4. Single-record PutRecord.
	data := make([]byte, cfg.RecordBytes)
	putOne := func(c *sdk.Client) func(context.Context, int) (int, error) {
		return func(ctx context.Context, i int) (int, error) {
			_, err := c.PutRecord(ctx, &sdk.PutRecordInput{StreamName: aws.String(stream), PartitionKey: entries[i%cfg.Clients][i%cfg.BatchSize].PartitionKey, Data: data})
			return 1, err
		}
	}
	cannedOne := []byte(`{"SequenceNumber":"49000000000000000000000000000000000000000000000000000001","ShardId":"shardId-000000000000"}`)
	rep.PutRecordClientOnly, err = runPhase(ctx, cfg.PutRecordClients, cfg.Phase, putOne(benchClient("http://127.0.0.1:1", &http.Client{Transport: cannedTransport{cannedOne}})))
	if err != nil {
		return rep, fmt.Errorf("PutRecord client-only phase: %w", err)
	}
	rep.PutRecord, err = runPhase(ctx, cfg.PutRecordClients, cfg.Phase, putOne(benchClient(url, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.PutRecordClients}})))
	if err != nil {
		return rep, fmt.Errorf("PutRecord phase: %w", err)
	}
	rep.PutRecordServerCPU = max(0, rep.PutRecord.CPUPerRecord-rep.PutRecordClientOnly.CPUPerRecord)

	// 5. Latency from acknowledgement to consumer.
	if err := benchLatency(ctx, &rep, cfg, store, h, url); err != nil {
		return rep, err
	}
	return rep, nil
}

func benchLatency(ctx context.Context, rep *BenchReport, cfg BenchConfig, store *streams.Store, h *Handler, url string) error {
	stream := fmt.Sprintf("latency-%d", time.Now().UnixNano())
	if _, err := store.CreateStream(stream, 1, streams.CreateOptions{}); err != nil {
		return err
	}
	producer := benchClient(url, nil)
	poller := benchClient(url, nil)
	fan := benchClient(url, h2cHTTPClient())
	reg, err := fan.RegisterStreamConsumer(ctx, &sdk.RegisterStreamConsumerInput{StreamARN: aws.String(h.streamARN(stream)), ConsumerName: aws.String("bench")})
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
