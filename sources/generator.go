package sources

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/runnel-dev/runnel/internal/backoff"
)

// GeneratorConfig configures the built-in clickstream generator.
type GeneratorConfig struct {
	// Shards is the number of shards (tasks); default 1.
	Shards int
	// Rate is records per second over all shards; 0 means as fast as the
	// job consumes them.
	Rate float64
	// Keys is the number of distinct pages (the natural window key);
	// default 100.
	Keys int
	// Users is the number of distinct users; default 1000. About 5% of
	// the users are bots ("bot-17").
	Users int
	// Seed makes the records deterministic: the same seed, shard count and
	// Start give the same records.
	Seed uint64
	// Count bounds the total number of records (spread evenly over the
	// shards); 0 means unbounded.
	Count int64
	// Start is the event time of each shard's first record; then record i
	// of a shard has event time Start + i×Step, whenever it is read. Zero
	// means the wall clock: a shard opened (or reopened after a restart) at
	// position i gives record i the wall-clock time of the opening and
	// continues from there, so event time stays with the clock across
	// restarts instead of resuming where an earlier run's clock was.
	Start time.Time
	// Step is the event-time distance between consecutive records of one
	// shard; default 1s/(Rate/Shards), or 1ms when Rate is 0.
	Step time.Duration
}

// Validate checks ranges.
func (c GeneratorConfig) Validate() error {
	switch {
	case c.Shards < 0 || c.Shards > 1024:
		return configErr("generator: shards %d: use 1 to 1024", c.Shards)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return configErr("generator: rate %v: use a positive number of records/s, or 0 for as fast as possible", c.Rate)
	case c.Keys < 0:
		return configErr("generator: keys %d must be positive", c.Keys)
	case c.Users < 0:
		return configErr("generator: users %d must be positive", c.Users)
	case c.Count < 0:
		return configErr("generator: count %d must not be negative", c.Count)
	case c.Step < 0:
		return configErr("generator: step %v must not be negative", c.Step)
	}
	return nil
}

// Generator produces a synthetic clickstream for demos and benchmarks. Each
// record is an object
//
//	{"page": "/p/17", "user": "u-123", "latency_ms": 42.5, "status": 200,
//	 "country": "de", "ts": 1767225600000, "elapsed_ms": 5000}
//
// with ts the event time in epoch milliseconds and elapsed_ms the record's
// index in its shard times Step: the generator's own clock, which starts at
// 0 with a shard's first record and goes on across restarts (for
// schedules, such as the demo's flash sale, that must not depend on when
// the generator was started or restarted). Pages are uniform over
// Keys; latencies are log-normal around 40 ms with a slow tail; statuses
// are mostly 200. Positions are per-shard record indexes.
type Generator struct {
	cfg   GeneratorConfig
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	pages []string
	users []string
}

var countries = []string{"de", "us", "fr", "jp", "br", "in", "gb", "nl"}

// NewGenerator validates cfg, fills defaults and returns the source.
func NewGenerator(cfg GeneratorConfig) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Shards = cmp.Or(cfg.Shards, 1)
	cfg.Keys = cmp.Or(cfg.Keys, 100)
	cfg.Users = cmp.Or(cfg.Users, 1000)
	if cfg.Step == 0 {
		if cfg.Rate > 0 {
			cfg.Step = time.Duration(float64(time.Second) * float64(cfg.Shards) / cfg.Rate)
		} else {
			cfg.Step = time.Millisecond
		}
	}
	g := &Generator{cfg: cfg, now: time.Now, sleep: backoff.Sleep}
	g.pages = make([]string, cfg.Keys)
	for i := range g.pages {
		g.pages[i] = "/p/" + strconv.Itoa(i)
	}
	g.users = make([]string, cfg.Users)
	for i := range g.users {
		if i%20 == 19 {
			g.users[i] = "bot-" + strconv.Itoa(i)
		} else {
			g.users[i] = "u-" + strconv.Itoa(i)
		}
	}
	return g, nil
}

// Bounded reports whether Count bounds the generator.
func (g *Generator) Bounded() bool { return g.cfg.Count > 0 }

