package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sinks/epochs"
	"github.com/runnel-dev/runnel/state"
)

// Output staged by sinks that a restored checkpoint's job file has and the
// job's file has not.
//
// A sink's state goes by its id. A deploy from a savepoint that removes a
// sink, renames it (changes its id) or gives its id to a sink of another
// kind leaves the old sink's key space in the restored store, with the
// output it staged for the checkpoint, which no sink of the new job opens.
// Flink's rule applies: a restored committable is committed where it was
// destined. So the old sink is built from the checkpoint's job file and
// opened on its space, which commits its staged output where it was staged
// for (skipping what the old job committed already), and the space is
// cleared. If that fails, the job does not start: the error says which
// sink and why, so that output is never dropped unseen.

// stagingSinkKinds are the sink kinds whose state holds output staged at a
// checkpoint and committed after it. The others keep no output in their
// state (a dashboard's retained rows are its own view, which goes with it).
var stagingSinkKinds = map[string]bool{SinkStream: true, SinkKafka: true, SinkPostgres: true, SinkS3: true}

// removedSinkTimeout bounds committing one removed sink's staged output.
const removedSinkTimeout = 2 * time.Minute

// commitRemovedSinks commits the staged output of the sinks of the job
// file in snap that j's file has not (by id and kind), and clears their
// key spaces in db. A space it cannot attribute to a sink of the
// checkpoint's job file (a checkpoint without one) is kept, and reported
// in the returned warnings and an ERROR log.
func (m *Manager) commitRemovedSinks(j *Job, db *state.DB, snap *engine.Snapshot) ([]string, error) {
	old := snapshotSpec(snap)
	kinds := j.Spec.sinkKindsByID()
	ids, err := db.Operators()
	if err != nil {
		return nil, err
	}
	var warnings []string
	for _, id := range ids {
		sp, err := db.Namespace(id, "sink")
		if err != nil {
			return nil, err
		}
		if has, err := hasKeys(sp); err != nil || !has {
			if err != nil {
				return nil, err
			}
			continue
		}
		sink, kind := old.sinkOf(id)
		if kind == "" {
			if _, ok := kinds[id]; ok {
				continue // j's own sink
			}
			w := fmt.Sprintf("the checkpoint holds output staged by sink %q, which is not in the job file; "+
				"the checkpoint's job file does not say what sink it was, so that output is kept in the job's state uncommitted "+
				"(put the sink back under its id to commit it)", id)
			m.log.Error("staged output of a removed sink kept uncommitted", "job", j.ID, "sink", id, "epoch", snap.Epoch)
			warnings = append(warnings, w)
			continue
		}
		if now, ok := kinds[id]; ok && now == kind {
			continue
		}
		if stagingSinkKinds[kind] {
			if err := m.commitRemovedSink(j.startCtx(), old, id, sink, kind, sp); err != nil {
				return nil, fmt.Errorf("sink %s (%s) of the checkpoint's job file is not in the new job file under that id and kind, "+
					"and committing the output it staged where it was staged for failed: %w; "+
					"make the target available again and restart, or deploy without the savepoint (from=none)", id, kind, err)
			}
			m.log.Info("committed the staged output of a removed sink", "job", j.ID, "sink", id, "kind", kind, "epoch", snap.Epoch)
		}
		if err := clearSpace(sp); err != nil {
			return nil, fmt.Errorf("clear the state of removed sink %s: %w", id, err)
		}
	}
	return warnings, nil
}

