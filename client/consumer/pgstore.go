package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/internal/backoff"
	"github.com/runnel-dev/runnel/internal/kinesisconn"
)

// pgStore keeps a group's leases in PostgreSQL, for Kinesis endpoints
// that have no consumer-groups API (AWS). The protocol is package
// consumergroups' with the database's clock:
//
//   - Sync takes a transaction-scoped advisory lock on the group (Syncs of
//     one group run one at a time), reads the database's now(), locks the
//     group's lease rows (SELECT ... FOR UPDATE), applies
//     consumergroups.Sync to them and the live workers' rows, and writes
//     back the rows it changed.
//   - Checkpoint and Release are one UPDATE each whose WHERE names the
//     worker and the epoch: a stale worker's write matches no row and is
//     refused. A Sync that takes a lease over holds the row's lock until it
//     commits, so a checkpoint racing it waits and then sees the new epoch.
type pgStore struct {
	pool          *pgxpool.Pool
	api           KinesisAPI
	stream, group string
	cfg           consumergroups.Config
	leases        string // table names
	workers       string
}

// PostgresOptions name the tables of PostgresLeases.
type PostgresOptions struct {
	// TablePrefix starts the two tables' names: PREFIXleases and
	// PREFIXworkers. Default "runnel_consumer_".
	TablePrefix string
}

// PostgresLeases returns a lease store for group on stream in the
// PostgreSQL database of pool, creating its tables when missing. api lists
// the stream's shards at each Sync. cfg gives the group's lease duration
// and start (its Stream and Name are ignored).
func PostgresLeases(ctx context.Context, pool *pgxpool.Pool, api KinesisAPI, stream, group string, cfg consumergroups.Config, o PostgresOptions) (LeaseStore, error) {
	cfg.Stream, cfg.Name = stream, group
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	if o.TablePrefix == "" {
		o.TablePrefix = "runnel_consumer_"
	}
	s := &pgStore{pool: pool, api: api, stream: stream, group: group, cfg: cfg,
		leases: pgx.Identifier{o.TablePrefix + "leases"}.Sanitize(), workers: pgx.Identifier{o.TablePrefix + "workers"}.Sanitize()}
	_, err := pool.Exec(ctx, `
CREATE TABLE IF NOT EXISTS `+s.leases+` (
	stream text NOT NULL, group_name text NOT NULL, shard text NOT NULL,
	parent text NOT NULL DEFAULT '', adjacent_parent text NOT NULL DEFAULT '',
	hash_key_start text NOT NULL, hash_key_end text NOT NULL,
	owner text NOT NULL DEFAULT '', expires_at timestamptz,
	epoch bigint NOT NULL DEFAULT 0,
	sequence_number text NOT NULL DEFAULT '', sub_sequence_number bigint NOT NULL DEFAULT 0,
	release_requested boolean NOT NULL DEFAULT false,
	PRIMARY KEY (stream, group_name, shard));
CREATE TABLE IF NOT EXISTS `+s.workers+` (
	stream text NOT NULL, group_name text NOT NULL, worker text NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (stream, group_name, worker))`)
	if err != nil {
		return nil, fmt.Errorf("consumer: create lease tables: %w", err)
	}
	return s, nil
}

