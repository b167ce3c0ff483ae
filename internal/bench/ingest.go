// Package bench holds the whole-system benchmarks the runnel binary runs
// (`runnel bench ...`) that measure the stream log in-process; they sit
// apart from the server packages, which hold only the server.
package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/streams"
)

// IngestConfig configures Ingest. Zero fields take the defaults of the
// project's ingest target: 8 producers putting batches of 500 records of 100
// bytes to a 4-shard stream for 5 seconds, fsync'd before every ack.
type IngestConfig struct {
	Producers  int
	Batch      int
	RecordSize int
	Shards     int
	Duration   time.Duration
	// Records, when > 0, stops after this many records instead of Duration.
	Records int
	// SyncInterval > 0 benchmarks the --fsync=interval mode.
	SyncInterval time.Duration
}

// Validate fills defaults and checks ranges.
func (c *IngestConfig) Validate() error {
	c.Producers = cmp.Or(c.Producers, 8)
	c.Batch = cmp.Or(c.Batch, 500)
	c.RecordSize = cmp.Or(c.RecordSize, 100)
	c.Shards = cmp.Or(c.Shards, 4)
	if c.Duration == 0 && c.Records == 0 {
		c.Duration = 5 * time.Second
	}
	switch {
	case c.Producers < 1 || c.Producers > 1024:
		return fmt.Errorf("bench ingest: producers: %d is out of range 1-1024", c.Producers)
	case c.Batch < 1 || c.Batch > 10000:
		return fmt.Errorf("bench ingest: batch: %d is out of range 1-10000", c.Batch)
	case c.RecordSize < 0 || c.RecordSize > streams.MaxDataSize:
		return fmt.Errorf("bench ingest: record_size: %d is out of range 0-%d", c.RecordSize, streams.MaxDataSize)
	case c.Shards < 1 || c.Shards > streams.MaxShards:
		return fmt.Errorf("bench ingest: shards: %d is out of range 1-%d", c.Shards, streams.MaxShards)
	case c.Duration < 0 || c.Records < 0:
		return fmt.Errorf("bench ingest: duration: must not be negative")
	}
	return nil
}

// IngestReport is what Ingest measured.
type IngestReport struct {
	Config        IngestConfig
	Records       int64
	Bytes         int64 // record payload bytes
	Elapsed       time.Duration
	RecordsPerSec float64
	BytesPerSec   float64
	AckP50        time.Duration // latency of one Put of a whole batch
	AckP99        time.Duration
	// DiskBytesPerSec is the same directory's fsync'd sequential write rate
	// for the same volume (1 MiB writes, an fdatasync after each), the
	// figure the log's own rate is compared with.
	DiskBytesPerSec float64
	DiskFsyncP50    time.Duration
	// CPUPerRecord is the process's CPU time (user+system) during the
	// append phase divided by the records: a figure that holds up when
	// the machine is shared and wall-clock rates do not. 0 where the
	// platform does not report it.
	CPUPerRecord time.Duration
}

func (r IngestReport) String() string {
	return fmt.Sprintf("ingest: %d producers x batches of %d x %d-byte records, %d shards: %.0f records/s, %.1f MB/s, ack p50 %v p99 %v; disk fsync'd sequential write %.1f MB/s (fsync p50 %v); ratio %.2f",
		r.Config.Producers, r.Config.Batch, r.Config.RecordSize, r.Config.Shards,
		r.RecordsPerSec, r.BytesPerSec/1e6, r.AckP50.Round(10*time.Microsecond), r.AckP99.Round(10*time.Microsecond),
		r.DiskBytesPerSec/1e6, r.DiskFsyncP50.Round(10*time.Microsecond), r.BytesPerSec/max(r.DiskBytesPerSec, 1)) +
		fmt.Sprintf("; CPU %v/record", r.CPUPerRecord)
}

