package jobs

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/streams"
)

// What a restore checks of a checkpoint's source positions against the
// stream as it is now.

// checkpointExtra is extraOf for a checkpoint of j's current run, with the
// incarnation of the stream its source reads.
func (m *Manager) checkpointExtra(j *Job) json.RawMessage {
	e := snapshotExtraOf(j.Spec, j.Source)
	if name := j.Spec.Source.stream(); name != "" && m.store != nil {
		if created, err := m.store.StreamCreated(name); err == nil {
			e.Stream, e.StreamCreated = name, created
		}
	}
	b, _ := json.Marshal(e)
	return b
}

// sourceMoved drops a snapshot's source positions when they are of
// another stream than the one j's source reads now: another name (a
// deploy that changed the source) or the same name deleted and created
// again (its sequence numbers start over, so the old positions would skip
// the new stream's first records). The source then starts at its
// configured start, as a new job's does; the warning says so. Snapshots
// that name no stream are taken as they are.
func (m *Manager) sourceMoved(j *Job, snap *engine.Snapshot) string {
	var e snapshotExtra
	name := j.Spec.Source.stream()
	if len(snap.Extra) == 0 || json.Unmarshal(snap.Extra, &e) != nil || e.Stream == "" || name == "" || m.store == nil {
		return ""
	}
	created, err := m.store.StreamCreated(name)
	if err != nil {
		return "" // the source fails to open, saying so
	}
	var why string
	switch {
	case e.Stream != name:
		why = fmt.Sprintf("checkpoint %d holds positions in stream %s; the job now reads stream %s", snap.Epoch, e.Stream, name)
	case !e.StreamCreated.Equal(created):
		why = fmt.Sprintf("stream %s was deleted and created again since checkpoint %d (created %s, now %s)", name, snap.Epoch,
			e.StreamCreated.UTC().Format(time.RFC3339Nano), created.UTC().Format(time.RFC3339Nano))
	default:
		return ""
	}
	for key := range snap.Positions {
		if strings.HasPrefix(key, SourceID+"/") {
			delete(snap.Positions, key)
			delete(snap.MaxEventTimes, key)
		}
	}
	start := j.Spec.Source.Start.Position
	if start == "" {
		start = "trim_horizon"
	}
	return why + fmt.Sprintf(": the job reads it from its configured start (%s), not from the checkpoint's positions", start)
}

// retentionWarnings reports the shards of a stream source whose
// checkpointed position is older than what the stream still keeps:
// records in between were deleted by retention and cannot be replayed.
func (m *Manager) retentionWarnings(j *Job, snap *engine.Snapshot) []string {
	if j.Spec.Source.stream() == "" || m.store == nil {
		return nil
	}
	var out []string
	keys := make([]string, 0, len(snap.Positions))
	for k := range snap.Positions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		pos := snap.Positions[key]
		_, shard, ok := strings.Cut(key, "/")
		if !ok {
			continue
		}
		_, _, ctr, err := streams.ParseSeq(pos)
		if err != nil {
			continue
		}
		trim, err := m.store.Seek(j.Spec.Source.stream(), shard, streams.TrimHorizon, "", time.Time{})
		if err != nil {
			continue
		}
		if ctr+1 < trim {
			out = append(out, fmt.Sprintf("checkpoint %d resumes %s of stream %s after %s, but retention already deleted %d records after it: they are skipped",
				snap.Epoch, shard, j.Spec.Source.stream(), pos, trim-ctr-1))
		}
	}
	return out
}
