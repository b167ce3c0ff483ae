package consumer

import "github.com/prometheus/client_golang/prometheus"

// metrics are a worker's figures, registered with Options.Registerer when
// it is set.
type metrics struct {
	records, batches, checkpoints prometheus.Counter
	handlerErrors, readErrors     prometheus.Counter
	syncErrors, lost, damaged     prometheus.Counter
	leases                        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "runnel_consumer_" + name, Help: help})
	}
	m := &metrics{
		records:       c("records_total", "User records handed to the handler and acknowledged by it."),
		batches:       c("batches_total", "Batches the handler returned nil for."),
		checkpoints:   c("checkpoints_total", "Checkpoints stored (SHARD_END included)."),
		handlerErrors: c("handler_errors_total", "Batches the handler failed (handed again after a backoff)."),
		readErrors:    c("read_errors_total", "Reads (GetRecords, GetShardIterator) that failed."),
		syncErrors:    c("sync_errors_total", "Syncs with the lease store that failed (retried)."),
		lost:          c("leases_lost_total", "Checkpoints refused because the lease was taken over; the shard was stopped."),
		damaged:       c("damaged_aggregated_records_total", "KPL aggregated records with a valid digest but a damaged body, handed whole."),
		leases:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "runnel_consumer_leases", Help: "Leases this worker holds."}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.batches, m.checkpoints, m.handlerErrors, m.readErrors, m.syncErrors, m.lost, m.damaged, m.leases)
	}
	return m
}
