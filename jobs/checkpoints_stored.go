package jobs

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/runnel-dev/runnel/state"
)

// What a job's state store keeps, read for the job rather than for the
// engine: its checkpoints while the store is closed, and the part of a
// checkpoint of another job that a job started from it leaves out.

// storedCheckpoints lists the complete checkpoints a closed state store
// in dir keeps, with what run knows of them.
func storedCheckpoints(dir string, run map[uint64]CheckpointInfo) []CheckpointInfo {
	if dir == "" {
		return nil
	}
	ins, err := state.ListCheckpoints(vfs.Default, dir)
	if err != nil {
		return nil
	}
	return checkpointInfos(ins, run)
}

// checkpointInfos reports a store's complete checkpoints, as this run
// recorded them where it took them.
func checkpointInfos(ins []state.Info, run map[uint64]CheckpointInfo) []CheckpointInfo {
	var out []CheckpointInfo
	for _, in := range ins {
		if ci, ok := run[in.Epoch]; ok {
			out = append(out, ci)
			continue
		}
		out = append(out, CheckpointInfo{Epoch: in.Epoch, Time: in.Time.UTC(), DurationMS: ms(in.Duration), Size: in.Size, Status: in.Status})
	}
	return out
}

// dropSinkState clears the sinks' key spaces of a store restored from a
// checkpoint of another job (a savepoint it starts from). What that job's
// transactional sinks had staged in it is that job's output, which it
// commits itself: committed by this job's sinks, it would land in this
// job's outputs as records this job never read.
func dropSinkState(db *state.DB, spec *Spec) error {
	ids := make([]string, 0, len(spec.Sinks))
	for _, s := range spec.Sinks {
		ids = append(ids, s.ID)
	}
	for _, op := range spec.Operators {
		if op.OnError.Policy == OnErrorDeadLetter {
			ids = append(ids, op.ID+deadLetterSuffix)
		}
	}
	for _, id := range ids {
		sp, err := db.Namespace(id, "sink")
		if err != nil {
			return err
		}
		b := sp.NewBatch()
		if err := sp.Scan(nil, func(k, _ []byte) error {
			b.Delete(k)
			return nil
		}); err != nil {
			return fmt.Errorf("clear the staged output of sink %s: %w", id, err)
		}
		if err := b.Commit(); err != nil {
			return fmt.Errorf("clear the staged output of sink %s: %w", id, err)
		}
	}
	return nil
}
