package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func init() {
	benchmarks["overload"] = benchOverload
}

// benchOverload drives a runnel serve child process past its limits and
// reports what a user depends on: the health check's latency, the
// server's memory, the answers clients get, and that nothing acknowledged
// is lost.
func benchOverload(args []string) error {
	fs := newFlags("bench overload", "bench overload [--scenario slow|puts] [--conns 2000] [--clients 64] [--duration 20s] [--serve-flags \"...\"]", `
Starts 'runnel serve' (this binary) on a fresh data directory in --dir with --serve-flags, and
overloads it:
  slow  --conns connections each announce a 1 MB request body and send a byte every
        second; /healthz is probed every 50 ms meanwhile. Prints the health check's
        p50/p99/max latency, the connections refused (503), and the server's RSS at the
        start and at its peak.
  puts  --clients Kinesis PutRecords clients, each sending batches of --batch records of
        --size bytes as fast as answers come, without retries. Prints the answers (ok,
        throttled), the server's peak RSS beside its --memory, and checks that every
        acknowledged record reads back.`)
	scenario := fs.String("scenario", "slow", "slow (slow request bodies) or puts (PutRecords clients)")
	dir := fs.String("dir", os.TempDir(), "directory for the server's data (removed afterwards)")
	conns := fs.Int("conns", 2000, "slow: connections trickling bodies")
	clients := fs.Int("clients", 64, "puts: PutRecords clients")
	batch := fs.Int("batch", 500, "puts: records per PutRecords")
	size := fs.Int("size", 1000, "puts: bytes per record")
	shards := fs.Int("shards", 4, "puts: shards of the stream")
	dur := fs.Duration("duration", 20*time.Second, "how long to overload")
	serveFlags := fs.String("serve-flags", "", "extra flags for runnel serve, space-separated (e.g. \"--memory 1GiB --max-inflight 64MiB\")")
	if _, err := parseInterspersed(fs, args, 0, ""); err != nil {
		return err
	}
	data, err := os.MkdirTemp(*dir, "runnel-overload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	child, err := startBenchServer(data, strings.Fields(*serveFlags))
	if err != nil {
		return err
	}
	defer child.stop()
	switch *scenario {
	case "slow":
		return overloadSlow(child, *conns, *dur)
	case "puts":
		return overloadPuts(child, *clients, *batch, *size, *shards, *dur)
	}
	return fmt.Errorf("%w: --scenario must be slow or puts", errUsage)
}

// rss is the child's resident set size in bytes.
func (s *benchServer) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// peakRSS samples the child's RSS every 100 ms until stop is closed.
func (s *benchServer) peakRSS(stop <-chan struct{}) func() int64 {
	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if r := s.rss(); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { <-done; return peak.Load() }
}

func overloadSlow(s *benchServer, n int, dur time.Duration) error {
	base := s.rss()
	stop := make(chan struct{})
	peak := s.peakRSS(stop)
	var refused, ended, failed atomic.Int64
	var wg sync.WaitGroup
	head := fmt.Sprintf("POST /api/v1/streams/none/records HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n", s.addr)
	for range n {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			failed.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			if _, err := io.WriteString(c, head); err != nil {
				failed.Add(1)
				return
			}
			go func() {
				for range int(dur / time.Second) {
					time.Sleep(time.Second)
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
			c.SetReadDeadline(time.Now().Add(dur + 5*time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			switch {
			case err != nil:
				ended.Add(1)
			case resp.StatusCode == http.StatusServiceUnavailable:
				refused.Add(1)
			default:
				ended.Add(1)
			}
		}()
	}
	// Probe the health check on new connections (a client that cannot
	// reuse one), every 50 ms.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var lat []time.Duration
	probeErrs := 0
	for end := time.Now().Add(dur); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		t0 := time.Now()
		resp, err := hc.Get("http://" + s.addr + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			probeErrs++
			if resp != nil {
				resp.Body.Close()
			}
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
	}
	close(stop)
	p := peak()
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(f*float64(len(lat))))]
	}
	fmt.Printf("slow bodies: %d connections for %v (%d could not connect)\n", n, dur, failed.Load())
	fmt.Printf("  /healthz: %d probes, %d failed; p50 %v p99 %v max %v\n", len(lat)+probeErrs, probeErrs, q(0.5), q(0.99), q(1))
	fmt.Printf("  connections: %d refused with 503, %d ended otherwise (body timeout or closed)\n", refused.Load(), ended.Load())
	fmt.Printf("  server RSS: %s at start, %s at peak, growth %s\n", humanSize(base), humanSize(p), humanSize(p-base))
	return nil
}

func overloadPuts(s *benchServer, clients, batch, size, shards int, dur time.Duration) error {
	base := "http://" + s.addr
	body, _ := json.Marshal(map[string]any{"name": "overload", "shards": shards})
	resp, err := http.Post(base+"/api/v1/streams", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return fmt.Errorf("create stream: %s", resp.Status)
	}
	stop := make(chan struct{})
	peak := s.peakRSS(stop)
	var ok, throttled, other atomic.Int64
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: "AKIDBENCHOVERLOAD", SecretAccessKey: "bench-overload-secret"}
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 60 * time.Second}
			pad := strings.Repeat("x", max(0, size-24))
			for n := 0; ctx.Err() == nil; n++ {
				ids := make([]string, batch)
				recs := make([]map[string]string, batch)
				for i := range ids {
					ids[i] = fmt.Sprintf("c%d-%d-%d|", c, n, i)
					recs[i] = map[string]string{"PartitionKey": ids[i], "Data": base64.StdEncoding.EncodeToString([]byte(ids[i] + pad))}
				}
				b, _ := json.Marshal(map[string]any{"StreamName": "overload", "Records": recs})
				req, _ := http.NewRequest("POST", base+"/", bytes.NewReader(b))
				req.Header.Set("Content-Type", "application/x-amz-json-1.1")
				req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecords")
				sum := sha256.Sum256(b)
				signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", time.Now())
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						other.Add(1)
					}
					continue
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					if strings.Contains(string(out), "ProvisionedThroughputExceededException") || strings.Contains(string(out), "LimitExceededException") {
						throttled.Add(1)
						time.Sleep(50 * time.Millisecond) // a client backing off
					} else {
						other.Add(1)
					}
					continue
				}
				var res struct {
					Records []struct {
						SequenceNumber string
						ErrorCode      string
					}
				}
				if err := json.Unmarshal(out, &res); err != nil || len(res.Records) != batch {
					other.Add(1)
					continue
				}
				ok.Add(1)
				mu.Lock()
				for i, r := range res.Records {
					if r.ErrorCode == "" {
						acked[ids[i]] = true
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	p := peak()
	lost, err := countLost(base, "overload", acked)
	if err != nil {
		return err
	}
	fmt.Printf("PutRecords overload: %d clients, %d records of %d bytes per call, %v\n", clients, batch, size, dur)
	fmt.Printf("  answers: %d ok, %d throttled, %d other errors\n", ok.Load(), throttled.Load(), other.Load())
	fmt.Printf("  server RSS at peak: %s\n", humanSize(p))
	fmt.Printf("  acknowledged records: %d, missing when read back: %d\n", len(acked), lost)
	if lost > 0 {
		return fmt.Errorf("%d acknowledged records lost", lost)
	}
	return nil
}

// countLost reads a stream back over REST and counts the acknowledged
// records (by the id before '|' in their data) that are missing.
func countLost(base, stream string, acked map[string]bool) (int, error) {
	resp, err := http.Get(base + "/api/v1/streams/" + stream)
	if err != nil {
		return 0, err
	}
	var d struct {
		Shards []struct {
			ID string `json:"id"`
		} `json:"shards"`
	}
	err = json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for _, sh := range d.Shards {
		q := "from=trim_horizon"
		for {
			resp, err := http.Get(fmt.Sprintf("%s/api/v1/streams/%s/records?shard=%s&%s&limit=10000", base, stream, sh.ID, q))
			if err != nil {
				return 0, err
			}
			var page struct {
				Records []struct {
					Data       string `json:"data"`
					DataBase64 string `json:"data_base64"`
				} `json:"records"`
				Next uint64 `json:"next_position"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil {
				return 0, err
			}
			if len(page.Records) == 0 {
				break
			}
			for _, r := range page.Records {
				data := r.Data
				if r.DataBase64 != "" {
					b, _ := base64.StdEncoding.DecodeString(r.DataBase64)
					data = string(b)
				}
				if id, _, ok := strings.Cut(data, "|"); ok {
					seen[id+"|"] = true
				}
			}
			q = fmt.Sprintf("position=%d", page.Next)
		}
	}
	lost := 0
	for id := range acked {
		if !seen[id] {
			lost++
		}
	}
	if lost == 0 && len(acked) > 0 && len(seen) == 0 {
		return 0, errors.New("read back nothing")
	}
	return lost, nil
}
