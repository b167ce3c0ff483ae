package jobs

import (
	"context"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js"
	"github.com/runnel-dev/runnel/sources"
)

// badRecords is the source's error policy (source.on_error), shared by
// the stream source (records that do not decode) and the event-time
// extractor; one per build, so its counts are the job's.
func (b *builder) badRecords() *sources.BadRecords {
	if b.bad == nil {
		oe := b.spec.Source.OnError
		b.bad = &sources.BadRecords{Mode: sources.Fail, Job: b.spec.Name, Source: SourceID}
		switch oe.Policy {
		case OnErrorSkip:
			b.bad.Mode = sources.Skip
		case OnErrorDeadLetter:
			b.bad.Mode, b.bad.Store, b.bad.Stream = sources.DeadLetter, b.env.Store, oe.DeadLetter
		}
	}
	return b.bad
}

// eventTime builds the source's event-time extractor: a plain field read
// runs in Go and fails the job on a record without a time; with a
// fallback or a source error policy that drops records, a JS chain whose
// failures keep the record at its arrival time or go to the policy.
func (b *builder) eventTime() (engine.EventTimeFactory, error) {
	s := &b.spec.Source
	fallback := s.EventTimeFallback == EventTimeArrival
	if p := b.env.preview; p != nil {
		// A preview keeps every record without an event time as an
		// error of the source (or at its arrival time, with the fallback).
		return eventTimeJSOr(b.spec.Name, s.EventTime, b.spec.Functions, b.jsOptions(nil),
			func(ctx context.Context, rec operators.Record, cause error) (bool, error) {
				if fallback {
					return true, nil
				}
				p.addError(SourceID, rec.Origin, rec.Value, cause.Error())
				return false, nil
			})
	}
	bad := b.badRecords()
	if !fallback && !bad.Drops() {
		return eventTimeJS(b.spec.Name, s.EventTime, b.spec.Functions, js.OnError{Mode: js.Fail}, b.jsOptions(nil))
	}
	return eventTimeJSOr(b.spec.Name, s.EventTime, b.spec.Functions, b.jsOptions(nil),
		func(ctx context.Context, rec operators.Record, cause error) (bool, error) {
			if fallback {
				return true, nil // its EventTime is still the arrival time
			}
			return false, bad.Handle(context.WithoutCancel(ctx), rec.Origin, rec.Key, rec.Value, cause)
		})
}
