package jobs

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/sinks"
)

// Info is a job's public state.
type Info struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	Created time.Time `json:"created"`
	// Owner is the part of the server that manages the job (a Kinesis
	// channel's ARN), absent for a user's job.
	Owner     string         `json:"owner,omitempty"`
	Watermark *int64         `json:"watermark,omitempty"`
	Operators []OperatorInfo `json:"operators,omitempty"`
	Sinks     []SinkInfo     `json:"sinks,omitempty"`
	Graph     []GraphNode    `json:"graph,omitempty"`
	Spec      string         `json:"spec,omitempty"`
	// Checkpoints is the checkpoint history (with the spec only).
	Checkpoints []CheckpointInfo `json:"checkpoints,omitempty"`
	// WatermarkLagMs is the wall clock minus Watermark, in milliseconds,
	// while the job runs: negative when event time is ahead of the clock.
	WatermarkLagMs *int64 `json:"watermark_lag_ms,omitempty"`
	// Warnings are problems the job runs on with (or that keep it from
	// starting): a checkpoint it restored from that stream retention had
	// partly invalidated, damaged or lost checkpoints it passed over, a
	// damaged state file, a sink's call its target leaves unanswered,
	// late records a window dropped.
	Warnings []string `json:"warnings,omitempty"`
	// CheckpointsSkipped is how many damaged checkpoints the job's last
	// start passed over to restore an older one.
	CheckpointsSkipped int `json:"checkpoints_skipped,omitempty"`
	// InPerS and OutPerS are the records read per second by the source and
	// written per second by the sinks (dead letters aside) over the last
	// metrics interval, while the job runs (0 otherwise).
	InPerS  float64 `json:"in_per_s"`
	OutPerS float64 `json:"out_per_s"`
	// UptimeS is how long the current run has been running, in seconds
	// (0 when the job is not running).
	UptimeS float64 `json:"uptime_s"`
	// Errors counts the records its operators and source failed on in the
	// current (or last) run, whatever their on_error, and the tasks that
	// failed.
	Errors int64 `json:"errors"`
	// Parallelism is how many source shards the job reads: the shards it
	// reads now while it runs, else the file's source.shards.
	Parallelism int `json:"parallelism"`
	// Restarting is the restart a failed job waits for by its restart
	// strategy: attempt N of M at a time (absent when none is pending).
	Restarting *Restarting `json:"restarting,omitempty"`
}

// OperatorInfo is one node's counters, with its backpressure: how full the
// bounded inboxes it sends to are (0 keeping up … 1 blocked), when it
// sends through one (to a keyed node or a sink).
type OperatorInfo struct {
	engine.OperatorStatus
	Backpressure *float64 `json:"backpressure,omitempty"`
	// StateBytes is the size of the node's keyed state (keys and values
	// of all its tasks, state.DB.OperatorBytes) while the job runs; null
	// for a node without state.
	StateBytes *int64 `json:"state_bytes"`
}

// withBackpressure attaches to each node the fullest inbox among the nodes
// that read it. Keyed tasks' inboxes are named "NODE#i", sinks' "SINK".
func withBackpressure(spec *Spec, st engine.Status) []OperatorInfo {
	fill := map[string]float64{}
	for _, q := range st.Queues {
		name := q.Name
		if i := strings.LastIndexByte(name, '#'); i > 0 {
			name = name[:i]
		}
		if q.Cap > 0 {
			fill[name] = max(fill[name], float64(q.Len)/float64(q.Cap))
		}
	}
	pressure := map[string]float64{}
	for _, n := range spec.GraphNodes() {
		f, ok := fill[n.ID]
		if !ok {
			continue
		}
		for _, in := range n.Inputs {
			pressure[in] = max(pressure[in], f)
		}
	}
	out := make([]OperatorInfo, len(st.Operators))
	for i, o := range st.Operators {
		out[i].OperatorStatus = o
		ids := []string{o.ID} // a fused chain sends on behalf of its stages
		for _, stg := range o.Stages {
			ids = append(ids, stg.Operator)
		}
		for _, id := range ids {
			if p, ok := pressure[id]; ok && (out[i].Backpressure == nil || p > *out[i].Backpressure) {
				out[i].Backpressure = &p
			}
		}
	}
	return out
}

// GraphNode is one node of a job's graph as the file declares it: the
// source, each operator and each sink, with what it reads.
type GraphNode struct {
	ID     string   `json:"id"`
	Kind   string   `json:"kind"`
	Inputs []string `json:"inputs,omitempty"`
}

// GraphNodes lists the job's nodes in file order, then the sinks of
// operators that dead-letter their errors (OPERATOR-dead-letters).
func (s *Spec) GraphNodes() []GraphNode {
	out := []GraphNode{{ID: SourceID, Kind: s.Source.Kind()}}
	for _, op := range s.Operators {
		out = append(out, GraphNode{ID: op.ID, Kind: op.Kind(), Inputs: op.From})
	}
	for _, sk := range s.Sinks {
		in := sk.From
		if sk.Late != "" {
			in = sk.Late
		}
		out = append(out, GraphNode{ID: sk.ID, Kind: sk.Kind(), Inputs: []string{in}})
	}
	for _, op := range s.Operators {
		if op.OnError.Policy == OnErrorDeadLetter {
			out = append(out, GraphNode{ID: op.ID + deadLetterSuffix, Kind: DeadLetterKind, Inputs: []string{op.ID}})
		}
	}
	return out
}

