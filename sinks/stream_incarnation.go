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

// stagedTarget is the stream, and its incarnation, epochs were staged for.
type stagedTarget struct {
	stream string
	inc    incarnation
}

// byTarget groups epochs by the stream they were staged for (a marker
// without a stream name: stream), keeping the order targets first appear.
func byTarget(epochs []stagedEpoch, stream string) ([]stagedTarget, map[stagedTarget][]stagedEpoch) {
	var order []stagedTarget
	by := map[stagedTarget][]stagedEpoch{}
	for _, e := range epochs {
		if e.marker.stream == "" {
			e.marker.stream = stream
		}
		k := stagedTarget{e.marker.stream, e.marker.inc}
		if _, ok := by[k]; !ok {
			order = append(order, k)
		}
		by[k] = append(by[k], e)
	}
	return order, by
}

// recreated reports whether the stream of name, which epochs were staged
// for for incarnation inc, is another stream created under the name since,
// and that stream's creation time (UnixNano). It returns the store's error
// (wrapping streams.ErrStreamNotFound) when there is no stream of the name.
func recreated(store *streams.Store, stream string, inc incarnation) (bool, int64, error) {
	created, err := store.StreamCreated(stream)
	var tag uint64
	if err == nil {
		tag, err = store.SeqTag(stream)
	}
	if err != nil {
		return false, 0, err
	}
	now := incarnationAt(created, tag)
	return !inc.matchesAt(now), now.created, nil
}

// stagedRecords says how many records epochs hold and which epochs.
func stagedRecords(epochs []stagedEpoch) string {
	n := 0
	for _, e := range epochs {
		n += len(e.recs)
	}
	if len(epochs) == 1 {
		return fmt.Sprintf("%d records staged at checkpoint epoch %d", n, epochs[0].epoch)
	}
	return fmt.Sprintf("%d records staged at checkpoint epochs %d..%d", n, epochs[0].epoch, epochs[len(epochs)-1].epoch)
}

// checkIncarnation fails with ErrStagedTargetGone when stream, for whose
// incarnation inc epochs were staged, no longer exists or is another
// stream created under its name since. (A job's restore drops such epochs
// first: DropStagedOfGoneStreams.)
func (s *Stream) checkIncarnation(stream string, inc incarnation, epochs []stagedEpoch) error {
	again, created, err := recreated(s.cfg.Store, stream, inc)
	what := fmt.Sprintf("%s for stream %q", stagedRecords(epochs), stream)
	switch {
	case errors.Is(err, streams.ErrStreamNotFound) && !inc.known():
		return fmt.Errorf("%w: %s, which no longer exists "+
			"(create it again and restart the job to deliver them there; they are not written to %q): %w",
			ErrStagedTargetGone, what, s.cfg.Stream, err)
	case errors.Is(err, streams.ErrStreamNotFound):
		return fmt.Errorf("%w: %s (created %s), which no longer exists: they belonged to that stream and are written "+
			"neither to a stream created again under its name nor to %q; the job's restart drops them with a warning: %w",
			ErrStagedTargetGone, what, fmtNanos(inc.created), s.cfg.Stream, err)
	case err != nil:
		return err
	case again:
		return fmt.Errorf("%w: %s (created %s), which no longer exists: stream %q now is another stream, created %s, "+
			"and gets none of them; the job's restart drops them with a warning",
			ErrStagedTargetGone, what, fmtNanos(inc.created), stream, fmtNanos(created))
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
	order, by := byTarget(epochs, "")
	var out []string
	for _, k := range order {
		if k.stream == "" || !k.inc.known() {
			continue
		}
		again, created, err := recreated(store, k.stream, k.inc)
		now := "it no longer exists"
		switch {
		case errors.Is(err, streams.ErrStreamNotFound):
		case err != nil:
			return out, err
		case !again:
			continue
		default:
			now = fmt.Sprintf("the stream of that name now is another one, created %s", fmtNanos(created))
		}
		for _, e := range by[k] {
			if err := forget(sp, e); err != nil {
				return out, err
			}
		}
		out = append(out, fmt.Sprintf("%s for stream %q (created %s) were dropped, not delivered: "+
			"%s; they belonged to the deleted stream and are not written to another", stagedRecords(by[k]), k.stream, fmtNanos(k.inc.created), now))
	}
	return out, nil
}