// shards lists the stream's shards (closed ones still in retention too).
func (s *pgStore) shards(ctx context.Context) ([]consumergroups.Shard, error) {
	var out []consumergroups.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(s.stream)}
	var b backoff.Backoff
	for {
		res, err := s.api.ListShards(ctx, in)
		if err != nil {
			if ctx.Err() == nil && kinesisconn.Retryable(err) && b.Failures() < 5 {
				backoff.Sleep(ctx, b.Next())
				continue
			}
			return nil, fmt.Errorf("list shards of %s: %w", s.stream, err)
		}
		for _, sh := range res.Shards {
			out = append(out, consumergroups.Shard{ID: aws.ToString(sh.ShardId), Parent: aws.ToString(sh.ParentShardId),
				AdjacentParent: aws.ToString(sh.AdjacentParentShardId),
				HashKeyStart:   aws.ToString(sh.HashKeyRange.StartingHashKey), HashKeyEnd: aws.ToString(sh.HashKeyRange.EndingHashKey)})
		}
		if res.NextToken == nil {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
}

func (s *pgStore) Sync(ctx context.Context, worker string) (SyncResult, error) {
	shards, err := s.shards(ctx)
	if err != nil {
		return SyncResult{}, err
	}
	var mine []consumergroups.Lease
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var now time.Time
		if err := tx.QueryRow(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), now()`,
			s.leases+"/"+s.stream+"/"+s.group).Scan(nil, &now); err != nil {
			return err
		}
		st, err := s.load(ctx, tx)
		if err != nil {
			return err
		}
		var ch consumergroups.Changes
		mine, ch = consumergroups.Sync(st, shards, worker, now, s.cfg.LeaseDuration)
		return s.write(ctx, tx, st, ch, worker, now)
	})
	if err != nil {
		return SyncResult{}, fmt.Errorf("sync consumer group %s: %w", s.group, err)
	}
	return SyncResult{LeaseDuration: s.cfg.LeaseDuration, Start: s.cfg.Start, Leases: mine}, nil
}

// load reads the group's leases (locking them) and live workers.
func (s *pgStore) load(ctx context.Context, tx pgx.Tx) (*consumergroups.State, error) {
	st := consumergroups.NewState()
	rows, err := tx.Query(ctx, `SELECT shard, parent, adjacent_parent, hash_key_start, hash_key_end, owner, expires_at,
		epoch, sequence_number, sub_sequence_number, release_requested
		FROM `+s.leases+` WHERE stream = $1 AND group_name = $2 FOR UPDATE`, s.stream, s.group)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var l consumergroups.Lease
		var exp *time.Time
		var epoch, sub int64
		if err := rows.Scan(&l.Shard, &l.Parent, &l.AdjacentParent, &l.HashKeyStart, &l.HashKeyEnd, &l.Owner, &exp,
			&epoch, &l.Checkpoint.SequenceNumber, &sub, &l.ReleaseRequested); err != nil {
			rows.Close()
			return nil, err
		}
		l.Epoch, l.Checkpoint.SubSequenceNumber = uint64(epoch), uint64(sub)
		if exp != nil {
			l.Expires = *exp
		}
		st.Leases[l.Shard] = &l
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT worker, expires_at FROM `+s.workers+` WHERE stream = $1 AND group_name = $2`, s.stream, s.group)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var w string
		var exp time.Time
		if err := rows.Scan(&w, &exp); err != nil {
			rows.Close()
			return nil, err
		}
		st.Workers[w] = exp
	}
	return st, rows.Err()
}

// write stores what Sync changed: new and changed leases, the syncing
// worker's renewed leases and registration, and drops expired workers and
// unlisted shards.
func (s *pgStore) write(ctx context.Context, tx pgx.Tx, st *consumergroups.State, ch consumergroups.Changes, worker string, now time.Time) error {
	b := &pgx.Batch{}
	for _, id := range ch.Deleted {
		b.Queue(`DELETE FROM `+s.leases+` WHERE stream = $1 AND group_name = $2 AND shard = $3`, s.stream, s.group, id)
	}
	write := slices.Clone(ch.Updated)
	for id, l := range st.Leases {
		if l.Owner == worker && !slices.Contains(write, id) {
			write = append(write, id)
		}
	}
	for _, id := range write {
		l := st.Leases[id]
		var exp *time.Time
		if !l.Expires.IsZero() {
			exp = &l.Expires
		}
		b.Queue(`INSERT INTO `+s.leases+` (stream, group_name, shard, parent, adjacent_parent, hash_key_start, hash_key_end,
			owner, expires_at, epoch, sequence_number, sub_sequence_number, release_requested)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			ON CONFLICT (stream, group_name, shard) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
			epoch = EXCLUDED.epoch, sequence_number = EXCLUDED.sequence_number,
			sub_sequence_number = EXCLUDED.sub_sequence_number, release_requested = EXCLUDED.release_requested`,
			s.stream, s.group, l.Shard, l.Parent, l.AdjacentParent, l.HashKeyStart, l.HashKeyEnd,
			l.Owner, exp, int64(l.Epoch), l.Checkpoint.SequenceNumber, int64(l.Checkpoint.SubSequenceNumber), l.ReleaseRequested)
	}
	b.Queue(`INSERT INTO `+s.workers+` (stream, group_name, worker, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (stream, group_name, worker) DO UPDATE SET expires_at = EXCLUDED.expires_at`,
		s.stream, s.group, worker, st.Workers[worker])
	b.Queue(`DELETE FROM `+s.workers+` WHERE stream = $1 AND group_name = $2 AND expires_at <= $3`, s.stream, s.group, now)
	return tx.SendBatch(ctx, b).Close()
}

