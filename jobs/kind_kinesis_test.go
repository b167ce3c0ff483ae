package jobs

import (
	"reflect"
	"strings"
	"testing"
)

func init() {
	extStructs["source.kinesis"] = reflect.TypeOf(KinesisSource{})
	extStructs["sinks[].kinesis"] = reflect.TypeOf(KinesisSink{})
	everyField = append(everyField, "testdata/every-field-kinesis.yaml", "testdata/every-field-kinesis-registry.yaml",
		"testdata/every-field-kafka-protobuf.yaml", "testdata/every-field-kafka-registry.yaml", "testdata/every-field-kinesis-csv.yaml",
		"testdata/every-field-kinesis-avro.yaml")
}

// TestKinesisAndDecodeProblems: bad kinesis and decode settings are
// refused at submit, naming the field.
func TestKinesisAndDecodeProblems(t *testing.T) {
	for _, c := range []struct{ yaml, field string }{
		{`source: {kinesis: {region: eu-west-1}}`, "source.kinesis.stream"},
		{`source: {kinesis: {stream: s, start: yesterday}}`, "source.kinesis"},
		{`source: {kinesis: {stream: s, start: at_sequence_number}}`, "source.kinesis"},
		{`source: {kinesis: {stream: s, sequence_numbers: [x]}}`, "source.kinesis"},
		{`source: {kinesis: {stream: s, endpoint: "localhost:7070"}}`, "source.kinesis"},
		{`source: {kinesis: {stream: s}, format: avro}`, "source.kinesis.decode"},
		{`source: {kinesis: {stream: s, decode: {csv: {columns: [a, a]}}}, format: csv}`, "source.kinesis.decode"},
		{`source: {kafka: {brokers: b:9092, topics: t, decode: {avro: {schema: "{"}}}, format: avro}`, "source.kafka.decode"},
		{`source: {kafka: {brokers: b:9092, topics: t, decode: {registry: {url: "ftp://r"}}}, format: avro}`, "source.kafka.decode"},
		{`source: {stream: s, format: avro}`, "source.format"},
		{`source: {stream: s}
sinks: [{id: o, kinesis: {region: eu-west-1}}]`, "sinks[0].kinesis"},
	} {
		src := "name: j\n" + c.yaml + "\n"
		if !strings.Contains(src, "sinks:") {
			src += "sinks: [{id: o, log: {}}]\n"
		}
		_, err := Parse([]byte(src))
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s\n: error %v, want one naming %s", c.yaml, err, c.field)
		}
	}
}
