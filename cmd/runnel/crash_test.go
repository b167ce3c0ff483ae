package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"

	"github.com/runnel-dev/runnel/streams"
)

// runnelBinary builds the binary under test. A test that runs it is not a
// quick unit test: it is skipped in -short mode.
func runnelBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	return testbin.Runnel(t)
}

func freeAddr(t *testing.T) string { return testbin.FreeAddr(t) }

type crashRec struct {
	P int    `json:"p"`
	K string `json:"k"`
	I int    `json:"i"`
}

// TestCrashKill9 runs producers with retries against the real binary while
// SIGKILLing and restarting it, then checks that every acknowledged record
// survived, per-key order held, and duplicates come only from retries whose
// outcome was unknown.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode: it runs the real binary for 30+ s")
	}
	srv := testbin.Start(t, testbin.Options{})
	base := srv.URL
	srv.CreateStream("crash", 4)

	const producers = 6
	const keysPer = 5
	duration := 32 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()

	type outcome struct {
		acked   map[string]int          // key -> highest acknowledged i+1 (all below acked too)
		unknown map[string]map[int]bool // key -> i values sent in attempts that failed
		sent    int
	}
	results := make([]outcome, producers)
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			o := outcome{acked: map[string]int{}, unknown: map[string]map[int]bool{}}
			defer func() { results[p] = o }()
			rng := rand.New(rand.NewSource(int64(p)))
			hc := &http.Client{Timeout: 5 * time.Second}
			next := map[string]int{}
			for ctx.Err() == nil {
				n := 1 + rng.Intn(40)
				var batch []map[string]any
				var recs []crashRec
				for j := 0; j < n; j++ {
					k := fmt.Sprintf("p%d-k%d", p, rng.Intn(keysPer))
					r := crashRec{P: p, K: k, I: next[k]}
					next[k]++
					recs = append(recs, r)
					d, _ := json.Marshal(r)
					batch = append(batch, map[string]any{"key": k, "data": string(d)})
				}
				b, _ := json.Marshal(map[string]any{"records": batch})
				// Retry the same batch until it is acknowledged: a failed
				// attempt's outcome is unknown (it may have been written).
				for {
					resp, err := hc.Post(base+"/api/v1/streams/crash/records", "application/json", bytes.NewReader(b))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == 200 {
							break
						}
					}
					for _, r := range recs {
						if o.unknown[r.K] == nil {
							o.unknown[r.K] = map[int]bool{}
						}
						o.unknown[r.K][r.I] = true
					}
					if ctx.Err() != nil {
						// Never acknowledged: not counted as acked.
						return
					}
					time.Sleep(30 * time.Millisecond)
				}
				for _, r := range recs {
					o.acked[r.K] = r.I + 1
				}
				o.sent += len(recs)
			}
		}(p)
	}

	kills := 0
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(800+rng.Intn(1800)) * time.Millisecond):
			srv.Kill()
			kills++
			time.Sleep(time.Duration(rng.Intn(200)) * time.Millisecond)
			srv.Start()
		}
	}
	wg.Wait()
	srv.Kill()
	if kills < 10 {
		t.Fatalf("only %d kills happened; the test needs at least 10", kills)
	}

	// Read everything back with the store itself.
	st, err := streams.Open(srv.Data, streams.Options{Logger: quietLog()})
	if err != nil {
		t.Fatalf("reopen after crashes: %v", err)
	}
	defer st.Close()
	info, err := st.DescribeStream("crash")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string][]int{}
	total := 0
	for _, sh := range info.Shards {
		pos := uint64(0)
		for {
			r, err := st.Read("crash", sh.ID, pos, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range r.Records {
				var cr crashRec
				if err := json.Unmarshal(rec.Data, &cr); err != nil {
					t.Fatalf("record %s/%d is not what a producer wrote: %q", sh.ID, rec.Seq, rec.Data)
				}
				if rec.PartitionKey != cr.K {
					t.Fatalf("record %s/%d: key %q but data says %q", sh.ID, rec.Seq, rec.PartitionKey, cr.K)
				}
				seen[cr.K] = append(seen[cr.K], cr.I)
				total++
			}
			if len(r.Records) == 0 {
				break
			}
			pos = r.Next
		}
	}
	lost, dups, sent := 0, 0, 0
	for p, o := range results {
		sent += o.sent
		keys := make([]string, 0, len(o.acked))
		for k := range o.acked {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			got := seen[k]
			present := map[int]bool{}
			maxSoFar := -1
			for _, i := range got {
				if present[i] {
					dups++
					if !o.unknown[k][i] {
						t.Errorf("producer %d key %s: record %d duplicated but every attempt to send it was acknowledged", p, k, i)
					}
					continue
				}
				present[i] = true
				if i < maxSoFar {
					t.Errorf("producer %d key %s: record %d after %d: order broken", p, k, i, maxSoFar)
				}
				maxSoFar = max(maxSoFar, i)
			}
			for i := 0; i < o.acked[k]; i++ {
				if !present[i] {
					lost++
					if lost < 10 {
						t.Errorf("producer %d key %s: acknowledged record %d lost", p, k, i)
					}
				}
			}
		}
	}
	t.Logf("%d kills, %d records acknowledged, %d read back, %d duplicates from unknown-outcome retries, %d lost", kills, sent, total, dups, lost)
	if lost > 0 {
		t.Fatalf("%d acknowledged records lost", lost)
	}
	if sent == 0 {
		t.Fatal("no record was acknowledged: the test proved nothing")
	}
}
