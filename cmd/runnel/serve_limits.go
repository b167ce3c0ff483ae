package main

import (
	"bufio"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/web"
)

// serveLimits are runnel serve's resource limits (see docs/security.md).
type serveLimits struct {
	memory       *string
	maxConns     *int
	maxInFlight  *string
	bodyTimeout  *time.Duration
	maxStreams   *int
	maxShards    *int
	maxOpenFiles *int
	// HTTP limits beyond connections and bytes in flight.
	maxHeader      *string
	writeTimeout   *time.Duration
	idleTimeout    *time.Duration
	maxConnStreams *int
	maxPreviews    *int
	maxLive        *int
}

func addLimitFlags(fs *flag.FlagSet) *serveLimits {
	return &serveLimits{
		memory:       fs.String("memory", "50%", "soft memory limit for the Go heap (GOMEMLIMIT): a size such as 4GiB, or a percentage of the machine's memory (or of the cgroup's limit); 0 turns it off"),
		maxConns:     fs.Int("max-conns", 0, fmt.Sprintf("most client connections at once; more get 503 (0: %d, or half the open-file limit if that is lower)", web.DefaultMaxConns)),
		maxInFlight:  fs.String("max-inflight", "256MiB", "most request body bytes held by requests under way; past it requests get 503 (Kinesis API: ProvisionedThroughputExceededException)"),
		bodyTimeout:  fs.Duration("body-timeout", web.DefaultBodyTimeout, "longest a request body may take to arrive"),
		maxStreams:   fs.Int("max-streams", streams.DefaultMaxStreams, "most streams the server holds"),
		maxShards:    fs.Int("max-shards", streams.DefaultMaxOpenShards, "most open shards of all streams together (Kinesis DescribeLimits ShardLimit)"),
		maxOpenFiles: fs.Int("max-open-files", 0, fmt.Sprintf("most segment files kept open; idle ones are closed (0: %d, or a quarter of the open-file limit if that is lower)", streams.DefaultMaxOpenFiles)),
		maxHeader:    fs.String("max-header-bytes", "64KiB", "largest request header (1KiB to 16MiB); a larger one gets 431"),
		writeTimeout: fs.Duration("write-timeout", web.DefaultWriteTimeout, "longest one write of an answer may wait for a client that stopped reading (at least 1s); past it the request ends and its connection closes"),
		idleTimeout:  fs.Duration("idle-timeout", web.DefaultIdleTimeout, "how long an idle keep-alive connection (HTTP/1.1, or HTTP/2 with no stream open) is kept (at least 1s)"),
		maxConnStreams: fs.Int("max-conn-streams", web.DefaultMaxConnStreams,
			"most requests (streams) one HTTP/2 connection runs at once, 1 to 1000 (its SETTINGS_MAX_CONCURRENT_STREAMS)"),
		maxPreviews: fs.Int("max-previews", web.DefaultMaxPreviews, "most job previews running at once (one token: half of them); more get 429"),
		maxLive:     fs.Int("max-live-results", web.DefaultMaxLiveResults, "most live result streams open at once (one token: half of them); more get 429"),
	}
}

// httpLimits checks the HTTP flags beyond connections and bytes in flight
// and sets them in lim.
func (l *serveLimits) httpLimits(lim *web.Limits) error {
	hdr, err := parseSize(*l.maxHeader)
	if err != nil || hdr < 1<<10 || hdr > 16<<20 {
		return fmt.Errorf("%w: --max-header-bytes %q: give a size from 1KiB to 16MiB, such as 64KiB", errUsage, *l.maxHeader)
	}
	if *l.writeTimeout < time.Second {
		return fmt.Errorf("%w: --write-timeout %s: give a duration of at least 1s, such as 2m", errUsage, *l.writeTimeout)
	}
	if *l.idleTimeout < time.Second {
		return fmt.Errorf("%w: --idle-timeout %s: give a duration of at least 1s, such as 2m", errUsage, *l.idleTimeout)
	}
	if *l.maxConnStreams < 1 || *l.maxConnStreams > 1000 {
		return fmt.Errorf("%w: --max-conn-streams %d: give a number from 1 to 1000", errUsage, *l.maxConnStreams)
	}
	if *l.maxPreviews < 1 || *l.maxLive < 1 {
		return fmt.Errorf("%w: --max-previews and --max-live-results must be at least 1", errUsage)
	}
	lim.MaxHeaderBytes, lim.WriteTimeout, lim.IdleTimeout = int(hdr), *l.writeTimeout, *l.idleTimeout
	lim.MaxConnStreams, lim.MaxPreviews, lim.MaxLiveResults = *l.maxConnStreams, *l.maxPreviews, *l.maxLive
	return nil
}

