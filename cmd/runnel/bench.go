package main

import (
	"fmt"
	"os"
	"time"

	"github.com/runnel-dev/runnel/internal/bench"
)

func init() {
	register("bench", "whole-system benchmarks (ingest, job, overload, producer, agent)", runBench)
}

const benchHelp = `Usage: runnel bench <benchmark> [flags]

Benchmarks:
  ingest   appends to the stream log: records/s, bytes/s, ack latency, and the disk's own
           fsync'd sequential write rate for comparison (--api kinesis: through the Kinesis
           API with the AWS SDK for Go as the client)
  job      a map → filter → keyed window job over records already in the log
  overload runnel serve past its limits: slow request bodies, or PutRecords clients
  producer the producer library (client/producer) into a stream: records/s, with or
           without KPL aggregation
  agent    runnel agent tailing a growing file into a stream: lines/s

Run 'runnel bench <benchmark> --help' for its flags.`

func runBench(args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(helpOut(len(args) > 0), benchHelp)
		if len(args) == 0 {
			return fmt.Errorf("%w: give a benchmark (listed above)", errUsage)
		}
		return nil
	}
	if b, ok := benchmarks[args[0]]; ok {
		return b(args[1:])
	}
	return fmt.Errorf("%w: unknown benchmark %q\n\n%s", errUsage, args[0], benchHelp)
}

// benchmarks maps a benchmark name to its runner; other files add theirs.
var benchmarks = map[string]func(args []string) error{
	"ingest": benchIngest,
}

// ingestAPIs maps --api values other than "log" to their runners.
var ingestAPIs = map[string]func(dir string, cfg bench.IngestConfig, serverProfile string) error{}

func benchIngest(args []string) error {
	fs := newFlags("bench ingest", "bench ingest [--api log|kinesis] [--producers 8] [--batch 500] [--size 100] [--shards 4] [--duration 5s]", `
Measures appends to the stream log on a fresh store in --dir (removed afterwards):
--producers goroutines each put batches of --batch records of --size bytes and wait for the
durable acknowledgement. Prints records/s, bytes/s, the ack latency, and the disk's own
fsync'd sequential write rate in the same run, so the ratio shows. --api kinesis runs AWS SDK
for Go clients against the Kinesis API on loopback instead.`)
	api := fs.String("api", "log", "log (in-process appends) or kinesis (AWS SDK clients over HTTP)")
	dir := fs.String("dir", os.TempDir(), "directory for the benchmark's store (use the data disk)")
	producers := fs.Int("producers", 8, "concurrent producers")
	batch := fs.Int("batch", 500, "records per put")
	size := fs.Int("size", 100, "bytes per record")
	shards := fs.Int("shards", 4, "shards of the stream")
	dur := fs.Duration("duration", 5*time.Second, "how long to run")
	interval := fs.Duration("fsync-interval", 0, "benchmark --fsync=interval with this period instead of fsync before every ack")
	fs.StringVar(&benchKinesisAuth, "kinesis-auth", "", "with --api kinesis: serve through the web server with authentication on (SigV4-signed clients) or off; default the bare Kinesis handler")
	fs.BoolVar(&benchPutRecordsOnly, "putrecords-only", false, "with --api kinesis: run only the PutRecords phases (clients alone, decode-and-discard, runnel)")
	profile := fs.String("cpuprofile", "", "with --api kinesis: write a CPU profile of the Runnel server process to this file")
	if _, err := parseInterspersed(fs, args, 0, ""); err != nil {
		return err
	}
	cfg := bench.IngestConfig{Producers: *producers, Batch: *batch, RecordSize: *size, Shards: *shards, Duration: *dur, SyncInterval: *interval}
	if *api != "log" {
		run, ok := ingestAPIs[*api]
		if !ok {
			return fmt.Errorf("%w: --api must be log or kinesis", errUsage)
		}
		return run(*dir, cfg, *profile)
	}
	if *profile != "" {
		return fmt.Errorf("%w: --cpuprofile needs --api kinesis", errUsage)
	}
	rep, err := bench.Ingest(*dir, cfg)
	if err != nil {
		return err
	}
	fmt.Println(rep)
	return nil
}
