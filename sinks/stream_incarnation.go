package sinks

import (
	"errors"
	"fmt"
	"time"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/streams"
)

// incarnation tells a stream from another created under its name after it
// was deleted: its creation time (what DescribeStream calls
// StreamCreationTimestamp) and its sequence tag. A zero field is unknown
// (a marker written before markers held it; a stream created before
// sequence tags) and matches anything.
type incarnation struct {
	created int64 // UnixNano
	seqTag  uint64
}

func incarnationOf(info streams.StreamInfo) incarnation {
	return incarnationAt(info.Created, info.SeqTag)
}

func incarnationAt(created time.Time, seqTag uint64) incarnation {
	var c int64
	if !created.IsZero() && created.UnixNano() > 0 {
		c = created.UnixNano()
	}
	return incarnation{created: c, seqTag: seqTag}
}

func (i incarnation) known() bool { return i.created != 0 || i.seqTag != 0 }

// matches says whether the stream of info is incarnation i.
func (i incarnation) matches(info streams.StreamInfo) bool {
	return i.matchesAt(incarnationAt(info.Created, info.SeqTag))
}

func (i incarnation) matchesAt(o incarnation) bool {
	if i.created != 0 && o.created != 0 && i.created != o.created {
		return false
	}
	return i.seqTag == 0 || o.seqTag == 0 || i.seqTag == o.seqTag
}

// checkIncarnation fails with ErrStagedTargetGone when stream, for whose
// incarnation inc epochs were staged, no longer exists or is another
// stream created under its name since.
func (s *Stream) checkIncarnation(stream string, inc incarnation, epochs []stagedEpoch) error {
	created, err := s.cfg.Store.StreamCreated(stream)
	var tag uint64
	if err == nil {
		tag, err = s.cfg.Store.SeqTag(stream)
	}
	n := 0
	for _, e := range epochs {
		n += len(e.recs)
	}
	what := fmt.Sprintf("%d records of checkpoint epochs %d..%d were staged for stream %q", n, epochs[0].epoch, epochs[len(epochs)-1].epoch, stream)
	if len(epochs) == 1 {
		what = fmt.Sprintf("the %d records of checkpoint epoch %d were staged for stream %q", n, epochs[0].epoch, stream)
	}
	if errors.Is(err, streams.ErrStreamNotFound) {
		if !inc.known() {
			return fmt.Errorf("%w: %s, which no longer exists "+
				"(create it again and restart the job to deliver them there; they are not written to %q): %w",
				ErrStagedTargetGone, what, s.cfg.Stream, err)
		}
		return fmt.Errorf("%w: %s (created %s), which no longer exists: they belonged to that stream and are written "+
			"neither to a stream created again under its name nor to %q; deploy the job with from=none to start without "+
			"this checkpoint's state: %w", ErrStagedTargetGone, what, fmtNanos(inc.created), s.cfg.Stream, err)
	}
	if err != nil {
		return err
	}
	if now := incarnationAt(created, tag); !inc.matchesAt(now) {
		return fmt.Errorf("%w: %s (created %s), which no longer exists: stream %q now is another stream, created "+
			"%s, and gets none of them; deploy the job with from=none to start without this checkpoint's state",
			ErrStagedTargetGone, what, fmtNanos(inc.created), stream, fmtNanos(now.created))
	}
	return nil
}

func fmtNanos(ns int64) string {
	if ns == 0 {
		return "at an unknown time"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// DropStagedOfGoneStreams removes from sp, the state space of a stream
// sink, the staged epochs whose stream is gone since they were staged:
// deleted, or deleted and created again under its name (another stream).
// Had they been committed, the delete would have taken them with it;
// putting them into a new stream of the name would bring back records of
// a stream the user deleted. It says what it dropped, one line a stream,
// for the job's warnings. Epochs whose marker predates incarnations
// (their stream is only a name) are kept: OpenState decides on them.
func DropStagedOfGoneStreams(sp *state.Space, store *streams.Store) ([]string, error) {
	epochs, err := loadStaged(sp)
	if err != nil {
		return nil, err
	}
	type target struct {
		stream string
		inc    incarnation
	}
	var order []target
	by := map[target][]stagedEpoch{}
	for _, e := range epochs {
		if e.marker.stream == "" || !e.marker.inc.known() {
			continue
		}
		k := target{e.marker.stream, e.marker.inc}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], e)
	}
	var out []string
	for _, k := range order {
		now := "it no longer exists"
		info, err := store.DescribeStream(k.stream)
		switch {
		case errors.Is(err, streams.ErrStreamNotFound):
		case err != nil:
			return out, err
		case k.inc.matches(info):
			continue
		default:
			now = fmt.Sprintf("the stream of that name now is another one, created %s", fmtNanos(info.Created.UnixNano()))
		}
		n := 0
		for _, e := range by[k] {
			n += len(e.recs)
			if err := forget(sp, e); err != nil {
				return out, err
			}
		}
		eps := fmt.Sprintf("checkpoint epoch %d", by[k][0].epoch)
		if len(by[k]) > 1 {
			eps = fmt.Sprintf("checkpoint epochs %d..%d", by[k][0].epoch, by[k][len(by[k])-1].epoch)
		}
		out = append(out, fmt.Sprintf("%d records staged at %s for stream %q (created %s) were dropped, not delivered: "+
			"%s; they belonged to the deleted stream and are not written to another", n, eps, k.stream, fmtNanos(k.inc.created), now))
	}
	return out, nil
}