// fenced runs an UPDATE whose WHERE names the worker and epoch (args $1
// stream, $2 group, $3 shard, $4 worker, $5 epoch) and turns "no row" into
// ErrLeaseLost or ErrNotFound.
func (s *pgStore) fenced(ctx context.Context, sql, shard, worker string, epoch uint64, args ...any) error {
	tag, err := s.pool.Exec(ctx, sql, append([]any{s.stream, s.group, shard, worker, int64(epoch)}, args...)...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var owner string
	var now int64
	err = s.pool.QueryRow(ctx, `SELECT owner, epoch FROM `+s.leases+` WHERE stream = $1 AND group_name = $2 AND shard = $3`,
		s.stream, s.group, shard).Scan(&owner, &now)
	if errors.Is(err, pgx.ErrNoRows) {
		return &consumergroups.Error{Field: "shard", Err: consumergroups.ErrNotFound, Msg: fmt.Sprintf("the group has no lease for shard %q", shard)}
	}
	if err != nil {
		return err
	}
	if owner == "" {
		owner = "no one"
	}
	return &consumergroups.Error{Field: "epoch", Err: consumergroups.ErrLeaseLost, Msg: fmt.Sprintf(
		"shard %s: worker %q at epoch %d does not hold the lease (it is held by %s at epoch %d): stop reading the shard", shard, worker, epoch, owner, now)}
}

func (s *pgStore) Checkpoint(ctx context.Context, shard, worker string, epoch uint64, cp consumergroups.Checkpoint) error {
	if err := cp.Validate(); err != nil {
		return err
	}
	return s.fenced(ctx, `UPDATE `+s.leases+` SET sequence_number = $6, sub_sequence_number = $7,
		owner = CASE WHEN $6 = '`+consumergroups.ShardEnd+`' THEN '' ELSE owner END,
		expires_at = CASE WHEN $6 = '`+consumergroups.ShardEnd+`' THEN NULL ELSE expires_at END,
		release_requested = release_requested AND $6 <> '`+consumergroups.ShardEnd+`'
		WHERE stream = $1 AND group_name = $2 AND shard = $3 AND owner = $4 AND epoch = $5`,
		shard, worker, epoch, cp.SequenceNumber, int64(cp.SubSequenceNumber))
}

func (s *pgStore) Release(ctx context.Context, shard, worker string, epoch uint64, cp *consumergroups.Checkpoint) error {
	if cp != nil {
		if err := s.Checkpoint(ctx, shard, worker, epoch, *cp); err != nil || cp.SequenceNumber == consumergroups.ShardEnd {
			return err
		}
	}
	return s.fenced(ctx, `UPDATE `+s.leases+` SET owner = '', expires_at = NULL, release_requested = false
		WHERE stream = $1 AND group_name = $2 AND shard = $3 AND owner = $4 AND epoch = $5`, shard, worker, epoch)
}

func (s *pgStore) Leave(ctx context.Context, worker string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE `+s.leases+` SET owner = '', expires_at = NULL, release_requested = false
			WHERE stream = $1 AND group_name = $2 AND owner = $3`, s.stream, s.group, worker); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM `+s.workers+` WHERE stream = $1 AND group_name = $2 AND worker = $3`, s.stream, s.group, worker)
		return err
	})
}
