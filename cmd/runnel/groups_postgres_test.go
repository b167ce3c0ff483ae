package main

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/client/consumer"
	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"
)

// TestConsumerGroupPostgresKillReshard is TestConsumerGroupKillReshard
// with the leases in PostgreSQL (a real throwaway server) and the records
// read through the Kinesis API of a `runnel serve`, as against AWS: the
// workers run `runnel consume --kinesis-endpoint URL --leases-postgres
// DSN`, and the stale checkpoint goes through the same PostgreSQL lease
// store the workers use.
func TestConsumerGroupPostgresKillReshard(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, a server and workers")
	}
	pg := testsrv.StartPostgres(t)
	testsrv.AWSTestKeys(t)
	t.Setenv("AWS_REGION", "us-east-1")
	hc := &http.Client{Timeout: 30 * time.Second}
	base := testbin.Serve(t, t.TempDir(), "http", hc)
	ctx := context.Background()
	pool := pg.Pool(t)
	defer pool.Close()
	kc := consumer.Runnel(base, "s", "unused", "", consumergroups.Config{}).Kinesis
	var store consumer.LeaseStore
	runConsumerGroupKill(t, hc, base, leaseBackend{
		create: func() {
			var err error
			store, err = consumer.PostgresLeases(ctx, pool, kc, "s", "g",
				consumergroups.Config{LeaseDuration: killLeaseMS * time.Millisecond}, consumer.PostgresOptions{})
			if err != nil {
				t.Fatal(err)
			}
		},
		args: []string{"--kinesis-endpoint", base, "--leases-postgres", pg.DSN},
		describe: func() ([]groupLease, error) {
			rows, err := pool.Query(ctx, `SELECT shard, owner, epoch, sequence_number, sub_sequence_number
				FROM runnel_consumer_leases WHERE stream = 's' AND group_name = 'g' ORDER BY shard`)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []groupLease
			for rows.Next() {
				var l groupLease
				var epoch, sub int64
				if err := rows.Scan(&l.Shard, &l.Owner, &epoch, &l.Seq, &sub); err != nil {
					return nil, err
				}
				l.Epoch, l.Sub, l.Finished = uint64(epoch), uint64(sub), l.Seq == consumergroups.ShardEnd
				out = append(out, l)
			}
			return out, rows.Err()
		},
		staleCheckpoint: func(shard, worker string, epoch uint64) string {
			err := store.Checkpoint(ctx, shard, worker, epoch, consumergroups.Checkpoint{SequenceNumber: "99999999999999999999999999999999999999999999999999999999"})
			if !errors.Is(err, consumergroups.ErrLeaseLost) {
				return "got " + errString(err) + ", want ErrLeaseLost"
			}
			return ""
		},
	})
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
