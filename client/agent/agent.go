package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/runnel-dev/runnel/client/producer"
)

// flowRunner is one flow: its producer and its files by (device, inode).
type flowRunner struct {
	cfg   *Flow
	id    string
	prod  *producer.Producer
	parse parser
	files map[[2]uint64]*tracked
}

type posKey struct {
	flow     string
	dev, ino uint64
}

// Agent tails the configured files into their streams.
type Agent struct {
	cfg      *Config
	log      *slog.Logger
	flows    []*flowRunner
	flowByID map[string]*flowRunner
	restored map[posKey]position // checkpointed files not yet found
	metrics  *agentMetrics
	reg      *prometheus.Registry
	failed   chan error // a record the producer gave up on

	ctx context.Context // the run's context, for PutRecord's backpressure

	mu    sync.Mutex
	dirty chan struct{}
}

// Run tails the files until ctx ends (once: until what they hold now is
// delivered), then writes a last checkpoint.
func Run(ctx context.Context, cfg *Config, once bool, log *slog.Logger) error {
	a := &Agent{cfg: cfg, log: log, flowByID: map[string]*flowRunner{}, restored: map[posKey]position{},
		reg: prometheus.NewRegistry(), failed: make(chan error, 1), dirty: make(chan struct{}, 1)}
	a.metrics = newAgentMetrics(a.reg)
	positions, err := readCheckpoint(cfg.Checkpoint)
	if err != nil {
		return err
	}
	for _, p := range positions {
		a.restored[posKey{p.Flow, p.Dev, p.Inode}] = p
	}
	if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics_addr: %w", err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	}
	for i := range cfg.Flows {
		f := &cfg.Flows[i]
		fr := &flowRunner{cfg: f, id: f.Stream + " " + f.Files, parse: newParser(f), files: map[[2]uint64]*tracked{}}
		opts := a.producerOptions()
		opts.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"flow": strconv.Itoa(i)}, a.reg)
		fr.prod, err = producer.New(ctx, a.target(f.Stream), opts)
		if err != nil {
			a.closeProducers(context.Background())
			if ctx.Err() != nil {
				return nil // stopped while starting: nothing read, the checkpoint unchanged
			}
			return fmt.Errorf("flow %s: %w", fr.id, err)
		}
		a.flows = append(a.flows, fr)
		a.flowByID[fr.id] = fr
	}
	// Positions of flows no longer configured are kept as they were.
	var orphans []position
	for k, p := range a.restored {
		if a.flowByID[k.flow] == nil {
			orphans = append(orphans, p)
			delete(a.restored, k)
		}
	}
	writerDone := make(chan struct{})
	stopWriter := make(chan struct{})
	go a.checkpointLoop(stopWriter, writerDone, orphans)
	err = a.loop(ctx, once)
	// Deliver what was read, then record it.
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err == nil || errors.Is(err, context.Canceled) {
		a.closeProducers(cctx)
	} else {
		cancel()
		cctx, cancel = context.WithCancel(context.Background())
		cancel()
		a.closeProducers(cctx)
	}
	cancel()
	close(stopWriter)
	<-writerDone
	if werr := a.writeCheckpoint(orphans); werr != nil && err == nil {
		err = werr
	}
	for _, fr := range a.flows {
		for _, t := range fr.files {
			t.f.Close()
		}
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (a *Agent) closeProducers(ctx context.Context) {
	for _, fr := range a.flows {
		if err := fr.prod.Close(ctx); err != nil {
			a.log.Error("agent: records left unsent at stop; they are sent again at the next start", "stream", fr.cfg.Stream, "err", err)
		}
	}
}

func (a *Agent) target(stream string) producer.Target {
	if a.cfg.Server != "" {
		return producer.Runnel(a.cfg.Server, stream, os.Getenv("RUNNEL_TOKEN"))
	}
	k := a.cfg.Kinesis
	o := kinesis.Options{Region: k.Region, Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
			SessionToken: os.Getenv("AWS_SESSION_TOKEN"), Source: "environment"}, nil
	})}
	if k.Endpoint != "" {
		o.BaseEndpoint = aws.String(k.Endpoint)
	}
	return producer.Target{Stream: stream, Client: kinesis.New(o)}
}

