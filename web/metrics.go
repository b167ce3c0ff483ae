package web

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/streams"
)

// collector exports stream and job figures at scrape time, read from the
// store and the job manager, so the hot paths carry no metric updates.
type collector struct {
	store *streams.Store
	jobs  *jobs.Manager

	shardRecords, shardTrim, shardOpen               *prometheus.Desc
	shardBytes, shardRead, shardIteratorAge          *prometheus.Desc
	opIn, opOut, opErrors, opSkipped, opDead, opLate *prometheus.Desc
	jobWatermarkLag, jobRunning                      *prometheus.Desc
	ckptDuration, ckptHeld, ckptSize                 *prometheus.Desc
	ckptEpoch, ckptAge, ckptFailed                   *prometheus.Desc
	jobWarnings, ckptSkipped                         *prometheus.Desc
	sinkStalled                                      *prometheus.Desc
	settleFailed                                     *prometheus.Desc
}

func newCollector(st *streams.Store, jm *jobs.Manager) *collector {
	shard := []string{"stream", "shard"}
	op := []string{"job", "operator", "kind"}
	return &collector{
		store: st, jobs: jm,
		shardRecords:     prometheus.NewDesc("runnel_shard_records_total", "Records appended to a shard since it was created (its last sequence counter).", shard, nil),
		shardTrim:        prometheus.NewDesc("runnel_shard_trim_position", "Position of the oldest record a shard keeps (retention).", shard, nil),
		shardBytes:       prometheus.NewDesc("runnel_shard_incoming_bytes_total", "Record bytes appended to a shard since the server started.", shard, nil),
		shardRead:        prometheus.NewDesc("runnel_shard_records_read_total", "Records returned by reads of a shard since the server started (REST, Kinesis, jobs).", shard, nil),
		shardIteratorAge: prometheus.NewDesc("runnel_shard_iterator_age_seconds", "How far behind the shard's newest record the latest read was (Kinesis GetRecords.IteratorAgeMilliseconds).", shard, nil),
		shardOpen:        prometheus.NewDesc("runnel_shard_open", "1 if the shard takes writes, 0 once resharded away.", shard, nil),
		opIn:             prometheus.NewDesc("runnel_operator_records_in_total", "Records into a job's source, operator or sink.", op, nil),
		opOut:            prometheus.NewDesc("runnel_operator_records_out_total", "Records out of a job's source or operator.", op, nil),
		opErrors:         prometheus.NewDesc("runnel_operator_errors_total", "Errors that failed a task.", op, nil),
		opSkipped:        prometheus.NewDesc("runnel_operator_skipped_total", "Records skipped on error (on_error: skip).", op, nil),
		opDead:           prometheus.NewDesc("runnel_operator_dead_lettered_total", "Records sent to a dead-letter stream (on_error: dead_letter), or a sink's rows sent to its error output.", op, nil),
		opLate:           prometheus.NewDesc("runnel_operator_late_records_total", "Records a window got after its allowed lateness.", op, nil),
		jobWatermarkLag:  prometheus.NewDesc("runnel_job_watermark_lag_seconds", "Wall clock minus the job's event-time watermark.", []string{"job"}, nil),
		jobRunning:       prometheus.NewDesc("runnel_job_running", "1 while the job runs.", []string{"job"}, nil),
		ckptDuration:     prometheus.NewDesc("runnel_job_checkpoint_duration_seconds", "How long the job's last complete checkpoint took, barrier to commit.", []string{"job"}, nil),
		ckptHeld:         prometheus.NewDesc("runnel_job_checkpoint_held_seconds", "How long the job's last checkpoint held its sources (the processing pause).", []string{"job"}, nil),
		ckptSize:         prometheus.NewDesc("runnel_job_checkpoint_size_bytes", "Size of the job's last complete checkpoint.", []string{"job"}, nil),
		ckptEpoch:        prometheus.NewDesc("runnel_job_checkpoint_epoch", "Epoch of the job's last complete checkpoint.", []string{"job"}, nil),
		ckptAge:          prometheus.NewDesc("runnel_job_checkpoint_age_seconds", "Time since the job's last complete checkpoint: what a crash now would replay.", []string{"job"}, nil),
		jobWarnings:      prometheus.NewDesc("runnel_job_warnings", "Problems the job runs on with or that keep it from starting (damaged or lost checkpoints, a damaged state file, records lost to retention, a stalled sink call, late records a window dropped); listed by the API.", []string{"job"}, nil),
		ckptSkipped:      prometheus.NewDesc("runnel_job_checkpoints_skipped", "Damaged checkpoints the job's last start passed over to restore an older one.", []string{"job"}, nil),
		ckptFailed:       prometheus.NewDesc("runnel_job_checkpoints_failed", "Checkpoints of the job that failed since it started (the last 20 are listed by the API).", []string{"job"}, nil),
		sinkStalled:      prometheus.NewDesc("runnel_sink_stalled_calls_total", "Calls of a sink to its target (database, brokers, object store) that waited 5 s or more for an answer, since the server started; one waiting now is listed in the job's warnings.", []string{"job", "sink", "kind"}, nil),
		settleFailed:     prometheus.NewDesc("runnel_job_settle_failures_total", "Deletes and replaces of a job that could not settle what its last run staged (a target did not answer), since the server started: that output was left staged or lost with the job's state; the log has an ERROR naming the job.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.shardRecords, c.shardTrim, c.shardOpen, c.shardBytes, c.shardRead, c.shardIteratorAge, c.opIn, c.opOut, c.opErrors, c.opSkipped, c.opDead, c.opLate, c.jobWatermarkLag, c.jobRunning,
		c.ckptDuration, c.ckptHeld, c.ckptSize, c.ckptEpoch, c.ckptAge, c.ckptFailed, c.jobWarnings, c.ckptSkipped, c.sinkStalled, c.settleFailed} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.store.ListStreams() {
		for _, sh := range s.Shards {
			ch <- prometheus.MustNewConstMetric(c.shardRecords, prometheus.CounterValue, float64(sh.LastSeq), s.Name, sh.ID)
			ch <- prometheus.MustNewConstMetric(c.shardTrim, prometheus.GaugeValue, float64(sh.TrimSeq), s.Name, sh.ID)
			ch <- prometheus.MustNewConstMetric(c.shardBytes, prometheus.CounterValue, float64(sh.BytesIn), s.Name, sh.ID)
			ch <- prometheus.MustNewConstMetric(c.shardRead, prometheus.CounterValue, float64(sh.RecordsRead), s.Name, sh.ID)
			ch <- prometheus.MustNewConstMetric(c.shardIteratorAge, prometheus.GaugeValue, float64(sh.MillisBehind)/1000, s.Name, sh.ID)
			open := 0.0
			if sh.Open {
				open = 1
			}
			ch <- prometheus.MustNewConstMetric(c.shardOpen, prometheus.GaugeValue, open, s.Name, sh.ID)
		}
	}
	for k, n := range sinks.StalledCalls() {
		ch <- prometheus.MustNewConstMetric(c.sinkStalled, prometheus.CounterValue, float64(n), k.Job, k.Sink, k.Kind)
	}
	if c.jobs == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.settleFailed, prometheus.CounterValue, float64(c.jobs.SettleFailures()))
	now := time.Now()
	for _, j := range c.jobs.List() {
		running := 0.0
		if j.State == string(engine.Running) {
			running = 1
		}
		ch <- prometheus.MustNewConstMetric(c.jobRunning, prometheus.GaugeValue, running, j.ID)
		ch <- prometheus.MustNewConstMetric(c.jobWarnings, prometheus.GaugeValue, float64(len(j.Warnings)), j.ID)
		ch <- prometheus.MustNewConstMetric(c.ckptSkipped, prometheus.GaugeValue, float64(j.CheckpointsSkipped), j.ID)
		if j.Watermark != nil && *j.Watermark < engine.EndOfTime {
			lag := now.Sub(time.UnixMilli(*j.Watermark)).Seconds()
			ch <- prometheus.MustNewConstMetric(c.jobWatermarkLag, prometheus.GaugeValue, lag, j.ID)
		}
		c.collectCheckpoints(ch, j.ID, now)
		for _, o := range j.Operators {
			l := []string{j.ID, o.ID, o.Kind}
			ch <- prometheus.MustNewConstMetric(c.opIn, prometheus.CounterValue, float64(o.In), l...)
			ch <- prometheus.MustNewConstMetric(c.opOut, prometheus.CounterValue, float64(o.Out), l...)
			ch <- prometheus.MustNewConstMetric(c.opErrors, prometheus.CounterValue, float64(o.Errors), l...)
			ch <- prometheus.MustNewConstMetric(c.opSkipped, prometheus.CounterValue, float64(o.Skipped), l...)
			ch <- prometheus.MustNewConstMetric(c.opDead, prometheus.CounterValue, float64(o.DeadLettered), l...)
			ch <- prometheus.MustNewConstMetric(c.opLate, prometheus.CounterValue, float64(o.Late), l...)
		}
	}
}

func (c *collector) collectCheckpoints(ch chan<- prometheus.Metric, job string, now time.Time) {
	cps, err := c.jobs.Checkpoints(job)
	if err != nil || len(cps) == 0 {
		return
	}
	failed := 0
	var last *jobs.CheckpointInfo
	for i := range cps {
		if cps[i].Status == jobs.CheckpointFailed {
			failed++
		} else {
			last = &cps[i]
		}
	}
	ch <- prometheus.MustNewConstMetric(c.ckptFailed, prometheus.GaugeValue, float64(failed), job)
	if last == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.ckptDuration, prometheus.GaugeValue, last.DurationMS/1000, job)
	if last.HeldMS != nil {
		ch <- prometheus.MustNewConstMetric(c.ckptHeld, prometheus.GaugeValue, *last.HeldMS/1000, job)
	}
	ch <- prometheus.MustNewConstMetric(c.ckptSize, prometheus.GaugeValue, float64(last.Size), job)
	ch <- prometheus.MustNewConstMetric(c.ckptEpoch, prometheus.GaugeValue, float64(last.Epoch), job)
	ch <- prometheus.MustNewConstMetric(c.ckptAge, prometheus.GaugeValue, now.Sub(last.Time).Seconds(), job)
}
