package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"

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
func (j *Job) runSources(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
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
			case <-ctx.Done():
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
	for si, s := range j.plan.g.Sources {
		states[si] = &srcState{known: j.initial[s.ID], started: map[string]bool{}, ended: map[string]bool{}}
		for _, sh := range j.initial[s.ID] {
			j.setShard(s.ID, sh.ID, func(st *shardStatus) { st.state = ShardWaiting })
		}
		startReady(si)
	}
	for running > 0 {
		select {
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
