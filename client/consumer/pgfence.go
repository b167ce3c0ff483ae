package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/runnel-dev/runnel/consumergroups"
)

// FencedCheckpoint is one shard's checkpoint in a CommitFenced call: the
// worker must hold the shard's lease at Epoch.
type FencedCheckpoint struct {
	Shard      string
	Epoch      uint64
	Checkpoint consumergroups.Checkpoint
	// LeaseOnly fences the commit by the shard's lease and leaves its
	// checkpoint as it is (Checkpoint is ignored): for a commit that holds
	// output about the shard but no new position in it.
	LeaseOnly bool
}

// FencedCommitter is a lease store that can checkpoint several shards
// around another system's commit, fenced by the leases: PostgresLeases'
// store implements it.
type FencedCommitter interface {
	// CommitFenced checks that worker holds every shard's lease at its
	// epoch and keeps any other worker from taking one over, calls commit,
	// and when commit returns nil stores the checkpoints. A lease not held
	// any more (an error wrapping consumergroups.ErrLeaseLost) or a failing
	// commit leave every checkpoint as it was. An error wrapping
	// ErrCheckpointNotStored means commit succeeded but the checkpoints
	// were not stored: the caller's own commit record is then the newer
	// position.
	CommitFenced(ctx context.Context, worker string, cps []FencedCheckpoint, commit func(context.Context) error) error
}

// ErrCheckpointNotStored is wrapped by CommitFenced's error when the
// commit succeeded and storing the checkpoints then failed.
var ErrCheckpointNotStored = errors.New("the commit succeeded but the checkpoints were not stored")

// CommitFenced runs in one PostgreSQL transaction that takes the group's
// advisory lock first, as Sync does: no Sync (so no takeover) of the group
// runs between the ownership check and the checkpoint writes, and commit
// runs in between. A worker that lost a lease before the transaction
// began sees another owner or epoch and calls nothing.
func (s *pgStore) CommitFenced(ctx context.Context, worker string, cps []FencedCheckpoint, commit func(context.Context) error) error {
	for _, c := range cps {
		if c.LeaseOnly {
			continue
		}
		if err := c.Checkpoint.Validate(); err != nil {
			return fmt.Errorf("shard %s: %w", c.Shard, err)
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("consumer: fenced commit: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, s.leases+"/"+s.stream+"/"+s.group); err != nil {
		return fmt.Errorf("consumer: fenced commit: lock group %s: %w", s.group, err)
	}
	shards := make([]string, len(cps))
	for i, c := range cps {
		shards[i] = c.Shard
	}
	type holder struct {
		owner string
		epoch uint64
	}
	held := map[string]holder{}
	rows, err := tx.Query(ctx, `SELECT shard, owner, epoch FROM `+s.leases+`
		WHERE stream = $1 AND group_name = $2 AND shard = ANY($3) FOR UPDATE`, s.stream, s.group, shards)
	if err != nil {
		return fmt.Errorf("consumer: fenced commit: %w", err)
	}
	for rows.Next() {
		var shard, owner string
		var epoch int64
		if err := rows.Scan(&shard, &owner, &epoch); err != nil {
			rows.Close()
			return fmt.Errorf("consumer: fenced commit: %w", err)
		}
		held[shard] = holder{owner, uint64(epoch)}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("consumer: fenced commit: %w", err)
	}
	cps = slices.Clone(cps)
	slices.SortFunc(cps, func(a, b FencedCheckpoint) int { return strings.Compare(a.Shard, b.Shard) })
	for _, c := range cps {
		h, ok := held[c.Shard]
		if !ok {
			return &consumergroups.Error{Field: "shard", Err: consumergroups.ErrNotFound, Msg: fmt.Sprintf("the group has no lease for shard %q", c.Shard)}
		}
		if owner, epoch := h.owner, h.epoch; owner != worker || epoch != c.Epoch {
			if owner == "" {
				owner = "no one"
			}
			return &consumergroups.Error{Field: "epoch", Err: consumergroups.ErrLeaseLost, Msg: fmt.Sprintf(
				"shard %s: worker %q at epoch %d does not hold the lease (it is held by %s at epoch %d): its output must not be committed", c.Shard, worker, c.Epoch, owner, epoch)}
		}
	}
	if err := commit(ctx); err != nil {
		return err
	}
	b := &pgx.Batch{}
	for _, c := range cps {
		if c.LeaseOnly {
			continue
		}
		b.Queue(`UPDATE `+s.leases+` SET sequence_number = $4, sub_sequence_number = $5,
			owner = CASE WHEN $4 = '`+consumergroups.ShardEnd+`' THEN '' ELSE owner END,
			expires_at = CASE WHEN $4 = '`+consumergroups.ShardEnd+`' THEN NULL ELSE expires_at END,
			release_requested = release_requested AND $4 <> '`+consumergroups.ShardEnd+`'
			WHERE stream = $1 AND group_name = $2 AND shard = $3`,
			s.stream, s.group, c.Shard, c.Checkpoint.SequenceNumber, int64(c.Checkpoint.SubSequenceNumber))
	}
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("consumer: %w: %w", ErrCheckpointNotStored, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("consumer: %w: %w", ErrCheckpointNotStored, err)
	}
	return nil
}