// Shards returns shard-0 ... shard-(Shards-1).
func (g *Generator) Shards(ctx context.Context) ([]Shard, error) {
	out := make([]Shard, g.cfg.Shards)
	for i := range out {
		out[i] = Shard{ID: "shard-" + strconv.Itoa(i)}
	}
	return out, nil
}

// Open starts shard after record index after.
func (g *Generator) Open(ctx context.Context, shard Shard, after string) (Reader, error) {
	idx := -1
	for i := 0; i < g.cfg.Shards; i++ {
		if shard.ID == "shard-"+strconv.Itoa(i) {
			idx = i
		}
	}
	if idx < 0 {
		return nil, configErr("generator has no shard %q", shard.ID)
	}
	var next int64
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 0 {
			return nil, configErr("generator shard %s: position %q is not an index", shard.ID, after)
		}
		next = n + 1
	}
	limit := int64(-1)
	if g.cfg.Count > 0 {
		limit = g.cfg.Count / int64(g.cfg.Shards)
		if int64(idx) < g.cfg.Count%int64(g.cfg.Shards) {
			limit++
		}
	}
	opened := g.now()
	var startMs int64
	if g.cfg.Start.IsZero() {
		// Record next is due now (ts below adds next×Step back).
		startMs = opened.UnixMilli() - g.offsetMs(next)
	} else {
		startMs = g.cfg.Start.UnixMilli()
	}
	r := &genReader{g: g, shard: shard.ID, next: next, limit: limit,
		startMs: startMs, opened: opened, first: next}
	r.rng = rand.New(rand.NewPCG(g.cfg.Seed, uint64(idx)+1))
	// Skip the random draws of records before next so a resumed shard
	// continues the same sequence.
	for i := int64(0); i < next; i++ {
		r.record(i)
	}
	return r, nil
}

type genReader struct {
	g       *Generator
	shard   string
	rng     *rand.Rand
	next    int64
	limit   int64
	startMs int64
	opened  time.Time
	first   int64
}

func (r *genReader) record(i int64) map[string]any {
	g := r.g
	page := g.pages[r.rng.IntN(len(g.pages))]
	user := g.users[r.rng.IntN(len(g.users))]
	lat := 40 * math.Exp(0.5*r.rng.NormFloat64())
	if r.rng.IntN(100) == 0 {
		lat *= 10
	}
	status := 200
	switch x := r.rng.IntN(100); {
	case x < 2:
		status = 500
	case x < 6:
		status = 404
	}
	country := countries[r.rng.IntN(len(countries))]
	off := g.offsetMs(i)
	return map[string]any{
		"page":       page,
		"user":       user,
		"latency_ms": math.Round(lat*10) / 10,
		"status":     float64(status),
		"country":    country,
		"ts":         float64(r.startMs + off),
		"elapsed_ms": float64(off),
	}
}

// offsetMs is record i's event-time offset from its shard's first record.
func (g *Generator) offsetMs(i int64) int64 {
	return int64(float64(i) * float64(g.cfg.Step) / float64(time.Millisecond))
}

func (r *genReader) Read(ctx context.Context, buf []Record) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	want := int64(len(buf))
	if r.limit >= 0 {
		if r.next >= r.limit {
			return 0, io.EOF
		}
		want = min(want, r.limit-r.next)
	}
	if rate := r.g.cfg.Rate / float64(r.g.cfg.Shards); rate > 0 {
		for {
			due := int64(r.g.now().Sub(r.opened).Seconds()*rate) + 1 - (r.next - r.first)
			if due > 0 {
				want = min(want, due)
				break
			}
			wait := time.Duration(float64(time.Second) / rate)
			if err := r.g.sleep(ctx, wait); err != nil {
				return 0, err
			}
		}
	}
	now := r.g.now().UnixMilli()
	for k := int64(0); k < want; k++ {
		buf[k] = Record{Value: r.record(r.next), Position: strconv.FormatInt(r.next, 10), Arrival: now}
		r.next++
	}
	return int(want), nil
}

func (r *genReader) Children() []Shard { return nil }

func (r *genReader) Close() error { return nil }

// String describes the generator for logs.
func (g *Generator) String() string {
	return fmt.Sprintf("generator(shards=%d rate=%v keys=%d count=%d seed=%d)",
		g.cfg.Shards, g.cfg.Rate, g.cfg.Keys, g.cfg.Count, g.cfg.Seed)
}
