package jobs

import (
	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/state"
)

// dropStagedOfGoneStreams drops, from the restored state db, the output
// that stream sinks staged for a stream deleted since (and perhaps created
// again under its name, by hand or by this job's start, which creates a
// missing output stream): that output belonged to the deleted stream. Each
// drop is a job warning and an ERROR log. The stream sinks are those of j's
// file, its operators' dead letters, and those of the checkpoint's file
// that j's has not (they are committed by commitRemovedSinks after this).
func (m *Manager) dropStagedOfGoneStreams(j *Job, db *state.DB, snap *engine.Snapshot) ([]string, error) {
	old, kinds := snapshotSpec(snap), j.Spec.sinkKindsByID()
	streamSink := func(id string) bool {
		if kind, ok := kinds[id]; ok {
			return kind == SinkStream
		}
		_, kind := old.sinkOf(id)
		return kind == SinkStream
	}
	ids, err := db.Operators()
	if err != nil {
		return nil, err
	}
	var warnings []string
	for _, id := range ids {
		if !streamSink(id) {
			continue
		}
		sp, err := db.Namespace(id, "sink")
		if err != nil {
			return nil, err
		}
		lines, err := sinks.DropStagedOfGoneStreams(sp, m.store)
		for _, w := range lines {
			m.log.Error("staged output of a deleted stream dropped", "job", j.ID, "sink", id, "epoch", snap.Epoch, "problem", w)
			warnings = append(warnings, "sink "+id+": "+w)
		}
		if err != nil {
			return warnings, err
		}
	}
	return warnings, nil
}
