package jobs

import (
	"sync"
	"time"

	"github.com/runnel-dev/runnel/engine"
)

// The metrics history of a job: every MetricsInterval the manager samples
// each running job's counters into a point (rates per operator and shard,
// backpressure, watermark lag, the checkpoint completed since the last
// point), keeping the last MetricsPoints points (an hour) in memory. A job
// that is not running gets no points, so a stopped job's history ends
// where it stopped.

// Defaults of the metrics history.
const (
	DefaultMetricsInterval = 5 * time.Second
	MetricsPoints          = 720
)

// MetricsPoint is one sample of a job.
type MetricsPoint struct {
	Time APITime `json:"time"`
	// WatermarkLagMs is the wall clock minus the job's watermark (null
	// before the first record, or once every source ended).
	WatermarkLagMs *int64 `json:"watermark_lag_ms"`
	// CheckpointMs and CheckpointBytes describe the newest checkpoint
	// completed since the previous point (null if none).
	CheckpointMs    *float64                   `json:"checkpoint_ms"`
	CheckpointBytes *int64                     `json:"checkpoint_bytes"`
	Operators       map[string]OperatorMetrics `json:"operators"`
	Shards          map[string]ShardMetrics    `json:"shards,omitempty"`
}

// OperatorMetrics is one node's rates over the interval before a point.
// A fused chain of JS operators counts under its first operator's id.
type OperatorMetrics struct {
	InPerS       float64 `json:"in_per_s"`
	OutPerS      float64 `json:"out_per_s"`
	Backpressure float64 `json:"backpressure"`
	// StateBytes is the size of a stateful node's state at the point
	// (keys and values of all its tasks); null for a node without state.
	StateBytes *int64 `json:"state_bytes"`
}

// ShardMetrics is one source shard's rate and watermark lag.
type ShardMetrics struct {
	InPerS         float64 `json:"in_per_s"`
	WatermarkLagMs *int64  `json:"watermark_lag_ms"`
}

// MetricsHistory is a read of a job's history, oldest point first.
type MetricsHistory struct {
	IntervalMs int64          `json:"interval_ms"`
	Points     []MetricsPoint `json:"points"`
}

// metricsLog is a job's history and the counters of its last sample.
type metricsLog struct {
	mu     sync.Mutex
	points []MetricsPoint // ring
	next   int
	// last sample: its run, time and counters.
	run     *engine.Job
	at      time.Time
	ops     map[string][2]int64 // in, out
	shards  map[string]int64
	lastCkp time.Time
	// rates of the last point, for the jobs list.
	inPerS, outPerS float64
}

// sample adds a point for run rj (status st) at now.
func (l *metricsLog) sample(spec *Spec, rj *engine.Job, st engine.Status, cps []CheckpointInfo, stateBytes map[string]int64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.run != rj {
		// A new run: its counters start at 0, and so does the baseline.
		l.run, l.at, l.ops, l.shards = rj, st.Started, map[string][2]int64{}, map[string]int64{}
	}
	dt := now.Sub(l.at).Seconds()
	if dt <= 0 {
		return
	}
	p := MetricsPoint{Time: APITime(now.Truncate(time.Millisecond)), Operators: map[string]OperatorMetrics{}, Shards: map[string]ShardMetrics{}}
	if st.Watermark != engine.NoWatermark && st.Watermark < engine.EndOfTime {
		lag := now.UnixMilli() - st.Watermark
		p.WatermarkLagMs = &lag
	}
	for _, c := range cps {
		if c.Status == CheckpointFailed || !c.Time.After(l.lastCkp) {
			continue
		}
		d, size := c.DurationMS, c.Size
		p.CheckpointMs, p.CheckpointBytes = &d, &size
		l.lastCkp = c.Time
	}
	ops := map[string][2]int64{}
	l.inPerS, l.outPerS = 0, 0
	for _, o := range withBackpressure(spec, st) {
		prev := l.ops[o.ID]
		om := OperatorMetrics{InPerS: rate(o.In-prev[0], dt), OutPerS: rate(o.Out-prev[1], dt)}
		if o.Backpressure != nil {
			om.Backpressure = *o.Backpressure
		}
		if n, ok := stateBytes[o.ID]; ok {
			om.StateBytes = &n
		}
		p.Operators[o.ID] = om
		ops[o.ID] = [2]int64{o.In, o.Out}
		switch o.Kind {
		case "source":
			l.inPerS += om.OutPerS
		case "sink":
			if !isDeadLetterSink(spec, o.ID) {
				l.outPerS += om.InPerS
			}
		}
	}
	shards := map[string]int64{}
	for _, s := range st.Shards {
		sm := ShardMetrics{InPerS: rate(s.Records-l.shards[s.Shard], dt)}
		if s.Watermark != engine.NoWatermark && s.Watermark < engine.EndOfTime && s.State != engine.ShardIdle {
			lag := now.UnixMilli() - s.Watermark
			sm.WatermarkLagMs = &lag
		}
		p.Shards[s.Shard] = sm
		shards[s.Shard] = s.Records
	}
	l.at, l.ops, l.shards = now, ops, shards
	if len(l.points) < MetricsPoints {
		l.points = append(l.points, p)
		return
	}
	l.points[l.next] = p
	l.next = (l.next + 1) % MetricsPoints
}

func rate(n int64, dt float64) float64 { return float64(max(n, 0)) / dt }

func isDeadLetterSink(spec *Spec, id string) bool {
	for _, op := range spec.Operators {
		if op.OnError.Policy == OnErrorDeadLetter && op.ID+deadLetterSuffix == id {
			return true
		}
	}
	return false
}

// read returns the points oldest first; shards says whether to keep the
// per-shard breakdown.
func (l *metricsLog) read(shards bool) []MetricsPoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]MetricsPoint, 0, len(l.points))
	out = append(out, l.points[l.next:]...)
	out = append(out, l.points[:l.next]...)
	if !shards {
		for i := range out {
			out[i].Shards = nil
		}
	}
	return out
}

// rates are the job's input and output rates at the last point.
func (l *metricsLog) rates() (in, out float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inPerS, l.outPerS
}

// sampleJobs adds a point to every running job's history.
func (m *Manager) sampleJobs(now time.Time) {
	for _, j := range m.jobsByID() {
		j.mu.Lock()
		rj, stopped := j.mu.run, j.mu.stopped
		j.mu.Unlock()
		if rj == nil || stopped {
			continue
		}
		st := rj.Status()
		if st.State != engine.Running {
			continue
		}
		j.metrics.sample(j.Spec, rj, st, j.checkpoints(), j.stateBytes(), now)
	}
}

// sampleLoop samples the jobs every m.metricsEvery until Close.
func (m *Manager) sampleLoop() {
	defer close(m.sampling.done)
	t := time.NewTicker(m.metricsEvery)
	defer t.Stop()
	for {
		select {
		case <-m.sampling.stop:
			return
		case now := <-t.C:
			m.sampleJobs(now)
		}
	}
}

// Metrics reads a job's metrics history, oldest point first; shards adds
// each point's per-shard breakdown.
func (m *Manager) Metrics(id string, shards bool) (MetricsHistory, error) {
	j, err := m.job(id)
	if err != nil {
		return MetricsHistory{}, err
	}
	return MetricsHistory{IntervalMs: m.metricsEvery.Milliseconds(), Points: j.metrics.read(shards)}, nil
}
