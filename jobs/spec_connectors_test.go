package jobs

import (
	"strings"
	"testing"
)

func init() {
	everyField = append(everyField, "testdata/every-field-kafka.yaml", "testdata/every-field-kafka-regex.yaml")
}

// Connector settings are checked at validation, with the field's line.
func TestConnectorValidation(t *testing.T) {
	for _, c := range []struct{ src, field, msg string }{
		{"name: j\nsource:\n  kafka: {brokers: [b:9092]}\nsinks: [{id: o, log: {}}]\n", "source.kafka", "exactly one of topics or topic_regex"},
		{"name: j\nsource:\n  kafka: {brokers: [b:9092], topics: t, start: yesterday}\nsinks: [{id: o, log: {}}]\n", "source.kafka", "start"},
		{"name: j\nsource:\n  kafka: {brokers: [b:9092], topics: t, sasl: {mechanism: PLAIN, username: u}}\nsinks: [{id: o, log: {}}]\n", "source.kafka", "password_env"},
		{"name: j\nsource: {stream: s}\nsinks:\n  - id: o\n    postgres: {dsn: \"postgres://u:pw@h/db\", table: t}\n", "sinks[0].postgres", "password"},
		{"name: j\nsource: {stream: s}\nsinks:\n  - id: o\n    kafka: {brokers: b:9092}\n", "sinks[0].kafka", "topic"},
		{"name: j\nsource: {stream: s}\nsinks:\n  - id: o\n    postgres: {dsn: \"host=h\", table: t}\n    log: {}\n", "sinks[0].postgres", "one kind"},
	} {
		_, err := Parse([]byte(c.src))
		if err == nil {
			t.Errorf("%q parsed", c.src)
			continue
		}
		if !strings.Contains(err.Error(), c.field) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %v; want a problem at %s saying %q", c.src, err, c.field, c.msg)
		}
	}
}
