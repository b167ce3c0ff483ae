package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/sources"
)

// shardStatus is what a shard task reports while it runs.
type shardStatus struct {
	source, shard string
	state         ShardState
	position      string
	maxEventTime  int64
	watermark     int64
	records       int64
}

// shardDone is a shard task's report to the scheduler.
type shardDone struct {
	source   int
	shard    string
	ended    bool // read to its end (not stopped)
	children []sources.Shard
}

// startable returns the shards of list that may start once the shards in
// ended have ended: those all of whose parents in the list have ended (a
// parent outside the list has expired or was never known).
func (j *Job) startable(src string, list []sources.Shard, ended map[string]bool) []sources.Shard {
	known := map[string]bool{}
	for _, s := range list {
		known[s.ID] = true
	}
	var out []sources.Shard
	for _, s := range list {
		ok := true
		for _, p := range s.Parents {
			if known[p] && !ended[p] {
				ok = false
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// runSources schedules shard tasks: the initial shards at once, a child
// shard once all its known parents ended. It returns after every shard
// task returned, so the inboxes it holds open close only then.
func (j *Job) runSources(ctx context.Context) (err error) {
	var wg sync.WaitGroup
	// reported ends when runSources returns, so no shard task waits to
	// report to it.
	reported, cancel := context.WithCancel(ctx)
	defer func() {
		if err != nil {
			// The shard tasks and discoverers end only once reading
			// stops; the error then fails the job.
			j.srcCancel()
		}
		cancel()
		wg.Wait()
	}()
	events := make(chan shardDone)
	type srcState struct {
		known   []sources.Shard
		started map[string]bool
		ended   map[string]bool
	}
	states := make([]*srcState, len(j.plan.g.Sources))
	running := 0
	start := func(si int, sh sources.Shard) {
		st := states[si]
		st.started[sh.ID] = true
		running++
		var kids []string
		for _, k := range st.known {
			if slices.Contains(k.Parents, sh.ID) {
				kids = append(kids, k.ID)
			}
		}
		wg.Add(1)
		j.group.Go(func() error {
			defer wg.Done()
			ev, err := j.runShard(ctx, si, sh, kids)
			if err != nil {
				return err
			}
			select {
			case events <- ev:
			case <-reported.Done():
			}
			return nil
		})
	}
	startReady := func(si int) {
		st := states[si]
		for _, sh := range j.startable(j.plan.g.Sources[si].ID, st.known, st.ended) {
			if !st.started[sh.ID] {
				start(si, sh)
			}
		}
	}
	discovered := make(chan discovery)
	discovering := 0
	for si, s := range j.plan.g.Sources {
		known := j.initial[s.ID]
		if len(j.opts.Positions) > 0 {
			known = j.newSinceCheckpoint(s.ID, known)
		}
		states[si] = &srcState{known: known, started: map[string]bool{}, ended: map[string]bool{}}
		for _, sh := range known {
			j.setShard(s.ID, sh.ID, func(st *shardStatus) { st.state = ShardWaiting })
		}
		startReady(si)
		if d, ok := s.Source.(sources.Discoverer); ok && d.DiscoverEvery() > 0 {
			discovering++
			wg.Add(1)
			go func() {
				defer wg.Done()
				j.discover(si, d.DiscoverEvery(), discovered)
			}()
		}
	}
	srcDone := j.srcCtx.Done()
	for running > 0 || discovering > 0 {
		select {
		case d := <-discovered:
			if d.err != nil {
				return d.err
			}
			st := states[d.source]
			src := j.plan.g.Sources[d.source]
			for _, sh := range d.shards {
				if !slices.ContainsFunc(st.known, func(k sources.Shard) bool { return k.ID == sh.ID }) {
					sh.FromStart = true
					st.known = append(st.known, sh)
					j.setShard(src.ID, sh.ID, func(st *shardStatus) { st.state = ShardWaiting })
					j.opts.Logger.Info("new shard found", "job", j.name, "source", src.ID, "shard", sh.ID)
				}
			}
			if j.srcCtx.Err() == nil {
				startReady(d.source)
			}
			continue
		case <-srcDone:
			// No shard starts any more; wait for the running ones to
			// hand in their reports.
			srcDone, discovering = nil, 0
			continue
		case ev := <-events:
			running--
			if !ev.ended {
				continue
			}
			st := states[ev.source]
			st.ended[ev.shard] = true
			src := j.plan.g.Sources[ev.source]
			isKnown := func(id string) bool {
				return slices.ContainsFunc(st.known, func(k sources.Shard) bool { return k.ID == id })
			}
			learn := func(sh sources.Shard) {
				if !isKnown(sh.ID) {
					st.known = append(st.known, sh)
					j.setShard(src.ID, sh.ID, func(st *shardStatus) { st.state = ShardWaiting })
				}
			}
			unknownParent := false
			for _, c := range ev.children {
				learn(c)
				for _, p := range c.Parents {
					unknownParent = unknownParent || !isKnown(p)
				}
			}
			if unknownParent {
				// A merge child whose other parent came from a reshard
				// after the job listed the shards, behind a shard still
				// being read: list again, so the child waits for that
				// parent (one no longer listed has expired).
				list, err := src.Source.Shards(ctx)
				if err != nil {
					return fmt.Errorf("list shards of source %s: %w", src.ID, err)
				}
				for _, sh := range list {
					learn(sh)
				}
			}
			if j.srcCtx.Err() == nil {
				startReady(ev.source)
			}
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// discovery is a fresh list of a source's shards, or the error listing it.
type discovery struct {
	source int
	shards []sources.Shard
	err    error
}

// discover lists source si's shards every interval and sends each list to
// out until the sources stop. A failed listing is retried at the next
// tick; one that keeps failing for five ticks in a row fails the job, so a
// broker that lost the topic is not silently read forever at its old size.
func (j *Job) discover(si int, every time.Duration, out chan<- discovery) {
	src := j.plan.g.Sources[si]
	t := time.NewTicker(every)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-t.C:
		case <-j.srcCtx.Done():
			return
		}
		list, err := src.Source.Shards(j.srcCtx)
		d := discovery{source: si, shards: list}
		if err != nil {
			if j.srcCtx.Err() != nil {
				return
			}
			failures++
			j.opts.Logger.Error("list shards failed", "job", j.name, "source", src.ID, "failures", failures, "err", err)
			if failures < 5 {
				continue
			}
			d.err = fmt.Errorf("list shards of source %s: %w", src.ID, err)
		} else {
			failures = 0
		}
		select {
		case out <- d:
		case <-j.srcCtx.Done():
			return
		}
		if d.err != nil {
			return
		}
	}
}

// newSinceCheckpoint marks, on a restore, the shards the checkpoint does
// not know that are new to the job: every such shard of a discovering
// source, and the children of a reshard (shards with parents) of any
// source. They appeared after the job began (or while it was down), so
// they are read from their start, not from the configured one (a start
// at latest would otherwise skip what was written to them until the
// restart). Shards without parents that the checkpoint lacks keep the
// configured start: the job never opened them.
func (j *Job) newSinceCheckpoint(src string, list []sources.Shard) []sources.Shard {
	i := slices.IndexFunc(j.plan.g.Sources, func(s SourceNode) bool { return s.ID == src })
	_, discovers := j.plan.g.Sources[i].Source.(sources.Discoverer)
	out := slices.Clone(list)
	for i, sh := range out {
		if _, ok := j.opts.Positions[src+"/"+sh.ID]; !ok && (discovers || len(sh.Parents) > 0) {
			out[i].FromStart = true
		}
	}
	return out
}

func (j *Job) setShard(src, shard string, f func(*shardStatus)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	key := src + "/" + shard
	st := j.mu.shards[key]
	if st == nil {
		st = &shardStatus{source: src, shard: shard, maxEventTime: NoWatermark, watermark: NoWatermark}
		j.mu.shards[key] = st
	}
	f(st)
}
