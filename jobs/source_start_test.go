package jobs

import (
	"testing"
	"time"

	kafkasrc "github.com/runnel-dev/runnel/sources/kafka"
	kinesissrc "github.com/runnel-dev/runnel/sources/kinesis"
)

// TestConnectorSourceStart: a Kafka or Kinesis source's start is a named
// position as it is, or an RFC 3339 time as an at-timestamp start, and
// anything else is refused with the positions the source knows.
func TestConnectorSourceStart(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 500_000_000, time.UTC)
	for _, c := range []struct {
		kafka     bool
		start     string
		wantStart string
		wantTime  time.Time
		wantErr   string
	}{
		{kafka: true, start: "", wantStart: ""},
		{kafka: true, start: "earliest", wantStart: "earliest"},
		{kafka: true, start: "2026-12-06T10:00:00.5Z", wantStart: kafkasrc.StartAtTimestamp, wantTime: at},
		{kafka: true, start: "trim_horizon", wantErr: `start "trim_horizon": use earliest, latest or an RFC 3339 time`},
		{start: "latest", wantStart: "latest"},
		{start: "trim_horizon", wantStart: "trim_horizon"},
		{start: "2026-12-06T10:00:00.5Z", wantStart: kinesissrc.StartAtTimestamp, wantTime: at},
		{start: "earliest", wantErr: `start "earliest": use trim_horizon, latest, at_sequence_number, after_sequence_number or an RFC 3339 time`},
	} {
		var start string
		var ts time.Time
		var err error
		if c.kafka {
			var kc kafkasrc.Config
			kc, err = kafkaSourceConfig(&Source{Kafka: &KafkaSource{Brokers: []string{"127.0.0.1:9092"}, Topics: []string{"t"}, Start: c.start}})
			start, ts = kc.Start, kc.Timestamp
		} else {
			var kc kinesissrc.Config
			kc, err = kinesisSourceConfig(&KinesisSource{Stream: "s", Start: c.start}, "")
			start, ts = kc.Start, kc.Timestamp
		}
		if c.wantErr != "" {
			if err == nil || err.Error() != c.wantErr {
				t.Errorf("kafka %v start %q: error %v, want %q", c.kafka, c.start, err, c.wantErr)
			}
			continue
		}
		if err != nil || start != c.wantStart || !ts.Equal(c.wantTime) {
			t.Errorf("kafka %v start %q: %q %v %v, want %q %v", c.kafka, c.start, start, ts, err, c.wantStart, c.wantTime)
		}
	}
}
