package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/streams"
)

// What a restore checks of a checkpoint's source positions against the
// stream, topics or files as they are now.

// boundExtra is a checkpoint's snapshotExtra with what its source's
// positions are positions in, for a source that binds them
// (sources.PositionChecker).
type boundExtra struct {
	snapshotExtra
	SourceBindings map[string]string `json:"source_bindings,omitempty"`
}

// checkpointExtra is extraOf for a checkpoint of j's current run, with the
// incarnation of the stream its source reads, or the bindings of a source
// that binds its positions.
func (m *Manager) checkpointExtra(j *Job) json.RawMessage {
	e := boundExtra{snapshotExtra: snapshotExtraOf(j.Spec, j.Source)}
	if name := j.Spec.Source.stream(); name != "" && m.store != nil {
		if created, err := m.store.StreamCreated(name); err == nil {
			e.Stream, e.StreamCreated = name, created
		}
	}
	j.mu.Lock()
	built := j.mu.built
	j.mu.Unlock()
	if pc, ok := jobSource(built).(sources.PositionChecker); ok {
		e.SourceBindings = pc.Bindings()
	}
	b, _ := json.Marshal(e)
	return b
}

// jobSource is the source of a built job, or nil.
func jobSource(b *Built) sources.Source {
	if b == nil {
		return nil
	}
	for _, s := range b.Graph.Sources {
		if s.ID == SourceID {
			return s.Source
		}
	}
	return nil
}

// checkPositionsTimeout bounds a source's check of a checkpoint's
// positions (a Kafka source asks the brokers).
const checkPositionsTimeout = 30 * time.Second

// checkSourcePositions lets a source that binds its positions
// (sources.PositionChecker: Kafka, files) check a snapshot's positions
// against what it reads now, and applies what it found: a position
// dropped (the shard is read as one the checkpoint does not know) or
// moved (past records retention deleted). Each problem is a warning and
// an ERROR log. An error means the check could not be made; the job does
// not start on positions it could not check.
func (m *Manager) checkSourcePositions(j *Job, src sources.Source, snap *engine.Snapshot) ([]string, error) {
	pc, ok := src.(sources.PositionChecker)
	if !ok {
		return nil, nil
	}
	var e boundExtra
	if len(snap.Extra) > 0 {
		_ = json.Unmarshal(snap.Extra, &e) // compatible read it already
	}
	positions := map[string]string{}
	for key, pos := range snap.Positions {
		if shard, ok := strings.CutPrefix(key, SourceID+"/"); ok {
			positions[shard] = pos
		}
	}
	ctx, cancel := context.WithTimeout(j.startCtx(), checkPositionsTimeout)
	defer cancel()
	problems, err := pc.CheckPositions(ctx, positions, e.SourceBindings)
	if err != nil {
		return nil, fmt.Errorf("restore job %s from checkpoint %d: %w", j.ID, snap.Epoch, err)
	}
	var out []string
	for _, p := range problems {
		for shard, pos := range p.Resume {
			key := SourceID + "/" + shard
			if pos == "" {
				delete(snap.Positions, key)
				delete(snap.MaxEventTimes, key)
			} else {
				snap.Positions[key] = pos
			}
		}
		w := fmt.Sprintf("checkpoint %d: %s", snap.Epoch, p.Problem)
		m.log.Error("checkpoint positions not usable as they are", "job", j.ID, "epoch", snap.Epoch, "problem", w)
		out = append(out, w)
	}
	return out, nil
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