// deadLetterSuffix ends the id of the sink that writes an operator's dead
// letters to its stream.
const deadLetterSuffix = "-dead-letters"

// SinkInfo names a sink and its kind. A dead-letter sink's Title is the
// stream it writes.
type SinkInfo struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Title string `json:"title,omitempty"`
}

// Info reports a job.
func (j *Job) Info(withSpec bool) Info {
	in := Info{ID: j.ID, Name: j.Spec.Name, Created: j.Created, Owner: j.Owner}
	j.mu.Lock()
	rj, stopped, finished, failed, serr := j.mu.run, j.mu.stopped, j.mu.finished, j.mu.failed, j.mu.startErr
	j.mu.Unlock()
	switch {
	case serr != nil:
		in.State, in.Reason = string(engine.Failed), serr.Error()
		in.Errors = 1 // the run failed as it started
	case rj == nil && finished:
		in.State = string(engine.Finished)
	case rj == nil && failed != "":
		// A run that failed before the server restarted: its counters are
		// gone, its failure is not.
		in.State, in.Reason = string(engine.Failed), failed
		in.Errors = 1
	case rj != nil:
		st := rj.Status()
		in.State, in.Reason = string(st.State), st.Reason
		if st.Watermark != engine.NoWatermark {
			wm := st.Watermark
			in.Watermark = &wm
			if wm < engine.EndOfTime && st.State == engine.Running {
				lag := time.Now().UnixMilli() - wm
				in.WatermarkLagMs = &lag
			}
		}
		in.Operators = withBackpressure(j.Spec, st)
		in.Warnings = append(in.Warnings, lateDropped(j.Spec, st)...)
		withStateBytes(in.Operators, j.stateBytes())
		for _, o := range st.Operators {
			in.Errors += o.Errors + o.Skipped + o.DeadLettered
		}
		if st.State == engine.Running && !stopped {
			in.UptimeS = time.Since(st.Started).Truncate(time.Millisecond).Seconds()
			in.InPerS, in.OutPerS = j.metrics.rates()
			for _, sh := range st.Shards {
				if sh.State != engine.ShardEnded && sh.State != engine.ShardStopped {
					in.Parallelism++
				}
			}
		}
	}
	if in.Parallelism == 0 {
		in.Parallelism = max(j.Spec.Source.Shards, 1)
	}
	if stopped {
		in.State = StateStopped
	}
	if in.State == "" {
		in.State = StateStarting
	}
	if in.State == string(engine.Failed) {
		if failed != "" && serr == nil {
			in.Reason = failed // with what its restart strategy adds
		}
		in.Restarting = j.restarts.info()
	}
	for _, s := range j.Spec.Sinks {
		si := SinkInfo{ID: s.ID, Kind: s.Kind()}
		if s.Dashboard != nil {
			si.Title = s.Dashboard.Title
		}
		in.Sinks = append(in.Sinks, si)
	}
	for _, op := range j.Spec.Operators {
		if op.OnError.Policy == OnErrorDeadLetter {
			in.Sinks = append(in.Sinks, SinkInfo{ID: op.ID + deadLetterSuffix, Kind: DeadLetterKind, Title: op.OnError.DeadLetter})
		}
	}
	in.Graph = j.Spec.GraphNodes()
	if withSpec {
		in.Spec = string(j.Source)
		in.Checkpoints = j.checkpoints()
	}
	j.mu.Lock()
	if cs := j.mu.ckpt; cs != nil {
		in.Warnings = append(in.Warnings, cs.jobWarnings()...)
		in.CheckpointsSkipped = cs.skipped
	}
	if j.shardsWarning != "" {
		in.Warnings = append(in.Warnings, j.shardsWarning)
	}
	j.mu.Unlock()
	if errors.Is(serr, ErrStateDamaged) {
		in.Warnings = append(in.Warnings, serr.Error())
	}
	for _, st := range sinks.Stalled(j.ID) {
		in.Warnings = append(in.Warnings, st.String())
	}
	return in
}

// List reports every job, by id.
func (m *Manager) List() []Info {
	js := m.jobsByID()
	out := make([]Info, len(js))
	for i, j := range js {
		out[i] = j.Info(false)
	}
	return out
}

// jobsByID returns the manager's jobs as they are now, sorted by id.
func (m *Manager) jobsByID() []*Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.SortedFunc(maps.Values(m.mu.jobs), func(a, b *Job) int { return cmp.Compare(a.ID, b.ID) })
}

// Get reports one job with its spec.
func (m *Manager) Get(id string) (Info, error) {
	j, err := m.job(id)
	if err != nil {
		return Info{}, err
	}
	return j.Info(true), nil
}

// lateDropped says, for each window operator that dropped records arriving
// after their window closed (past its allowed lateness) and no sink takes
// its late records, how many: results that count fewer records than the
// input holds are not silent.
func lateDropped(spec *Spec, st engine.Status) []string {
	var out []string
	for _, o := range st.Operators {
		if o.Late == 0 || slices.ContainsFunc(spec.Sinks, func(s Sink) bool { return s.Late == o.ID }) {
			continue
		}
		out = append(out, fmt.Sprintf("operator %s dropped %d late records: they arrived after their window closed (behind the watermark by more than allowed_lateness); runnel_operator_late_records_total counts them, and a sink with `late: %s` would keep them",
			o.ID, o.Late, o.ID))
	}
	return out
}
