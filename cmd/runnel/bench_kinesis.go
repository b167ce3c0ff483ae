package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/runnel-dev/runnel/internal/bench"
	"github.com/runnel-dev/runnel/internal/kinesisbench"
)

func init() {
	// kinesisbench.BenchIngest runs its servers as copies of this binary; in
	// such a copy this serves and exits before main runs.
	kinesisbench.BenchWrap = benchWrapAuth
	if os.Getenv("GOGC") == "" {
		// The servers run with runnel serve's GC setting, so that their
		// CPU per record is serve's (main, which sets it, never runs here).
		debug.SetGCPercent(defaultGOGC)
	}
	kinesisbench.BenchServerMain()
	ingestAPIs["kinesis"] = benchIngestKinesis
}

// benchPutRecordsOnly is runnel bench ingest's --putrecords-only.
var benchPutRecordsOnly bool

// benchIngestKinesis runs AWS SDK for Go clients against the Kinesis API on
// loopback, and the same clients against a decode-and-discard server in the
// same run (the ceiling), then single-record PutRecord and consumer latency.
// The servers are child processes, so their CPU time is measured apart.
func benchIngestKinesis(dir string, cfg bench.IngestConfig, serverProfile string) error {
	kcfg := kinesisbench.BenchConfig{
		Clients: cfg.Producers, BatchSize: cfg.Batch, RecordBytes: cfg.RecordSize, Shards: cfg.Shards,
		Phase: cfg.Duration, Dir: dir, ServerCPUProfile: serverProfile, PutRecordsOnly: benchPutRecordsOnly,
	}
	if err := benchAuthConfig(&kcfg, dir); err != nil {
		return err
	}
	if kcfg.AuthDir != "" {
		defer os.RemoveAll(kcfg.AuthDir)
	}
	rep, err := kinesisbench.BenchIngest(context.Background(), kcfg)
	if err != nil {
		return err
	}
	fmt.Println(rep)
	return nil
}
