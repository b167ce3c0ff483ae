package main

import (
	"context"
	"fmt"
	"math/big"
	"math/rand"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// The job of the watermark-after-restore test: 10 s windows over 1,000
// keys, results to a stream sink and a dashboard, checkpoints every
// 500 ms. No record after the input closes the windows: the last ones
// fire only once both shards are idle (10 s without a record), at the
// largest of the shards' watermarks.
var quietJob = windowJob("quiet", "", "2s", "500ms")

const (
	quietMain = 200_000 // records over both shards, 2 ms of event time apart
	quietTail = 20_000  // then records on shard 1 only, 3 ms apart
	quietKeys = 1_000
)

// quietInput is the test's input: (shard, record) in put order. Shard 0
// ends at 400 s of event time, shard 1 at 460 s: the final watermark is
// 458 s − the 2 s bound, so the windows ending at or before 450 s fire and
// the one ending at 460 s does not. A job stuck at shard 0's watermark
// (398 s) misses those ending at 400 s … 450 s.
func quietInput() (recs [2][]string, want map[windowKey]windowVal) {
	want = map[windowKey]windowVal{}
	add := func(shard, i int, ts int64) {
		k := fmt.Sprintf("k%03d", i%quietKeys)
		v := int64(i % 7)
		recs[shard] = append(recs[shard], fmt.Sprintf(`{"k":%q,"v":%d,"ts":%d}`, k, v, ts))
		start := (ts - crashBase) / 10_000 * 10_000
		if start+10_000 <= 450_000 {
			w := want[windowKey{k, crashBase + start}]
			want[windowKey{k, crashBase + start}] = windowVal{w.N + 1, w.Total + v}
		}
	}
	for i := range quietMain {
		add(i%2, i, crashBase+int64(i)*2)
	}
	for j := range quietTail {
		add(1, quietMain+j, crashBase+400_000+int64(j)*3)
	}
	return recs, want
}

// shard1Hash routes a record to shard 1 of a 2-shard stream (the upper
// half of the hash-key range); "0" routes to shard 0.
var shard1Hash = new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 127), big.NewInt(1)).String()

func (n *node) putQuiet(recs [2][]string) {
	n.t.Helper()
	for shard, hash := range []string{"0", shard1Hash} {
		all := recs[shard]
		for i := 0; i < len(all); i += 500 {
			var b strings.Builder
			b.WriteString(`{"records":[`)
			for j, r := range all[i:min(i+500, len(all))] {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"key":"p","explicit_hash_key":%q,"json":%s}`, hash, r)
			}
			b.WriteString(`]}`)
			if code, body := n.Do("POST", "/api/v1/streams/events/records", "application/json", b.String()); code != 200 {
				n.t.Fatalf("put: %d %s", code, body)
			}
		}
	}
}

// busy keeps every core of the machine busy until ctx ends, so that the
// server's keyed tasks lag its sources.
func busy(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := uint64(1)
			for ctx.Err() == nil {
				for range 100_000 {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			_ = x
		}()
	}
	return &wg
}

// TestWatermarkAfterRestoreQuietInput kills the server (SIGKILL) at
// random moments while a job with checkpoints every 500 ms works through
// a large input that then stays quiet, with busy loops on every core; one
// kill comes right after the job's sources have read (nearly) all of it
// and its windows are firing. Every restart resumes from the latest
// checkpoint. The job must reach the watermark it would have reached
// without a crash: every window up to it fires, exactly once, in the
// stream sink and the dashboard alike. Kill times come from -seed
// (printed); three seeds run.
func TestWatermarkAfterRestoreQuietInput(t *testing.T) {
	if testing.Short() {
		t.Skip("watermark-after-restore crash test skipped in -short mode: it runs the real binary for minutes")
	}
	seed := int64(testutil.Seed(t))
	recs, want := quietInput()
	for i := range int64(3) {
		t.Run(fmt.Sprint("seed=", seed+i), func(t *testing.T) { runQuietCrash(t, seed+i, recs, want) })
	}
}

func runQuietCrash(t *testing.T, seed int64, recs [2][]string, want map[windowKey]windowVal) {
	rng := rand.New(rand.NewSource(seed))
	n := newNode(t)
	n.Start()
	n.CreateStream("events", 2)
	n.putQuiet(recs)

	ctx, cancel := context.WithCancel(context.Background())
	wg := busy(ctx)
	defer func() { cancel(); wg.Wait() }()
	n.submit(quietJob)

	// Windows that fire on shard 0's watermark alone (end ≤ 390 s).
	early := 0
	for k := range want {
		if k.Start-crashBase+10_000 <= 390_000 {
			early++
		}
	}
	rows := func() int { return len(n.results("quiet", "board")) }
	kills := 0
	// Random kills while the job works through the input.
	for rows() < early/2 {
		time.Sleep(time.Duration(300+rng.Intn(1500)) * time.Millisecond)
		if rows() >= early/2 {
			break
		}
		n.Kill()
		n.Start()
		kills++
	}
	// Wait until the windows up to shard 0's end fired (the sources have
	// read all of shard 0 and most of shard 1), then kill within 2 s:
	// the checkpoint restored holds the sources at or near their end.
	testutil.Within(90*time.Second, func() bool { return rows() >= early })
	time.Sleep(time.Duration(rng.Intn(2000)) * time.Millisecond)
	n.Kill()
	n.Start()
	kills++
	t.Logf("seed %d: %d SIGKILLs; %d windows expected, %d fire before shard 1's tail", seed, kills, len(want), early)

	// Idle shards (10 s) let the watermark move to the largest of theirs.
	testutil.Within(90*time.Second, func() bool {
		if rows() >= len(want) {
			return true
		}
		if v := n.job("quiet"); v.State != "running" && v.State != "starting" {
			t.Fatalf("job is %s: %s", v.State, v.Reason)
		}
		return false
	})
	time.Sleep(1500 * time.Millisecond) // see any extra arrive
	board := n.results("quiet", "board")
	if code, b := n.Do("DELETE", "/api/v1/jobs/quiet", "", ""); code != 200 {
		t.Fatalf("stop job: %d %s", code, b)
	}
	n.stop()
	compareWindows(t, "dashboard", want, boardWindows(board))
	compareWindows(t, "result stream", want, streamWindows(t, n.Data))
}
