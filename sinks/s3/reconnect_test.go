package s3

import (
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testsrv"
)

// TestCommitWaitsForServerRestart kills the S3 server before a checkpoint
// and starts it again (same port and directory) 4 s later, longer than
// the AWS SDK's default three attempts wait: the sink's own client (from
// Endpoint and the AWS default chain, as a job makes it) keeps trying,
// stages and publishes the epoch, once.
func TestCommitWaitsForServerRestart(t *testing.T) {
	srv := testsrv.StartS3(t, bucket)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg := testConfig(srv)
	cfg.Client, cfg.Endpoint, cfg.PathStyle = nil, srv.Endpoint, true
	j := newJob(t, cfg)
	if err := j.Open(); err != nil {
		t.Fatal(err)
	}
	defer j.Crash()
	if err := j.EpochErr(1, true, row(0, "a", 1)); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	started := make(chan struct{})
	go func() {
		defer close(started)
		time.Sleep(4 * time.Second) // the staging put finds the server down
		srv.Start()
	}()
	defer func() { <-started }() // before the test's cleanup kills it
	err := j.EpochErr(2, true, row(1000, "b", 2))
	if err != nil {
		t.Fatalf("checkpoint across a server restart: %v", err)
	}
	checkRecovered(t, srv, "a@0=1", "b@1000=2")
}
