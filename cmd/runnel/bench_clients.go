package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/runnel-dev/runnel/client/agent"
	"github.com/runnel-dev/runnel/client/producer"
	"github.com/runnel-dev/runnel/internal/cpuclock"
)

func init() {
	benchmarks["producer"] = benchProducer
	benchmarks["agent"] = benchAgent
}

func (s *benchServer) createStream(name string, shards int) error {
	body, _ := json.Marshal(map[string]any{"name": name, "shards": shards})
	resp, err := http.Post(s.url+"/api/v1/streams", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 201 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("create stream: %s", b)
	}
	return nil
}

func benchProducer(args []string) error {
	fs := newFlags("bench producer", "bench producer [--shards 4] [--size 100] [--keys 1000] [--aggregate=false] [--aggregate-max-bytes N] [--unordered] [--duration 5s]", `
Starts a runnel server (a child process on a fresh store in --dir) and one producer
(client/producer) that puts records of --size bytes over --keys partition keys into a stream of
--shards shards as fast as it accepts them, for --duration. Prints user records/s, bytes/s,
Kinesis records/s and PutRecords calls/s, counting acknowledged records only. Compare with
'runnel bench ingest --api kinesis' (many SDK clients, 500-record batches).`)
	dir := fs.String("dir", os.TempDir(), "directory for the server's store")
	shards := fs.Int("shards", 4, "shards of the stream")
	size := fs.Int("size", 100, "bytes per record")
	keys := fs.Int("keys", 1000, "distinct partition keys")
	aggregate := fs.Bool("aggregate", true, "KPL aggregation")
	dur := fs.Duration("duration", 5*time.Second, "how long to put")
	aggMax := fs.Int("aggregate-max-bytes", 0, "largest aggregated record (default the producer's, 50 KiB)")
	unordered := fs.Bool("unordered", false, "Ordering Unordered (batches may hold several Kinesis records of one key)")
	if _, err := parseInterspersed(fs, args, 0, ""); err != nil {
		return err
	}
	ordering := producer.PerKey
	if *unordered {
		ordering = producer.Unordered
	}
	srv, err := startBenchServerIn(*dir)
	if err != nil {
		return err
	}
	defer srv.stop()
	if err := srv.createStream("bench", *shards); err != nil {
		return err
	}
	var acked, failed atomic.Int64
	ctx := context.Background()
	p, err := producer.New(ctx, producer.Runnel(srv.url, "bench", ""), producer.Options{
		Aggregate: *aggregate, NoRateLimit: true, AggregateMaxBytes: *aggMax, Ordering: ordering,
		OnResult: func(r producer.Result) {
			if r.Err != nil {
				failed.Add(1)
				return
			}
			acked.Add(1)
		},
	})
	if err != nil {
		return err
	}
	keyNames := make([]string, *keys)
	for i := range keyNames {
		keyNames[i] = "key-" + strconv.Itoa(i)
	}
	payload := bytes.Repeat([]byte("x"), *size)
	start := time.Now()
	cpu0 := cpuclock.Process()
	end := start.Add(*dur)
	for i := 0; time.Now().Before(end); i++ {
		if err := p.Put(ctx, keyNames[i%len(keyNames)], payload); err != nil {
			return err
		}
	}
	n0 := acked.Load()
	el := time.Since(start)
	if err := p.Close(ctx); err != nil {
		return err
	}
	total := time.Since(start)
	cpu := cpuclock.Since(cpu0)
	s := p.Metrics().Snapshot()
	rate := float64(acked.Load()) / total.Seconds()
	fmt.Printf("producer → %d-shard stream, %d-byte records, %d keys, aggregate=%v (max %d bytes), unordered=%v\n", *shards, *size, *keys, *aggregate, *aggMax, *unordered)
	fmt.Printf("  %d records acknowledged in %.2fs (%d when Put stopped at %.2fs), %d failed\n", acked.Load(), total.Seconds(), n0, el.Seconds(), failed.Load())
	fmt.Printf("  %.0f records/s  %.1f MB/s  %.0f Kinesis records/s  %.0f PutRecords/s  %d retries\n",
		rate, rate*float64(*size)/1e6, s.KinesisRecords/total.Seconds(), s.Requests/total.Seconds(), int(s.Retries))
	fmt.Printf("  producer process CPU %.2fs (%.0f%% of one core)\n", cpu.Seconds(), 100*cpu.Seconds()/total.Seconds())
	return nil
}

func benchAgent(args []string) error {
	fs := newFlags("bench agent", "bench agent [--size 100] [--duration 5s] [--format json]", `
Starts a runnel server (a child process on a fresh store in --dir) and the agent (in this
process), and appends lines of about --size bytes to a file as fast as it can for --duration
while the agent follows it. Prints the lines written and the lines/s from the start until the
agent had every line acknowledged.`)
	dir := fs.String("dir", os.TempDir(), "directory for the server's store and the log file")
	size := fs.Int("size", 100, "bytes per line")
	format := fs.String("format", "json", "the flow's format: json or text")
	aggregate := fs.Bool("aggregate", false, "KPL aggregation in the agent's producer")
	dur := fs.Duration("duration", 5*time.Second, "how long the file grows")
	if _, err := parseInterspersed(fs, args, 0, ""); err != nil {
		return err
	}
	srv, err := startBenchServerIn(*dir)
	if err != nil {
		return err
	}
	defer srv.stop()
	if err := srv.createStream("lines", 4); err != nil {
		return err
	}
	work, err := os.MkdirTemp(*dir, "runnel-bench-agent")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	cfg := &agent.Config{Server: srv.url, Checkpoint: filepath.Join(work, "checkpoints.json"), MetricsAddr: metricsAddr,
		Aggregate: *aggregate, ScanInterval: agent.Duration(50 * time.Millisecond),
		Flows: []agent.Flow{{Files: filepath.Join(work, "app.log"), Stream: "lines", Format: *format}}}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(work, "app.log"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, cfg, false, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}()
	pad := strings.Repeat("x", max(0, *size-30))
	w := bufio.NewWriterSize(f, 64<<10)
	start := time.Now()
	lines := 0
	for end := start.Add(*dur); time.Now().Before(end); {
		for j := 0; j < 1000; j++ {
			fmt.Fprintf(w, "{\"i\":%d,\"pad\":\"%s\"}\n", lines, pad)
			lines++
		}
		w.Flush()
		time.Sleep(time.Millisecond)
	}
	w.Flush()
	f.Close()
	wrote := time.Since(start)
	var acked float64
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		acked = scrapeCounter("http://"+metricsAddr+"/metrics", "runnel_agent_records_acknowledged_total")
		if acked >= float64(lines) {
			break
		}
	}
	total := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		return err
	}
	fmt.Printf("agent following a growing file, %d-byte %s lines, one flow into a 4-shard stream, aggregate=%v\n", *size, *format, *aggregate)
	fmt.Printf("  %d lines written in %.2fs, %d acknowledged %.2fs after the start\n", lines, wrote.Seconds(), int64(acked), total.Seconds())
	fmt.Printf("  %.0f lines/s\n", acked/total.Seconds())
	if acked < float64(lines) {
		return fmt.Errorf("the agent acknowledged %d of %d lines", int64(acked), lines)
	}
	return nil
}

// scrapeCounter reads one unlabelled counter from a Prometheus text page.
func scrapeCounter(url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
