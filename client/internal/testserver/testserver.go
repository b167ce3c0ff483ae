// Package testserver starts the real runnel binary for the client
// packages' tests and reads streams back through the Kinesis API. It is
// imported by tests only.
package testserver

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"
)

// Binary builds cmd/runnel once per test binary and returns its path.
func Binary(t testing.TB) string { return testbin.Runnel(t) }

// Server is a `runnel serve` process on a loopback port.
type Server struct{ *testbin.Server }

// Start runs `runnel serve` on a fresh data directory with extra flags
// (such as --shard-limits) and waits until it is healthy; the test's
// cleanup kills it.
func Start(t testing.TB, flags ...string) *Server {
	t.Helper()
	return &Server{testbin.Start(t, testbin.Options{Flags: flags})}
}

// Client returns an AWS SDK Kinesis client for the server.
func (s *Server) Client() *kinesis.Client { return testsrv.KinesisClient(s.URL) }

// Record is one Kinesis record read back.
type Record = testsrv.KinesisRecord

// ReadAll reads every record of every shard of stream (closed ones
// included) from the trim horizon to the shard's current end, shard by
// shard in order of shard id (testsrv.ReadKinesis).
func (s *Server) ReadAll(t testing.TB, stream string) []Record {
	t.Helper()
	return testsrv.ReadKinesis(t, s.Client(), stream)
}
