package cluster

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/runnel-dev/runnel/state"
)

// localState is a worker's local copy of its tasks' committed state, in
// one Pebble store under the worker's data directory: a state.Space per
// task (operator id, task name) holding the task's changelog records as
// they were committed, the changelog offset they go up to, and the topic ID
// of the changelog they were read from or written to.
//
// The copy is written after each committed transaction, in one batch per
// task with the offset of the task's last changelog record in that
// transaction, so it is always a prefix of the committed changelog: a
// crash between the commit and the write leaves it behind, never ahead,
// and the changelog tail after its offset brings it up to date. The
// batches of a commit are synced once, by the last of them; a crash that
// loses some (Pebble recovers a prefix of its log) only lengthens the
// tail read.
type localState struct {
	db  *state.DB
	log *slog.Logger
}

// keyOffset is the local key of the changelog offset a task's local state
// goes up to (included); keyTopicID of the changelog topic's ID (Kafka's
// topic UUID), which binds the offset to that topic: a topic deleted and
// created again under the same name has another ID. Changelog keys start
// with keyWindow, keyMeta or keyDetect.
var (
	keyOffset  = []byte{'o'}
	keyTopicID = []byte{'i'}
)

// isLocalMeta says whether a local key is the local state's own (offset,
// topic ID) rather than a changelog record's.
func isLocalMeta(k []byte) bool { return bytes.Equal(k, keyOffset) || bytes.Equal(k, keyTopicID) }

func openLocal(dir string, log *slog.Logger) (*localState, error) {
	db, err := state.Open(dir, state.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("cluster: local state in %s: %w (the changelog topics hold the state: move the directory away to restore from them)", dir, err)
	}
	return &localState{db: db, log: log}, nil
}

func (l *localState) close() error { return l.db.Close() }

// space is the key space of the state of task of keyed operator op.
func (l *localState) space(op, task string) (*state.Space, error) {
	return l.db.Namespace(op, task)
}

// localOffset returns the changelog offset the space's state goes up to.
func localOffset(sp *state.Space) (int64, bool, error) {
	v, ok, err := sp.Get(keyOffset)
	if err != nil || !ok {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("%w: local offset of %d bytes", ErrChangelog, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// localTopicID returns the ID of the changelog topic the space's state
// copies: all zero when it records none (state written before workers
// recorded it, or from a broker without topic IDs).
func localTopicID(sp *state.Space) (kadm.TopicID, error) {
	var id kadm.TopicID
	v, ok, err := sp.Get(keyTopicID)
	if err != nil || !ok {
		return id, err
	}
	if len(v) != len(id) {
		return id, fmt.Errorf("%w: local changelog topic ID of %d bytes", ErrChangelog, len(v))
	}
	copy(id[:], v)
	return id, nil
}

// scanLocal hands apply the changelog records of the space, oldest key
// first, and returns how many there were.
func scanLocal(sp *state.Space, apply func(Change) error) (int, error) {
	n := 0
	err := sp.Scan(nil, func(k, v []byte) error {
		if isLocalMeta(k) {
			return nil
		}
		n++
		return apply(Change{Key: bytes.Clone(k), Value: bytes.Clone(v)})
	})
	return n, err
}

// clearLocal deletes every key of the space.
func clearLocal(sp *state.Space) error {
	b := sp.NewBatch()
	err := sp.Scan(nil, func(k, _ []byte) error {
		b.Delete(k)
		return nil
	})
	if err != nil {
		return err
	}
	return b.Commit()
}

// writeLocal applies changes to the space and records that it goes up to
// the changelog offset upTo of the changelog topic with ID id, in one
// batch; sync syncs it (and the batches written before it).
func writeLocal(sp *state.Space, changes []Change, upTo int64, id kadm.TopicID, sync bool) error {
	b := sp.NewBatch()
	for _, c := range changes {
		if c.Value == nil {
			b.Delete(c.Key)
		} else {
			b.Set(c.Key, c.Value)
		}
	}
	b.Set(keyOffset, binary.BigEndian.AppendUint64(nil, uint64(upTo)))
	b.Set(keyTopicID, id[:])
	if sync {
		return b.CommitSync()
	}
	return b.Commit()
}

// saveLocal writes what the committed transaction wrote to each task's
// changelog into its local state; the last task's batch syncs them all. A
// failure is survived: the worker stops using its local state
// (dropLocal), which stays a prefix of the changelog.
func (w *Worker) saveLocal() {
	var save []*task
	for _, t := range w.tasks {
		if t.space != nil && len(t.pending) > 0 {
			save = append(save, t)
		}
	}
	for i, t := range save {
		w.produceMu.Lock()
		upTo := t.logEnd
		w.produceMu.Unlock()
		if upTo < 0 {
			w.dropLocal(t.name, fmt.Errorf("the offsets of its changelog records are unknown after the commit"))
			return
		}
		if err := writeLocal(t.space, t.pending, upTo, t.logID, i == len(save)-1); err != nil {
			w.dropLocal(t.name, err)
			return
		}
		t.pending = t.pending[:0]
	}
}

// errLocal marks a failure of the local state while a task restores.
var errLocal = errors.New("local state")

// openLocal opens the worker's local state in its data directory. One
// that does not open (corrupt, unreadable, on a full or read-only disk)
// is a failure the worker survives: it runs without local state, and its
// tasks restore from their changelogs.
func (w *Worker) openLocal() {
	l, err := openLocal(w.cfg.DataDir, w.cfg.Log)
	if err != nil {
		w.fail(FailLocalState, "", fmt.Sprintf("local state in %s does not open: the worker runs without it, its tasks restore from their changelogs (move the directory away, or fix it, and restart the worker to use local state again)", w.cfg.DataDir), err)
		return
	}
	w.local = l
}

func (w *Worker) closeLocal() {
	if w.local != nil {
		w.local.close()
		w.local = nil
	}
}

// dropLocal stops using the local state after it failed for task: what
// is on disk stays a prefix of the committed changelogs (no later batch
// is written), so a restarted worker can still use it; this life's tasks
// restore from their changelogs. Snapshots, taken from the local state,
// stop too.
func (w *Worker) dropLocal(task string, err error) {
	w.fail(FailLocalState, task, fmt.Sprintf("local state in %s failed: the worker stops using it, its tasks restore from their changelogs (restart the worker to use local state again)", w.cfg.DataDir), err)
	for _, t := range w.tasks {
		t.space, t.pending = nil, nil
	}
	w.closeLocal()
}
