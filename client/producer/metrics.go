package producer

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are a producer's Prometheus metrics, labelled with the stream.
// It is a prometheus.Collector.
type Metrics struct {
	recordsSent    prometheus.Counter
	bytesSent      prometheus.Counter
	kinesisRecords prometheus.Counter
	requests       prometheus.Counter
	callsFailed    prometheus.Counter
	retries        prometheus.Counter
	failed         prometheus.Counter
	listErrors     prometheus.Counter
	inFlight       prometheus.Gauge
	buffered       prometheus.GaugeFunc
	bufferedBytes  prometheus.GaugeFunc
}

func newMetrics(stream string, p *Producer) *Metrics {
	l := prometheus.Labels{"stream": stream}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_producer_" + name, Help: help, ConstLabels: l})
	}
	g := func(name, help string, f func() float64) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "runnel_producer_" + name, Help: help, ConstLabels: l}, f)
	}
	return &Metrics{
		recordsSent:    c("records_sent_total", "User records acknowledged by the stream."),
		bytesSent:      c("bytes_sent_total", "Data bytes of the user records acknowledged."),
		kinesisRecords: c("kinesis_records_sent_total", "Kinesis records acknowledged (an aggregated record counts once)."),
		requests:       c("requests_total", "PutRecords calls made."),
		callsFailed:    c("requests_failed_total", "PutRecords calls that failed as a whole, with no answer per record (network error, timeout, an error answer): the stream may have written some of their records, which are sent again, so it may hold them twice."),
		retries:        c("retries_total", "User records sent again after a failed attempt."),
		failed:         c("records_failed_total", "User records reported failed (time to live or attempts ran out, or refused for good)."),
		listErrors:     c("list_shards_errors_total", "Failed ListShards calls after a misrouted record."),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "runnel_producer_records_in_flight",
			Help: "User records in PutRecords calls now.", ConstLabels: l}),
		buffered: g("buffered_records", "User records accepted and not yet reported.", func() float64 {
			p.mu.Lock()
			defer p.mu.Unlock()
			return float64(p.mu.buffered)
		}),
		bufferedBytes: g("buffered_bytes", "Bytes (data plus key) of the buffered records.", func() float64 {
			p.mu.Lock()
			defer p.mu.Unlock()
			return float64(p.mu.bytes)
		}),
	}
}

func (m *Metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.recordsSent, m.bytesSent, m.kinesisRecords, m.requests, m.callsFailed, m.retries,
		m.failed, m.listErrors, m.inFlight, m.buffered, m.bufferedBytes}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
}

// Snapshot is a point-in-time copy of the counters, for tools and tests.
type Snapshot struct {
	RecordsSent, BytesSent, KinesisRecords, Requests, FailedRequests, Retries, Failed float64
}

// Snapshot reads the counters.
func (m *Metrics) Snapshot() Snapshot {
	return Snapshot{RecordsSent: value(m.recordsSent), BytesSent: value(m.bytesSent),
		KinesisRecords: value(m.kinesisRecords), Requests: value(m.requests), FailedRequests: value(m.callsFailed),
		Retries: value(m.retries), Failed: value(m.failed)}
}

func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