func (a *Agent) producerOptions() producer.Options {
	rate := a.cfg.Kinesis != nil
	if a.cfg.RateLimit != nil {
		rate = *a.cfg.RateLimit
	}
	return producer.Options{
		Aggregate:          a.cfg.Aggregate,
		Linger:             time.Duration(a.cfg.Linger),
		MaxBufferedRecords: a.cfg.MaxBufferedRecords,
		RecordTTL:          365 * 24 * time.Hour, // retry until sent: a line is never given up
		NoRateLimit:        !rate,
		OnResult:           a.onResult,
		Logger:             a.log,
	}
}

// loop scans and reads until ctx ends or, once, until every file is read
// to its end.
func (a *Agent) loop(ctx context.Context, once bool) error {
	first := true
	tick := time.NewTicker(time.Duration(a.cfg.ScanInterval))
	defer tick.Stop()
	for {
		if err := a.scan(first); err != nil {
			return err
		}
		first = false
		if err := a.readAll(ctx, once); err != nil {
			return err
		}
		if once {
			for _, fr := range a.flows {
				if err := fr.prod.Flush(ctx); err != nil {
					return err
				}
			}
			select {
			case err := <-a.failed:
				return err
			default:
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-a.failed:
			return err
		case <-tick.C:
		}
	}
}

// readAll reads every tracked file; rotated files done with are dropped.
func (a *Agent) readAll(ctx context.Context, once bool) error {
	a.ctx = ctx
	for _, fr := range a.flows {
		for id, t := range fr.files {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			idle := time.Since(t.grewAt)
			grew, err := a.readFile(t)
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return err
				}
				a.log.Error("agent: read file", "path", t.path, "err", err)
				a.metrics.errors.Inc()
				continue
			}
			// A rotated file is done when a read found nothing new after
			// rotate_wait: what it read may be a line still being written.
			final := once || (t.rotated && !grew && idle >= time.Duration(a.cfg.RotateWait))
			if final {
				if err := a.flushEnd(t); err != nil {
					if errors.Is(err, context.Canceled) {
						return err
					}
					a.log.Error("agent: read file", "path", t.path, "err", err)
					a.metrics.errors.Inc()
					continue
				}
			}
			if len(t.ml) > 0 && time.Since(t.mlAt) >= time.Duration(fr.cfg.MultilineTimeout) {
				if err := a.flushMultiline(t); err != nil {
					return err
				}
			}
			if final && t.rotated {
				a.mu.Lock()
				done := len(t.pending) == 0
				if done {
					delete(fr.files, id)
				}
				a.mu.Unlock()
				if done {
					t.f.Close()
					a.metrics.files.Dec()
					a.markDirty()
				}
			}
		}
	}
	return nil
}

// emit parses a record's text, adds the configured fields and puts it.
func (a *Agent) emit(t *tracked, text string, end int64) error {
	fr := t.flow
	cfg := fr.cfg
	fields, err := fr.parse.parse(text, t)
	if err != nil {
		a.metrics.parseErrors.Inc()
		a.log.Error("agent: record does not parse; sent with parse_error", "path", t.path, "offset", end, "format", cfg.Format, "err", err)
		fields = map[string]any{"message": text, "parse_error": err.Error()}
	}
	a.mu.Lock()
	path := t.path
	pr := &pendingRec{t: t, gen: t.gen, end: end}
	t.pending = append(t.pending, pr)
	a.mu.Unlock()
	if cfg.HostField != "-" {
		fields[cfg.HostField] = a.cfg.Host
	}
	if cfg.FileField != "-" {
		fields[cfg.FileField] = path
	}
	for k, v := range cfg.Fields {
		if _, ok := fields[k]; !ok {
			fields[k] = v
		}
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("encode record of %s: %w", path, err)
	}
	key := fmt.Sprintf("%s:%d", path, end)
	if cfg.PartitionKey != "" {
		if v, ok := fields[cfg.PartitionKey]; ok {
			if s, ok := v.(string); ok {
				key = s
			} else {
				b, _ := json.Marshal(v)
				key = string(b)
			}
		}
	}
	if len(key) > 256 {
		key = key[len(key)-256:]
	}
	if key == "" {
		key = "-"
	}
	a.metrics.records.Inc()
	err = fr.prod.PutRecord(a.ctx, producer.Record{Key: key, Data: data, Meta: pr})
	if errors.Is(err, producer.ErrTooLarge) {
		// Escaping made the record too large to send at all: skip it, loudly.
		a.log.Error("agent: record over the 1 MiB limit after encoding; skipped", "path", path, "offset", end, "bytes", len(data))
		a.metrics.errors.Inc()
		a.onResult(producer.Result{Meta: pr})
		return nil
	}
	return err
}

