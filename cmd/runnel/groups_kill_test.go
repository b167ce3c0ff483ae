package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// groupLease is a lease as GET .../consumer-groups/{group} shows it.
type groupLease struct {
	Shard    string `json:"shard"`
	Owner    string `json:"owner"`
	Epoch    uint64 `json:"epoch"`
	Seq      string `json:"sequence_number"`
	Sub      uint64 `json:"sub_sequence_number"`
	Finished bool   `json:"finished"`
}

func describeGroup(hc *http.Client, url string) ([]groupLease, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var g struct {
		Leases []groupLease `json:"leases"`
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("describe group: %s", resp.Status)
	}
	return g.Leases, json.NewDecoder(resp.Body).Decode(&g)
}

// consumed is one line of `runnel consume`.
type consumed struct {
	Shard   string    `json:"shard"`
	Seq     string    `json:"sequence_number"`
	Key     string    `json:"key"`
	Data    string    `json:"data"`
	Worker  string    `json:"worker"`
	Handled time.Time `json:"handled"`
}

// consumeFleet runs `runnel consume` workers and collects their lines.
type consumeFleet struct {
	t    *testing.T
	args []string
	mu   sync.Mutex
	got  []consumed
	live map[string]*exec.Cmd
	logs map[string]*bytes.Buffer
	wg   sync.WaitGroup
}