// apply checks the flags, sets the memory limit, sizes the file and
// connection limits to the open-file limit, warns when that is too low,
// and fills the store options; it returns the HTTP limits.
func (l *serveLimits) apply(opts *streams.Options, log *slog.Logger) (web.Limits, error) {
	var lim web.Limits
	mem, err := parseMemory(*l.memory)
	if err != nil {
		return lim, fmt.Errorf("%w: --memory: %w", errUsage, err)
	}
	if mem > 0 {
		debug.SetMemoryLimit(mem)
		log.Info("memory limit set", "memory", humanSize(mem))
	}
	inflight, err := parseSize(*l.maxInFlight)
	if err != nil || inflight <= 0 {
		return lim, fmt.Errorf("%w: --max-inflight %q: give a size such as 256MiB", errUsage, *l.maxInFlight)
	}
	if *l.maxConns < 0 || *l.maxStreams < 1 || *l.maxShards < 1 || *l.maxOpenFiles < 0 || *l.bodyTimeout <= 0 {
		return lim, fmt.Errorf("%w: --max-conns, --max-open-files must be >= 0, --max-streams, --max-shards and --body-timeout positive", errUsage)
	}
	nofile := openFileLimit()
	conns, files := *l.maxConns, *l.maxOpenFiles
	if conns == 0 {
		conns = web.DefaultMaxConns
		if nofile > 0 {
			conns = min(conns, max(16, nofile/2))
		}
	}
	if files == 0 {
		files = streams.DefaultMaxOpenFiles
		if nofile > 0 {
			files = min(files, max(16, nofile/4))
		}
	}
	// Besides connections and segment files the server holds a few
	// descriptors per job (Pebble state, files) and its own.
	if need := conns + files + 128; nofile > 0 && nofile < need {
		log.Warn("the open-file limit is too low for the connection and segment-file limits: past it new connections wait (accepts back off)",
			"open_file_limit", nofile, "needed", need, "max_conns", conns, "max_open_files", files,
			"fix", "raise it (ulimit -n, LimitNOFILE= in systemd) or lower --max-conns / --max-open-files")
	}
	opts.MaxStreams, opts.MaxOpenShards, opts.MaxOpenFiles = *l.maxStreams, *l.maxShards, files
	lim = web.Limits{MaxConns: conns, MaxInFlight: inflight, BodyTimeout: *l.bodyTimeout}
	if err := l.httpLimits(&lim); err != nil {
		return lim, err
	}
	lim.EnsureDefaults()
	return lim, nil
}

// parseMemory reads --memory: a percentage of the machine's memory, a
// size, or 0 (off).
func parseMemory(s string) (int64, error) {
	if s == "0" || s == "" {
		return 0, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 || f > 100 {
			return 0, fmt.Errorf("%q is not a percentage in (0, 100]", s)
		}
		total := machineMemory()
		if total <= 0 {
			return 0, fmt.Errorf("cannot read the machine's memory for %q; give a size such as 4GiB", s)
		}
		return int64(float64(total) * f / 100), nil
	}
	n, err := parseSize(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is neither a size (4GiB, 512MiB) nor a percentage (50%%)", s)
	}
	return n, nil
}

// parseSize reads a byte size: a number with an optional unit (B, KiB,
// MiB, GiB, TiB; K, M, G, T and KB, MB, GB, TB mean the same powers of 1024).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, err
	}
	mult := map[string]float64{"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
		"G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}[strings.ToUpper(strings.TrimSpace(s[i:]))]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit in %q", s)
	}
	return int64(n * mult), nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	}
	return strconv.FormatInt(n, 10) + "B"
}

// machineMemory is the memory this process may use: the machine's
// (MemTotal), or its cgroup's limit when lower; 0 when unknown.
func machineMemory() int64 {
	var total int64
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
				total = kb << 10
			}
		}
		f.Close()
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 && (total == 0 || v < total) {
			total = v
		}
	}
	return total
}
