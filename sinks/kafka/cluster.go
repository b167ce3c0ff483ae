package kafka

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/sinks"
)

// What `runnel worker` (package cluster) needs of a built sink: it
// produces the sink's records in its own transactions, encoded as the sink
// encodes them.

// Config returns the sink's configuration.
func (s *Sink) Config() Config { return s.cfg }

// Record encodes a row as the sink writes it: its topic, key (KeyField or
// the row's key) and JSON value.
func (s *Sink) Record(r sinks.Row) (*kgo.Record, error) { return s.record(s.rowOf(r)) }