func (f *consumeFleet) start(name string) {
	f.t.Helper()
	cmd := exec.Command(testbin.Runnel(f.t), append(slices.Clone(f.args), "--worker", name)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.live[name], f.logs[name] = cmd, logs
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		rd := bufio.NewReader(out)
		for {
			line, err := rd.ReadBytes('\n')
			if err != nil {
				// EOF: a last line without its newline is one a kill -9
				// cut short; its record was not checkpointed, so another
				// worker handles it again.
				return
			}
			var c consumed
			if err := json.Unmarshal(line, &c); err != nil {
				f.t.Errorf("worker %s printed %q: %v", name, line, err)
				continue
			}
			f.mu.Lock()
			f.got = append(f.got, c)
			f.mu.Unlock()
		}
	}()
	f.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

func (f *consumeFleet) lines() []consumed {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// seqValue orders checkpoints: none, sequence numbers, SHARD_END.
func seqValue(seq string, sub uint64) *big.Int {
	switch seq {
	case "":
		return big.NewInt(-1)
	case "SHARD_END":
		return new(big.Int).Lsh(big.NewInt(1), 400)
	}
	v, _ := new(big.Int).SetString(seq, 10)
	return v.Mul(v, big.NewInt(1<<20)).Add(v, big.NewInt(int64(sub)))
}

// TestConsumerGroupKillReshard runs three `runnel consume` workers of one
// group while records are put under 16 keys, one worker at a time is
// killed with SIGKILL (and replaced by a new one) every 1–2.5 s after
// its shards were taken over (four kills), and the stream is split, merged
// and split again. It checks what a KCL user
// relies on: every record is handled; the records of each key are handled
// in put order across the splits and merges (the first handling of each
// record comes after the first handling of every earlier record of its
// key; handling again after a kill is allowed); a checkpoint in the dead
// worker's name at its last epoch is refused with 409 lease_lost once its
// shards are taken over; a shard's checkpoint and epoch never go back;
// and the survivors hand their shards off on SIGTERM. It logs the time
// from each kill to the dead worker's shards being handled again.
func TestConsumerGroupKillReshard(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and workers")
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	base := testbin.Serve(t, t.TempDir(), "http", hc)
	groupURL := base + "/api/v1/streams/s/consumer-groups"
	runConsumerGroupKill(t, hc, base, leaseBackend{
		create: func() {
			if err := newClient(base).do("POST", "/api/v1/streams/s/consumer-groups", map[string]any{"name": "g", "lease_duration_ms": killLeaseMS}, nil); err != nil {
				t.Fatalf("create group: %v", err)
			}
		},
		args:     []string{"--server", base},
		describe: func() ([]groupLease, error) { return describeGroup(hc, groupURL+"/g") },
		staleCheckpoint: func(shard, worker string, epoch uint64) string {
			body := fmt.Sprintf(`{"worker":%q,"epoch":%d,"sequence_number":"99999999999999999999999999999999999999999999999999999999"}`, worker, epoch)
			resp, err := hc.Post(groupURL+"/g/shards/"+shard+"/checkpoint", "application/json", strings.NewReader(body))
			if err != nil {
				return err.Error()
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 409 || !strings.Contains(string(b), "lease_lost") {
				return fmt.Sprintf("%s %s, want 409 lease_lost", resp.Status, b)
			}
			return ""
		},
	})
}

const killLeaseMS = 1000

// leaseBackend is where the workers of runConsumerGroupKill keep leases.
type leaseBackend struct {
	create   func() // makes the group, if the store needs it
	args     []string
	describe func() ([]groupLease, error)
	// staleCheckpoint writes a checkpoint as worker at epoch and says
	// what was wrong ("" when it was refused as it must be).
	staleCheckpoint func(shard, worker string, epoch uint64) string
}

// runConsumerGroupKill is the body of the kill tests: see
// TestConsumerGroupKillReshard.
func runConsumerGroupKill(t *testing.T, hc *http.Client, base string, lb leaseBackend) {
	rng := testutil.Rand(t, 1)
	if err := newClient(base).do("POST", "/api/v1/streams", map[string]any{"name": "s", "shards": 2}, nil); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	const leaseMS = killLeaseMS
	if lb.create != nil {
		lb.create()
	}
	f := &consumeFleet{t: t, live: map[string]*exec.Cmd{}, logs: map[string]*bytes.Buffer{},
		args: append([]string{"consume", "s", "--group", "g", "--idle", "50ms", "--log-level", "warn",
			"--lease-duration", fmt.Sprintf("%dms", leaseMS)}, lb.args...)}
	for i := range 3 {
		f.start(fmt.Sprintf("w%d", i))
	}

	// The producer: rounds of one record per key, each round one request
	// acknowledged before the next, so each key's records are in the
	// stream in round order. The stream is resharded between rounds.
	// It goes on until the killer is done and it has put minRounds.
	const keys, minRounds, wantKills = 16, 240, 4
	produced, stopProducing := make(chan struct{}), make(chan struct{})
	rounds := 0
	go func() {
		defer close(produced)
		for r := 0; ; r++ {
			select {
			case <-stopProducing:
				if r >= minRounds {
					rounds = r
					return
				}
			default:
			}
			var recs []string
			for k := range keys {
				recs = append(recs, fmt.Sprintf(`{"key":"k%02d","data":"%d"}`, k, r))
			}
			for !postJSON(hc, base+"/api/v1/streams/s/records", `{"records":[`+strings.Join(recs, ",")+`]}`) {
				time.Sleep(20 * time.Millisecond)
			}
			switch r {
			case minRounds / 4, 3 * minRounds / 4:
				open, err := openShardRanges(hc, base, "s")
				if err != nil || len(open) == 0 {
					t.Errorf("open shards: %v", err)
					continue
				}
				s := open[rng.IntN(len(open))]
				if !postJSON(hc, base+"/api/v1/streams/s/split", fmt.Sprintf(`{"shard":%q}`, s.id)) {
					t.Errorf("split %s", s.id)
				}
			case minRounds / 2:
				open, err := openShardRanges(hc, base, "s")
				if err != nil {
					t.Errorf("open shards: %v", err)
				}
				for i := 0; i+1 < len(open); i++ {
					if new(big.Int).Add(open[i].end, big.NewInt(1)).Cmp(open[i+1].start) == 0 {
						if !postJSON(hc, base+"/api/v1/streams/s/merge", fmt.Sprintf(`{"shard":%q,"adjacent_shard":%q}`, open[i].id, open[i+1].id)) {
							t.Errorf("merge %s %s", open[i].id, open[i+1].id)
						}
						break
					}
				}
			}
			time.Sleep(15 * time.Millisecond)
		}
	}()

	// The watcher: checkpoints and epochs never go back.
	watchDone, stopWatch := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watchDone)
		last := map[string]groupLease{}
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(50 * time.Millisecond):
			}
			ls, err := lb.describe()
			if err != nil {
				continue
			}
			for _, l := range ls {
				p, ok := last[l.Shard]
				if ok && (l.Epoch < p.Epoch || seqValue(l.Seq, l.Sub).Cmp(seqValue(p.Seq, p.Sub)) < 0) {
					t.Errorf("shard %s went back: epoch %d checkpoint %s/%d after epoch %d checkpoint %s/%d", l.Shard, l.Epoch, l.Seq, l.Sub, p.Epoch, p.Seq, p.Sub)
				}
				last[l.Shard] = l
			}
		}
	}()

	// The killer.
	type kill struct {
		worker string
		at     time.Time
		held   []groupLease
	}
	var kills []kill
	staleRefused := 0
	gen := 0
	for len(kills) < wantKills {
		time.Sleep(time.Duration(1000+rng.IntN(1500)) * time.Millisecond)
		// The victim: a worker holding a lease, when one does.
		ls, _ := lb.describe()
		f.mu.Lock()
		var names, holders []string
		for n := range f.live {
			names = append(names, n)
			if slices.ContainsFunc(ls, func(l groupLease) bool { return l.Owner == n && !l.Finished }) {
				holders = append(holders, n)
			}
		}
		sort.Strings(names)
		sort.Strings(holders)
		if len(holders) > 0 {
			names = holders
		}
		victim := names[rng.IntN(len(names))]
		cmd := f.live[victim]
		delete(f.live, victim)
		f.mu.Unlock()
		var held []groupLease
		for _, l := range ls {
			if l.Owner == victim && !l.Finished {
				held = append(held, l)
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		kills = append(kills, kill{victim, time.Now(), held})
		gen++
		f.start(fmt.Sprintf("w%d-r%d", rng.IntN(3), gen))
		// Once another worker holds the dead one's shards, a checkpoint
		// in its name at its epoch must be refused.
		for _, l := range held {
			testutil.Eventually(t, 30*time.Second, func() bool {
				now, _ := lb.describe()
				for _, n := range now {
					if n.Shard == l.Shard {
						return n.Finished || (n.Owner != "" && n.Owner != victim)
					}
				}
				return true
			}, "shard %s of killed worker %s was not taken over", l.Shard, victim)
			if msg := lb.staleCheckpoint(l.Shard, victim, l.Epoch); msg != "" {
				t.Errorf("checkpoint of %s by killed worker %s at epoch %d: %s", l.Shard, victim, l.Epoch, msg)
			}
			staleRefused++
		}
	}
	close(stopProducing)
	<-produced

	// Every record is handled.
	want := map[string]bool{}
	for k := range keys {
		for r := range rounds {
			want[fmt.Sprintf("k%02d/%d", k, r)] = true
		}
	}
	missing := func() []string {
		seen := map[string]bool{}
		for _, c := range f.lines() {
			seen[c.Key+"/"+c.Data] = true
		}
		var out []string
		for k := range want {
			if !seen[k] {
				out = append(out, k)
			}
		}
		sort.Strings(out)
		return out
	}
	if !testutil.Within(60*time.Second, func() bool { return len(missing()) == 0 }) {
		m := missing()
		t.Fatalf("%d of %d records never handled, first: %v", len(m), len(want), m[:min(20, len(m))])
	}

	// The survivors hand off on SIGTERM and exit cleanly.
	f.mu.Lock()
	for name, cmd := range f.live {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("worker %s after SIGTERM: %v\n%s", name, err, f.logs[name])
		}
	}
	f.mu.Unlock()
	f.wg.Wait()
	close(stopWatch)
	<-watchDone
	ls, err := lb.describe()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Owner != "" {
			t.Errorf("after every worker stopped, %s is still held by %s", l.Shard, l.Owner)
		}
	}

	// Per-key order: in handling order, each key's first handlings run
	// 0, 1, 2, ...
	lines := f.lines()
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Handled.Before(lines[j].Handled) })
	next := map[string]int{}
	var disorder []string
	for _, c := range lines {
		var n int
		fmt.Sscan(c.Data, &n)
		switch {
		case n == next[c.Key]:
			next[c.Key]++
		case n > next[c.Key]:
			disorder = append(disorder, fmt.Sprintf("%s: %d handled (shard %s, worker %s, %s) before %d", c.Key, n, c.Shard, c.Worker, c.Handled.Format(time.RFC3339Nano), next[c.Key]))
		}
	}
	if len(disorder) > 0 {
		t.Errorf("%d records handled before an earlier record of their key, first: %v", len(disorder), disorder[:min(10, len(disorder))])
	}

	// Time from each kill to the dead worker's shards handled again.
	for _, k := range kills {
		for _, l := range k.held {
			var again time.Duration = -1
			for _, c := range lines {
				if c.Worker != k.worker && c.Handled.After(k.at) && c.Shard == l.Shard {
					again = c.Handled.Sub(k.at)
					break
				}
			}
			if again < 0 {
				t.Logf("killed %s holding %s: no record of it was left to handle", k.worker, l.Shard)
				continue
			}
			t.Logf("killed %s holding %s: handled again after %v (lease duration %dms)", k.worker, l.Shard, again, leaseMS)
		}
	}
	t.Logf("%d records put, %d lines handled, %d kills, %d stale checkpoints refused", len(want), len(lines), len(kills), staleRefused)
}

type shardRange struct {
	id         string
	start, end *big.Int
}

// openShardRanges lists a stream's open shards by hash range, in the
// order of their ranges.
func openShardRanges(hc *http.Client, base, stream string) ([]shardRange, error) {
	resp, err := hc.Get(base + "/api/v1/streams/" + stream)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var info struct {
		Shards []struct {
			ID    string `json:"id"`
			Open  bool   `json:"open"`
			Start string `json:"hash_key_start"`
			End   string `json:"hash_key_end"`
		} `json:"shards"`
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s", resp.Request.URL.Path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, err
	}
	var out []shardRange
	for _, s := range info.Shards {
		if s.Open {
			a, _ := new(big.Int).SetString(s.Start, 10)
			b, _ := new(big.Int).SetString(s.End, 10)
			out = append(out, shardRange{s.ID, a, b})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Cmp(out[j].start) < 0 })
	return out, nil
}
