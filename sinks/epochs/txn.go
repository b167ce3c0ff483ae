package epochs

import (
	"context"
	"fmt"

	"github.com/runnel-dev/runnel/sinks/twophase"
	"github.com/runnel-dev/runnel/state"
)

// Txn is the transactional state of a sink that stages its rows with
// this package: Stage keeps rows in memory, PreCommit stores them under
// the epoch, Commit hands each stored epoch to the sink's commit function
// and forgets it, and Restore does the same for the epochs a restored
// space holds. commit writes an epoch to the target together with its
// record of the epoch, so that running it again for an epoch already
// written changes nothing.
//
// Epochs are staged for the target NewTxn was given; Restore hands commit
// each restored epoch with the target it was staged for, which commit
// must write to (Epoch.Target, "" meaning the present target).
//
// A nil *Txn is a sink that was not opened: PreCommit and Commit on it
// return twophase.ErrNotOpen and Err returns nil.
type Txn struct {
	log    *twophase.Log[Epoch]
	sp     *state.Space
	target string
	commit func(context.Context, Epoch) error
	staged []Row
	// inc is the incarnation (see Incarnation).
	inc string
}

// NewTxn returns the Txn of the sink whose errors start with name, which
// stages in sp for target and commits an epoch with commit.
func NewTxn(sp *state.Space, name, target string, commit func(context.Context, Epoch) error) *Txn {
	return &Txn{log: twophase.New[Epoch](name), sp: sp, target: target, commit: commit}
}

// Err is the error that stopped the sink, nil while it runs.
func (t *Txn) Err() error {
	if t == nil {
		return nil
	}
	return t.log.Err()
}

// Fail stops the sink with err and returns the error every later call
// returns.
func (t *Txn) Fail(err error) error { return t.log.Fail(err) }

// Stage keeps r for the next PreCommit.
func (t *Txn) Stage(r Row) { t.staged = append(t.staged, r) }

// Restore commits the epochs staged in the space, oldest first: their
// checkpoint completed, but their commit may have been cut short. It
// takes the space's incarnation, or, in a space that holds none (a fresh
// start, or a checkpoint taken before sinks kept one), commits the
// restored epochs under the legacy record and then stores a new one.
func (t *Txn) Restore(ctx context.Context) error {
	inc, err := loadIncarnation(t.sp)
	if err != nil {
		return t.log.Fail(fmt.Errorf("read the incarnation: %w", err))
	}
	t.inc = inc
	staged, err := Load(t.sp)
	for _, e := range staged {
		if err != nil {
			break
		}
		if err = t.commitForget(ctx, e); err == nil {
			t.log.Restored(e.Epoch)
		}
	}
	if err != nil {
		return t.log.Fail(fmt.Errorf("recover staged epochs: %w", err))
	}
	if t.inc == "" {
		inc := newIncarnation()
		if err := t.sp.Set(incarnationKey, []byte(inc)); err != nil {
			return t.log.Fail(fmt.Errorf("store the incarnation: %w", err))
		}
		t.inc = inc
	}
	return nil
}

// PreCommit stores the rows staged since the last PreCommit under epoch.
func (t *Txn) PreCommit(epoch uint64) error {
	if t == nil {
		return twophase.ErrNotOpen
	}
	if err := t.log.PreCommit(epoch); err != nil || len(t.staged) == 0 {
		return err
	}
	e, err := Stage(t.sp, epoch, t.target, t.staged)
	if err != nil {
		return t.log.Wrap(err)
	}
	t.log.Add(epoch, e)
	t.staged = nil
	return nil
}

// Commit commits every stored epoch <= epoch, oldest first.
func (t *Txn) Commit(ctx context.Context, epoch uint64) error {
	if t == nil {
		return twophase.ErrNotOpen
	}
	return t.log.Commit(epoch, func(_ uint64, e Epoch) error { return t.commitForget(ctx, e) })
}

// Pending is the epochs stored and not yet committed, oldest first.
func (t *Txn) Pending() []Epoch { return t.log.Pending() }

func (t *Txn) commitForget(ctx context.Context, e Epoch) error {
	if err := t.commit(ctx, e); err != nil {
		return err
	}
	return Forget(t.sp, e)
}
