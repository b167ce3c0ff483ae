package cluster

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/jobs"
)

// kinesisRig is what a worker test of a Kinesis job stands on: PostgreSQL
// for the shard leases, kfake (topic out, one partition) for the job's
// topics, and a Runnel server's Kinesis endpoint holding the streams.
type kinesisRig struct {
	pg       *testsrv.Postgres
	kf       *kfake.Cluster
	brokers  []string
	endpoint string
}

// startKinesisRig starts a kinesisRig whose endpoint holds streams
// (`--streams NAME:SHARDS,...`), with the AWS placeholder keys in the
// environment.
func startKinesisRig(t *testing.T, streams string) *kinesisRig {
	t.Helper()
	testsrv.AWSTestKeys(t)
	r := &kinesisRig{pg: testsrv.StartPostgres(t)}
	r.kf, r.brokers = kafkaCluster(t, 1, "out")
	r.endpoint = kinesisEndpoint(t, streams)
	return r
}

// windowJob parses a job named name that counts records per key r.k in
// one-second windows, from stream in of the rig's endpoint (polled every
// 100 ms) to topic out.
func (r *kinesisRig) windowJob(t *testing.T, name string) *jobs.Spec {
	t.Helper()
	return windowJobFrom(t, name, fmt.Sprintf("kinesis: {stream: in, endpoint: %q, region: us-east-1, poll_interval: 100ms}", r.endpoint), r.brokers)
}

// leasedShards returns the shards of stream in whose leases owner holds
// in group.
func leasedShards(ctx context.Context, db *pgxpool.Pool, group, owner string) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT shard FROM runnel_consumer_leases WHERE stream = 'in' AND group_name = $1 AND owner = $2`,
		group, owner)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// kinesisEndpoint runs a Runnel server (`runnel serve`, a process: the
// cluster's tests may not import the server's packages) holding the
// streams of spec (`--streams NAME:SHARDS,...`) and returns its Kinesis
// endpoint.
func kinesisEndpoint(t *testing.T, spec string) string {
	t.Helper()
	return testsrv.StartRunnel(t, "--streams", spec).URL
}
