package cluster

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Metrics are a process's worker figures for Prometheus, labelled by job
// (and stage or partition): one Metrics serves every worker of the
// process. A nil *Metrics counts nothing.
type Metrics struct {
	tasks       *prometheus.GaugeVec
	recordsIn   *prometheus.CounterVec
	recordsOut  *prometheus.CounterVec
	txns        *prometheus.CounterVec
	commitTime  *prometheus.HistogramVec
	rebalances  *prometheus.CounterVec
	restoreRecs *prometheus.CounterVec
	restoreTime *prometheus.HistogramVec
	failures    *prometheus.CounterVec
	watermark   *prometheus.GaugeVec
	lag         *prometheus.Desc

	mu struct {
		sync.Mutex
		workers map[*Worker]bool
	}
}

// NewMetrics makes the metrics; register them with a prometheus.Registerer.
func NewMetrics() *Metrics {
	m := &Metrics{
		tasks: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runnel_worker_tasks",
			Help: "Tasks (stage, partition) this worker owns, by job and stage."}, []string{"job", "stage"}),
		recordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_worker_records_in_total",
			Help: "Records this worker's tasks read from their input partitions (watermark records aside), by job and stage."}, []string{"job", "stage"}),
		recordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_worker_records_out_total",
			Help: "Records this worker's tasks wrote to repartition and sink topics, by job and stage (aborted transactions' included)."}, []string{"job", "stage"}),
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_worker_transactions_total",
			Help: "Transactions this worker ended, by job and result (commit or abort)."}, []string{"job", "result"}),
		commitTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "runnel_worker_commit_seconds",
			Help: "Time to end a transaction (commit or abort, offsets included), by job.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, []string{"job"}),
		rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_worker_rebalances_total",
			Help: "Group generations this worker joined (rebalances it took part in), by job."}, []string{"job"}),
		restoreRecs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_worker_restore_records_total",
			Help: "Changelog records this worker read to restore tasks, by job."}, []string{"job"}),
		restoreTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "runnel_worker_restore_seconds",
			Help: "Time to restore one task from its changelog, by job.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"job"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_worker_failures_total",
			Help: "Failures this worker survived, by job and kind (snapshot_upload, snapshot_restore, changelog_lost, local_state, kinesis_checkpoint, outbox_delivery, outbox_lost): each is also an ERROR log and shown in the job's cluster view."}, []string{"job", "kind"}),
		watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runnel_worker_watermark_seconds",
			Help: "The event-time watermark each task this worker owns last passed on (first stage: its input partition's; later stages: the minimum over the tasks feeding them), in seconds since the epoch (+Inf: all input finished), by job, stage, topic and partition. A task whose watermark stands still while its input goes on is the one holding windows open."},
			[]string{"job", "stage", "topic", "partition"}),
		lag: prometheus.NewDesc("runnel_worker_partition_lag",
			"Records of a job's input partition not yet committed by its group (end offset - committed offset), for the partitions this worker owns.",
			[]string{"job", "topic", "partition", "stage"}, nil),
	}
	m.mu.workers = map[*Worker]bool{}
	return m
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.tasks, m.recordsIn, m.recordsOut, m.txns, m.commitTime, m.rebalances, m.restoreRecs, m.restoreTime, m.failures, m.watermark}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
	ch <- m.lag
}

// lagTimeout bounds the Kafka requests a scrape makes for the lag.
const lagTimeout = 5 * time.Second

// Collect implements prometheus.Collector. The lag is asked of Kafka at
// each scrape (the group's committed offsets and the partitions' ends).
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
	m.mu.Lock()
	workers := make([]*Worker, 0, len(m.mu.workers))
	for w := range m.mu.workers {
		workers = append(workers, w)
	}
	m.mu.Unlock()
	for _, w := range workers {
		ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
		st, err := w.Status(ctx)
		cancel()
		if err != nil {
			w.cfg.Log.Error("worker metrics: cannot read the group's lag", "job", w.cfg.Spec.Name, "err", err)
			continue
		}
		for _, p := range st.Partitions {
			if p.Worker != w.cfg.ID || p.Lag < 0 {
				continue
			}
			ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, float64(p.Lag),
				w.cfg.Spec.Name, p.Topic, itoa(p.Partition), itoa(int32(p.Stage)))
		}
	}
}

func (m *Metrics) add(w *Worker) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.workers[w] = true
	for _, k := range failureKinds {
		m.failures.WithLabelValues(w.cfg.Spec.Name, k)
	}
}

func (m *Metrics) remove(w *Worker) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.mu.workers, w)
	m.mu.Unlock()
	for i := range w.plan.Stages {
		m.tasks.DeleteLabelValues(w.cfg.Spec.Name, itoa(int32(i)))
	}
	m.watermark.DeletePartialMatch(prometheus.Labels{"job": w.cfg.Spec.Name})
}

// taskWatermark shows the watermark task t last passed on.
func (m *Metrics) taskWatermark(job string, t *task) {
	if m == nil || t.sent == NoWatermark {
		return
	}
	v := float64(t.sent) / 1e3
	if t.sent == EndOfTime {
		v = math.Inf(1)
	}
	m.watermark.WithLabelValues(job, itoa(int32(t.stage.Index)), t.id.topic, itoa(t.id.partition)).Set(v)
}

// dropTask stops showing the watermark of a task the worker closed.
func (m *Metrics) dropTask(job string, t *task) {
	if m != nil && t.stage != nil {
		m.watermark.DeleteLabelValues(job, itoa(int32(t.stage.Index)), t.id.topic, itoa(t.id.partition))
	}
}

func (m *Metrics) in(job string, stage, n int) {
	if m != nil && n > 0 {
		m.recordsIn.WithLabelValues(job, itoa(int32(stage))).Add(float64(n))
	}
}

func (m *Metrics) out(job string, stage, n int) {
	if m != nil && n > 0 {
		m.recordsOut.WithLabelValues(job, itoa(int32(stage))).Add(float64(n))
	}
}

func (m *Metrics) ended(job string, committed bool, took time.Duration) {
	if m == nil {
		return
	}
	result := "commit"
	if !committed {
		result = "abort"
	}
	m.txns.WithLabelValues(job, result).Inc()
	m.commitTime.WithLabelValues(job).Observe(took.Seconds())
}

func (m *Metrics) rebalanced(job string) {
	if m != nil {
		m.rebalances.WithLabelValues(job).Inc()
	}
}

func (m *Metrics) restored(job string, records int, took time.Duration) {
	if m == nil {
		return
	}
	m.restoreRecs.WithLabelValues(job).Add(float64(records))
	m.restoreTime.WithLabelValues(job).Observe(took.Seconds())
}

// owned sets the tasks gauge from the partitions the group assigned to
// the worker, by stage.
func (m *Metrics) owned(w *Worker) {
	if m == nil {
		return
	}
	counts := make([]int, len(w.plan.Stages))
	w.mu.Lock()
	for id := range w.mu.assigned {
		if s := w.stageOfTopic(id.topic); s >= 0 {
			counts[s]++
		}
	}
	w.mu.Unlock()
	for i, n := range counts {
		m.tasks.WithLabelValues(w.cfg.Spec.Name, itoa(int32(i))).Set(float64(n))
	}
}

// countData counts the records that are not watermark records.
func countData(recs []*kgo.Record) int {
	n := 0
	for _, r := range recs {
		if _, ok := header(r, hdrWatermark); !ok {
			n++
		}
	}
	return n
}

func (m *Metrics) failed(job, kind string) {
	if m != nil {
		m.failures.WithLabelValues(job, kind).Inc()
	}
}