// commitRemovedSink builds the sink id of spec old (sink, of kind; nil
// for an operator's dead letters) without creating its target, and opens
// it on sp: OpenState commits what sp holds staged. ctx is the job's
// start's: a stop or the manager's close cuts the commit short.
func (m *Manager) commitRemovedSink(ctx context.Context, old *Spec, id string, sink *Sink, kind string, sp *state.Space) error {
	b := &builder{spec: old, env: Env{Store: m.store, Files: m.files, Resume: true, Logger: m.log, ctx: ctx}, restoreOnly: true}
	var s sinks.Sink
	var err error
	if sink != nil {
		s, err = lookupSink(sink.Kind()).Build(b, sink, nil)
	} else {
		s, err = b.streamSink(old.deadLetterStreamOf(id), 1, nil)
	}
	if err != nil {
		return err
	}
	tx, ok := s.(sinks.Transactional)
	if !ok {
		return errors.Join(fmt.Errorf("a %s sink keeps no staged output", kind), s.Close())
	}
	ctx, cancel := context.WithTimeout(ctx, removedSinkTimeout)
	defer cancel()
	err = tx.OpenState(ctx, sp)
	return errors.Join(err, s.Close())
}

// sinkOf returns the sink id of spec (nil and SinkStream for an
// operator's dead letters) and its kind; "" when spec is nil or has no
// such sink.
func (spec *Spec) sinkOf(id string) (*Sink, string) {
	if spec == nil {
		return nil, ""
	}
	for i := range spec.Sinks {
		if spec.Sinks[i].ID == id {
			return &spec.Sinks[i], spec.Sinks[i].Kind()
		}
	}
	if spec.deadLetterStreamOf(id) != "" {
		return nil, SinkStream
	}
	return nil, ""
}

// deadLetterStreamOf returns the dead-letter stream of the operator whose
// dead-letter sink is id, or "".
func (spec *Spec) deadLetterStreamOf(id string) string {
	opID, ok := strings.CutSuffix(id, deadLetterSuffix)
	if !ok {
		return ""
	}
	for i := range spec.Operators {
		if spec.Operators[i].ID == opID {
			return deadLetterStream(&spec.Operators[i])
		}
	}
	return ""
}

// deadLetterStream is the stream op sends its failed records to: its
// on_error dead_letter stream, or a function's on_failure stream; "" for
// none.
func deadLetterStream(op *Operator) string {
	if op.OnError.Policy == OnErrorDeadLetter && op.OnError.DeadLetter != "" {
		return op.OnError.DeadLetter
	}
	if fn := extConfig[Function](&op.ext, KindFunction, false); fn != nil {
		return fn.OnFailure
	}
	return ""
}

var errHasKey = errors.New("has a key")

// hasKeys reports whether sp holds any key but a sink's incarnation.
func hasKeys(sp *state.Space) (bool, error) {
	err := sp.Scan(nil, func(k, _ []byte) error {
		if epochs.IsIncarnationKey(k) {
			return nil
		}
		return errHasKey
	})
	if errors.Is(err, errHasKey) {
		return true, nil
	}
	return false, err
}

// clearSpace deletes every key of sp.
func clearSpace(sp *state.Space) error {
	b := sp.NewBatch()
	if err := sp.Scan(nil, func(k, _ []byte) error {
		b.Delete(k)
		return nil
	}); err != nil {
		return err
	}
	return b.Commit()
}

// snapshotSpec is the job file a checkpoint's snapshot holds, nil when it
// holds none (written before snapshots held it) or it does not parse.
func snapshotSpec(snap *engine.Snapshot) *Spec {
	var e snapshotExtra
	if len(snap.Extra) == 0 || json.Unmarshal(snap.Extra, &e) != nil || e.JobFile == "" {
		return nil
	}
	old, _ := Parse([]byte(e.JobFile))
	return old
}

// sinkKindsByID maps the id of each sink of spec, its operators' dead-letter
// sinks included, to its kind.
func (spec *Spec) sinkKindsByID() map[string]string {
	kinds := map[string]string{}
	for i := range spec.Sinks {
		kinds[spec.Sinks[i].ID] = spec.Sinks[i].Kind()
	}
	for _, op := range spec.Operators {
		if dl := deadLetterStream(&op); dl != "" {
			kinds[op.ID+deadLetterSuffix] = SinkStream
		}
	}
	return kinds
}