// onResult moves a file's acknowledged offset past every record
// acknowledged in order, and asks for a checkpoint write.
func (a *Agent) onResult(r producer.Result) {
	pr := r.Meta.(*pendingRec)
	if errors.Is(r.Err, producer.ErrClosed) {
		return // the agent is stopping; closeProducers logged it, the checkpoint keeps its place
	}
	if r.Err != nil {
		a.metrics.failed.Inc()
		a.log.Error("agent: the stream refused a record; stopping (the checkpoint keeps its place)", "path", pr.t.path, "offset", pr.end, "err", r.Err)
		select {
		case a.failed <- fmt.Errorf("record of %s at offset %d: %w", pr.t.path, pr.end, r.Err):
		default:
		}
		return
	}
	a.metrics.acked.Inc()
	a.mu.Lock()
	t := pr.t
	pr.acked = true
	moved := false
	if pr.gen == t.gen {
		for len(t.pending) > 0 && t.pending[0].acked {
			t.committed = t.pending[0].end
			t.pending = t.pending[1:]
			moved = true
		}
	}
	a.mu.Unlock()
	if moved {
		a.markDirty()
	}
}

func (a *Agent) markDirty() {
	select {
	case a.dirty <- struct{}{}:
	default:
	}
}

// checkpointLoop writes the checkpoint after acknowledgements move an
// offset; writes that pile up during one write are merged into the next.
func (a *Agent) checkpointLoop(stop, done chan struct{}, orphans []position) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		case <-a.dirty:
			if err := a.writeCheckpoint(orphans); err != nil {
				a.log.Error("agent: write checkpoint", "path", a.cfg.Checkpoint, "err", err)
				a.metrics.checkpointErrors.Inc()
			}
		}
	}
}

func (a *Agent) writeCheckpoint(orphans []position) error {
	a.mu.Lock()
	files := append([]position(nil), orphans...)
	for _, p := range a.restored {
		files = append(files, p) // not found yet: keep
	}
	for _, fr := range a.flows {
		for _, t := range fr.files {
			if t.fpLen == 0 && t.committed == 0 {
				// Empty: nothing to resume, and no first bytes to tell it
				// from a file that takes its inode after it is deleted.
				continue
			}
			files = append(files, position{Flow: fr.id, Path: t.path, Dev: t.dev, Inode: t.ino,
				FPLen: t.fpLen, FP: t.fp, Offset: t.committed, Header: t.headerText})
		}
	}
	a.mu.Unlock()
	if err := writeCheckpoint(a.cfg.Checkpoint, files); err != nil {
		return err
	}
	a.metrics.checkpoints.Inc()
	return nil
}

type agentMetrics struct {
	lines, bytes, records, acked, failed, parseErrors, errors prometheus.Counter
	rotations, truncations, checkpoints, checkpointErrors     prometheus.Counter
	files                                                     prometheus.Gauge
}

func newAgentMetrics(reg prometheus.Registerer) *agentMetrics {
	c := func(name, help string) prometheus.Counter {
		m := prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_agent_" + name, Help: help})
		reg.MustRegister(m)
		return m
	}
	m := &agentMetrics{
		lines:            c("lines_read_total", "Lines read from files."),
		bytes:            c("bytes_read_total", "Bytes read from files."),
		records:          c("records_put_total", "Records handed to the producer."),
		acked:            c("records_acknowledged_total", "Records the stream acknowledged."),
		failed:           c("records_failed_total", "Records the stream refused for good (the agent stops)."),
		parseErrors:      c("parse_errors_total", "Records that did not parse in their flow's format (sent with parse_error)."),
		errors:           c("errors_total", "Files that could not be opened or read, and over-long lines."),
		rotations:        c("rotations_total", "Files that left their glob (rotated by rename)."),
		truncations:      c("truncations_total", "Files found truncated (copy-truncate rotation)."),
		checkpoints:      c("checkpoint_writes_total", "Checkpoint file writes."),
		checkpointErrors: c("checkpoint_errors_total", "Failed checkpoint file writes."),
		files:            prometheus.NewGauge(prometheus.GaugeOpts{Name: "runnel_agent_files", Help: "Files being read."}),
	}
	reg.MustRegister(m.files)
	return m
}