// Ingest measures in-process appends on a fresh store in dir (which
// it creates and removes): cfg.Producers goroutines each put batches of
// cfg.Batch records with random partition keys and wait for the ack. Then
// it measures the disk's fsync'd sequential write rate in the same
// directory for the same number of bytes. The CLI's `runnel bench ingest`
// prints the report.
func Ingest(dir string, cfg IngestConfig) (IngestReport, error) {
	if err := cfg.Validate(); err != nil {
		return IngestReport{}, err
	}
	rep := IngestReport{Config: cfg}
	work, err := os.MkdirTemp(dir, "runnel-bench-")
	if err != nil {
		return rep, fmt.Errorf("bench ingest: %w", err)
	}
	defer os.RemoveAll(work)
	cpu0 := cpuclock.Process()
	lats, elapsed, n, err := appendRecords(filepath.Join(work, "log"), cfg)
	if err != nil {
		return rep, err
	}
	if n > 0 {
		rep.CPUPerRecord = cpuclock.Since(cpu0) / time.Duration(n)
	}
	rep.Records, rep.Elapsed = n, elapsed
	rep.Bytes = n * int64(cfg.RecordSize)
	rep.RecordsPerSec = float64(n) / elapsed.Seconds()
	rep.BytesPerSec = float64(rep.Bytes) / elapsed.Seconds()
	rep.AckP50, rep.AckP99 = Percentile(lats, 0.50), Percentile(lats, 0.99)
	volume := max(n*int64(streams.FrameSize("k-0000000000", make([]byte, cfg.RecordSize))), 64<<20)
	rep.DiskBytesPerSec, rep.DiskFsyncP50, err = DiskSyncRate(filepath.Join(work, "disk"), volume, 1<<20)
	return rep, err
}

// appendRecords runs the producers and returns every ack latency, the
// elapsed time and the records acknowledged.
func appendRecords(dir string, cfg IngestConfig) ([]time.Duration, time.Duration, int64, error) {
	s, err := streams.Open(dir, streams.Options{SyncInterval: cfg.SyncInterval, Logger: discardLogger()})
	if err != nil {
		return nil, 0, 0, err
	}
	defer s.Close()
	if _, err := s.CreateStream("bench", cfg.Shards, streams.CreateOptions{}); err != nil {
		return nil, 0, 0, err
	}
	var (
		done    atomic.Bool
		total   atomic.Int64
		mu      sync.Mutex
		lats    []time.Duration
		firstEr error
		wg      sync.WaitGroup
	)
	payload := make([]byte, cfg.RecordSize)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	start := time.Now()
	for p := 0; p < cfg.Producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			recs := make([]streams.PutRecord, cfg.Batch)
			keys := make([]string, 4096)
			for i := range keys {
				keys[i] = "k-" + strconv.FormatUint(rng.Uint64()%1e10, 10)
			}
			var mine []time.Duration
			for !done.Load() {
				if cfg.Records > 0 && total.Add(int64(cfg.Batch)) > int64(cfg.Records) {
					break
				}
				for i := range recs {
					recs[i] = streams.PutRecord{PartitionKey: keys[rng.IntN(len(keys))], Data: payload}
				}
				t0 := time.Now()
				if _, err := s.Put(context.Background(), "bench", recs); err != nil {
					mu.Lock()
					firstEr = err
					mu.Unlock()
					done.Store(true)
					break
				}
				mine = append(mine, time.Since(t0))
				if cfg.Records == 0 && time.Since(start) >= cfg.Duration {
					done.Store(true)
				}
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}(p)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstEr != nil {
		return nil, 0, 0, fmt.Errorf("bench ingest: %w", firstEr)
	}
	return lats, elapsed, int64(len(lats) * cfg.Batch), nil
}

// DiskSyncRate writes volume bytes sequentially to a new file in dir in
// chunks of chunk bytes, syncing each (fdatasync on Linux, the call the
// log's writers make), and returns the rate in bytes/s and the median sync
// time. dir is created and removed.
func DiskSyncRate(dir string, volume int64, chunk int) (float64, time.Duration, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "seq"))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i)
	}
	var syncs []time.Duration
	start := time.Now()
	for w := int64(0); w < volume; w += int64(chunk) {
		if _, err := f.Write(buf); err != nil {
			return 0, 0, err
		}
		t0 := time.Now()
		if err := datasync(f); err != nil {
			return 0, 0, err
		}
		syncs = append(syncs, time.Since(t0))
	}
	el := time.Since(start)
	return float64(volume) / el.Seconds(), Percentile(syncs, 0.5), nil
}

// Percentile returns the q-quantile (0..1) of ds by the nearest-rank
// method; ds is sorted in place.
func Percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
