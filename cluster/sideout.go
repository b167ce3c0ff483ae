package cluster

import (
	"context"
	"fmt"
	"strings"

	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/operators"
)

// Side outputs on workers. A side output "id:name" (a window's late
// records) is read in the stage of operator id (Cut), so its records go to
// their readers in the task that emitted them, within the same
// transaction as the task's main output: a sink's topic, an operator of
// the stage, or a keyed operator's repartition topic. An operator's side
// output is wired only when something reads it; otherwise the operator
// counts and drops its records, as in one server.
//
// Dead letters (on_error: {dead_letter: STREAM}) are refused: they go to a
// Runnel stream, which workers do not have.

// nodeOf is the node id of an input ("id" or "id:side output").
func nodeOf(input string) string {
	id, _, _ := strings.Cut(input, ":")
	return id
}

// sideRecord is a record an operator emitted to a side output, waiting
// to be routed.
type sideRecord struct {
	from string // "id:name"
	rec  operators.Record
}

type sideEmitter struct {
	t    *task
	from string
}

func (e sideEmitter) Emit(r operators.Record) { e.t.side = append(e.t.side, sideRecord{e.from, r}) }

// wireSideOutputs wires the side outputs of the task's operators that
// something reads.
func (w *Worker) wireSideOutputs(t *task) {
	for n, op := range t.ops {
		so, ok := op.(operators.SideOutputs)
		if !ok {
			continue
		}
		for _, name := range so.SideOutputNames() {
			from := n + ":" + name
			if len(w.outs[from]) > 0 {
				so.SetSideOutput(name, sideEmitter{t, from})
			}
		}
	}
}

// routeSide passes the side records the task's operators emitted to their
// readers, in the order they were emitted.
func (w *Worker) routeSide(ctx context.Context, t *task) error {
	for len(t.side) > 0 {
		pending := t.side
		t.side = nil
		for i := 0; i < len(pending); {
			j := i + 1
			for j < len(pending) && pending[j].from == pending[i].from {
				j++
			}
			recs := make([]operators.Record, 0, j-i)
			for _, s := range pending[i:j] {
				recs = append(recs, s.rec)
			}
			if err := w.route(ctx, t, pending[i].from, recs); err != nil {
				return err
			}
			i = j
		}
	}
	return nil
}

// refuseDeadLetters refuses a job whose operators or source send dead
// letters to a stream.
func refuseDeadLetters(spec *jobs.Spec) error {
	if spec.Source.OnError.Policy == jobs.OnErrorDeadLetter {
		return fmt.Errorf("%w: job %s: source.on_error: dead letters go to a Runnel stream, which workers do not have: use skip or fail, or run the job in one server", ErrPlan, spec.Name)
	}
	for _, op := range spec.Operators {
		if op.OnError.Policy == jobs.OnErrorDeadLetter {
			return fmt.Errorf("%w: job %s: operator %s: on_error: dead letters go to a Runnel stream, which workers do not have: use skip (the record is counted and dropped) or fail, or run the job in one server", ErrPlan, spec.Name, op.ID)
		}
	}
	return nil
}
