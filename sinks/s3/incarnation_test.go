package s3

import (
	"testing"

	"github.com/runnel-dev/runnel/internal/testsrv"
)

// A fresh start of a job under a used name and sink id counts its epochs
// from 1 again: its objects get names of their own (a new RUN), so they
// neither replace the earlier run's objects nor are taken for them, and
// every row of both runs is published once.
func TestFreshStartIsNotSkipped(t *testing.T) {
	srv := testsrv.StartS3(t, bucket)
	old := newJob(t, testConfig(srv))
	old.Start()
	old.Epoch(1, true, row(0, "old", 1))
	old.Epoch(2, true, row(1000, "old", 2))
	old.Crash()
	fresh := newJob(t, testConfig(srv))
	fresh.Start()
	fresh.Epoch(1, true, row(0, "new", 1))
	fresh.Epoch(2, true, row(1000, "new", 2))
	fresh.Crash()
	fresh.Start() // restored: epoch 2, staged again, is recognised as published
	fresh.Crash()
	checkRecovered(t, srv, "new@0=1", "new@1000=2", "old@0=1", "old@1000=2")
}
