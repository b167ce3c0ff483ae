package engine

import (
	"sort"
	"time"

	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
)

// ShardState is where a shard task is.
type ShardState string

// Shard states.
const (
	ShardWaiting ShardState = "waiting" // for its parents to end
	ShardReading ShardState = "reading"
	ShardIdle    ShardState = "idle" // caught up; left out of the watermark
	ShardEnded   ShardState = "ended"
	ShardStopped ShardState = "stopped"
)

// Status is a snapshot of a job, readable while it runs.
type Status struct {
	Name   string `json:"name"`
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"` // why it failed or was canceled
	// Watermark is the job's event-time watermark in epoch ms: what the
	// keyed operators have advanced to (the minimum over their tasks), or
	// for a job without keyed operators the minimum over its shards.
	// NoWatermark before any record; EndOfTime once every source ended.
	Watermark int64            `json:"watermark"`
	Started   time.Time        `json:"started"`
	Ended     time.Time        `json:"ended,omitzero"` // zero while running
	Operators []OperatorStatus `json:"operators"`
	Shards    []ShardStatus    `json:"shards"`
	Queues    []QueueStatus    `json:"queues"`
}

// OperatorStatus counts one source, operator or sink over all its tasks.
type OperatorStatus struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // "source", "operator" or "sink"
	// In and Out count records (a source only has Out, a sink only In).
	In  int64 `json:"in"`
	Out int64 `json:"out"`
	// Errors counts errors that failed a task; Skipped the records an
	// operator skipped on error, DeadLettered those it sent to its dead
	// letter output (for a sink: rows it sent to its error output); Late the records a window got after its allowed
	// lateness.
	Errors       int64 `json:"errors"`
	Skipped      int64 `json:"skipped"`
	DeadLettered int64 `json:"dead_lettered"`
	Late         int64 `json:"late"`
	// Stages break a fused JS chain down by the job-file operators it
	// runs.
	Stages []StageStatus `json:"stages,omitempty"`
	// NativeBatches and GojaBatches count a JS chain's batches by what
	// evaluated them: Go, for functions simple enough (see docs/jobs.md),
	// or the JS engine.
	NativeBatches int64 `json:"native_batches,omitempty"`
	GojaBatches   int64 `json:"goja_batches,omitempty"`
}

// StageStatus counts the failures of one job-file operator inside a fused
// JS chain.
type StageStatus struct {
	Operator     string `json:"operator"`
	Errors       int64  `json:"errors"`
	Skipped      int64  `json:"skipped"`
	DeadLettered int64  `json:"dead_lettered"`
}

// ShardStatus is one source shard. Position is the last record handed on
// from the shard: the position to resume after.
type ShardStatus struct {
	Source       string     `json:"source"`
	Shard        string     `json:"shard"`
	State        ShardState `json:"state"`
	Position     string     `json:"position,omitempty"`
	Records      int64      `json:"records"`
	MaxEventTime int64      `json:"max_event_time"`
	Watermark    int64      `json:"watermark"`
}

// QueueStatus is the fill of one bounded inbox, in batches.
type QueueStatus struct {
	Name string `json:"name"`
	Len  int    `json:"len"`
	Cap  int    `json:"cap"`
}

// Status returns a snapshot of the job.
func (j *Job) Status() Status {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := Status{Name: j.name, State: j.mu.state, Started: j.mu.started, Ended: j.mu.ended}
	if j.mu.err != nil {
		s.Reason = j.mu.err.Error()
	}
	p := j.plan
	add := func(id, kind string) {
		st := j.nodeStats[id]
		o := OperatorStatus{ID: id, Kind: kind, In: st.in.Load(), Out: st.out.Load(), Errors: st.errors.Load()}
		for _, op := range j.mu.ops[id] {
			if c, ok := op.(LateCounter); ok {
				o.Late += c.LateRecords()
			}
			if c, ok := op.(SkipCounter); ok {
				o.Skipped += c.SkippedRecords()
			}
			if c, ok := op.(chainStats); ok {
				nb, gb := c.Batches()
				o.NativeBatches += nb
				o.GojaBatches += gb
				_, _, stages := c.Stats()
				if o.Stages == nil {
					o.Stages = make([]StageStatus, len(stages))
				}
				for i, st := range stages {
					o.Stages[i].Operator = st.Operator
					o.Stages[i].Errors += st.Errors
					o.Stages[i].Skipped += st.Skipped
					o.Stages[i].DeadLettered += st.DeadLettered
					o.Skipped += st.Skipped
					o.DeadLettered += st.DeadLettered
				}
			}
		}
		s.Operators = append(s.Operators, o)
	}
	for _, src := range p.g.Sources {
		add(src.ID, "source")
		if c, ok := src.Source.(sources.BadRecordCounter); ok {
			o := &s.Operators[len(s.Operators)-1]
			o.Skipped += c.SkippedRecords()
			o.DeadLettered += c.DeadLetteredRecords()
		}
	}
	for _, id := range p.order {
		add(id, "operator")
	}
	for _, sk := range p.g.Sinks {
		add(sk.ID, "sink")
		if c, ok := sk.Sink.(sinks.ErrorRowCounter); ok {
			s.Operators[len(s.Operators)-1].DeadLettered += c.ErrorRows()
		}
	}
	for _, st := range j.mu.shards {
		s.Shards = append(s.Shards, ShardStatus{Source: st.source, Shard: st.shard, State: st.state,
			Position: st.position, Records: st.records, MaxEventTime: st.maxEventTime, Watermark: st.watermark})
	}
	sort.Slice(s.Shards, func(a, b int) bool {
		if s.Shards[a].Source != s.Shards[b].Source {
			return s.Shards[a].Source < s.Shards[b].Source
		}
		return s.Shards[a].Shard < s.Shards[b].Shard
	})
	s.Watermark = j.watermarkLocked(s.Shards)
	for _, id := range p.keyed {
		for i, c := range j.exchanges[id].inbox {
			s.Queues = append(s.Queues, QueueStatus{Name: keyedTaskID(id, i), Len: len(c), Cap: cap(c)})
		}
	}
	for _, sk := range p.g.Sinks {
		c := j.sinkInbox[sk.ID]
		s.Queues = append(s.Queues, QueueStatus{Name: sk.ID, Len: len(c), Cap: cap(c)})
	}
	return s
}

func (j *Job) watermarkLocked(shards []ShardStatus) int64 {
	if len(j.plan.keyed) > 0 {
		wm := EndOfTime
		for _, id := range j.plan.keyed {
			for _, w := range j.keyedWM[id] {
				wm = min(wm, w.Load())
			}
		}
		return wm
	}
	t := newTracker(nil)
	for _, sh := range shards {
		switch sh.State {
		case ShardReading:
			t.update(sh.Source+"/"+sh.Shard, sh.Watermark)
		case ShardIdle:
			t.update(sh.Source+"/"+sh.Shard, sh.Watermark)
			t.idle(sh.Source + "/" + sh.Shard)
		case ShardWaiting:
		default:
			t.end(sh.Source + "/" + sh.Shard)
		}
	}
	return t.current()
}

// Positions returns shard → last position handed on ("SOURCE/SHARD" keys,
// as Options.Positions takes them back).
func (j *Job) Positions() map[string]string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := map[string]string{}
	for k, st := range j.mu.shards {
		if st.position != "" {
			out[k] = st.position
		}
	}
	return out
}
