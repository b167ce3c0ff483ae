package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testbin"
)

// runnel worker explains itself, and refuses what it cannot run with an
// error naming what and why, before contacting any broker.
func TestWorkerUsage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testbin.Runnel(t)
	dir := t.TempDir()
	streamJob := filepath.Join(dir, "stream.yaml")
	os.WriteFile(streamJob, []byte(`name: j
source: {stream: clicks}
operators: [{id: w, window: {key: "r => r.page", tumbling: 1s, aggregate: {n: count}}}]
sinks: [{id: out, input: w, log: {}}]
`), 0o644)
	otherBrokers := filepath.Join(dir, "other.yaml")
	os.WriteFile(otherBrokers, []byte(`name: j
source: {kafka: {brokers: ["127.0.0.1:1"], topics: [clicks]}}
operators: [{id: w, window: {key: "r => r.page", tumbling: 1s, aggregate: {n: count}}}]
sinks: [{id: out, input: w, kafka: {brokers: ["127.0.0.1:1"], topic: out}}]
`), 0o644)
	logSink := filepath.Join(dir, "log.yaml")
	os.WriteFile(logSink, []byte(`name: j
source: {kafka: {brokers: ["127.0.0.1:2"], topics: [clicks]}}
operators: [{id: w, window: {key: "r => r.page", tumbling: 1s, aggregate: {n: count}}}]
sinks: [{id: out, input: w, log: {}}]
`), 0o644)
	kinesisJob := filepath.Join(dir, "kinesis.yaml")
	os.WriteFile(kinesisJob, []byte(`name: j
source: {kinesis: {stream: clicks, endpoint: "http://127.0.0.1:1", region: us-east-1}}
operators: [{id: w, window: {key: "r => r.page", tumbling: 1s, aggregate: {n: count}}}]
sinks: [{id: out, input: w, kafka: {brokers: ["127.0.0.1:2"], topic: out}}]
`), 0o644)
	fanOut := filepath.Join(dir, "fanout.yaml")
	os.WriteFile(fanOut, []byte(`name: j
source: {kinesis: {stream: clicks, endpoint: "http://127.0.0.1:1", region: us-east-1, consumer: c}}
operators: [{id: w, window: {key: "r => r.page", tumbling: 1s, aggregate: {n: count}}}]
sinks: [{id: out, input: w, kafka: {brokers: ["127.0.0.1:2"], topic: out}}]
`), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"--help"}, 0, "--commit-interval"},
		{"no cluster", []string{"--job", streamJob}, 2, "--cluster kafka://"},
		{"no job", []string{"--cluster", "kafka://127.0.0.1:2"}, 2, "--job FILE"},
		{"not a kafka source", []string{"--cluster", "kafka://127.0.0.1:2", "--job", streamJob}, 1, "the source must be kafka"},
		{"brokers of another cluster", []string{"--cluster", "kafka://127.0.0.1:2", "--job", otherBrokers}, 1, "are not the cluster's"},
		{"a sink outside Kafka", []string{"--cluster", "kafka://127.0.0.1:2", "--job", logSink}, 1, "sink out: workers write to kafka, postgres and s3 sinks only"},
		{"help on sinks", []string{"--help"}, 0, "<job>.<sink>.outbox"},
		{"a snapshot store that is not s3", []string{"--cluster", "kafka://127.0.0.1:2", "--job", logSink, "--data", dir, "--snapshot", "http://b/x"}, 2, "give s3://BUCKET"},
		{"snapshots without local state", []string{"--cluster", "kafka://127.0.0.1:2", "--job", logSink, "--snapshot", "s3://b"}, 1, "give a data directory too"},
		{"help on leases", []string{"--help"}, 0, "--leases-postgres"},
		{"kinesis without a lease table", []string{"--cluster", "kafka://127.0.0.1:2", "--job", kinesisJob}, 1, "needs the PostgreSQL lease table (--leases-postgres DSN)"},
		{"kinesis with fan-out", []string{"--cluster", "kafka://127.0.0.1:2", "--job", fanOut, "--leases-postgres", "host=/nonexistent"}, 1, "enhanced fan-out) is not supported on workers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(bin, append([]string{"worker"}, tc.args...)...).CombinedOutput()
			code := exitCode(t, err)
			if code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %d (want %d), output without %q:\n%s", code, tc.code, tc.want, out)
			}
		})
	}
}
