package streams

// Partial puts. A put appends one commit group to each shard its records
// route to, and each group is stored or refused on its own, so a put can
// end with the records of some shards stored and those of others not:
//
//   - a shard's write or sync fails while other shards' groups commit: an
//     I/O error (the shard then takes no writes until a restart), or a full
//     disk met by the write itself (the group is refused with
//     ErrUnavailable; the shard takes writes again once there is room);
//   - a shard refuses the append itself while others take theirs: it failed
//     earlier, the disk became full after the put checked every shard for
//     a full disk (another put's write met it in between), the store is
//     closing (ErrClosed), or a wait for room in the shard's pending buffer
//     ended with the shard failed or stopping.
//
// Refused whole, before anything is appended: an invalid record, a stream
// that does not exist or is still being created, a routing table with a
// gap, and a shard known to be refusing writes for a full disk when the put
// starts. Resharding and deleting a stream cannot end a shard between a
// put's routing and its appends: both hold the stream's lock for writing,
// and a put holds it for reading from routing to its last append (records
// appended to a shard closed afterwards are still written). A context that
// ends while the put waits for its groups makes Put return ctx.Err(): the
// caller is gone, and its records may be stored or not.
//
// A record is reported stored only once its group's write (and sync, unless
// the store syncs on an interval) succeeded. A record of a group whose
// write failed is reported not stored, and the bytes of that write that may
// have reached the file are overwritten with zeros again (discardFailed),
// which recovery reads as the segment's end: a restart does not find the
// records a client was told to send again. When that fails too, the
// record's error wraps ErrMaybeStored.

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrMaybeStored: a write failed and its bytes could not be cut off the log
// again, so its records may be found after a restart although the put
// reported them not stored. Sending them again may store them twice.
var ErrMaybeStored = errors.New("streams: records may have been stored")

// PartialPutError is Put's error when some of the put's records were stored
// and others were not.
type PartialPutError struct {
	Stream string
	// Results holds every record's result in request order: a stored
	// record's has its sequence number and a nil Err, a record not stored
	// has Err set.
	Results []PutResult
	// Failed counts the records not stored.
	Failed int
	// Err is the first reason a record was not stored.
	Err error
}

func (e *PartialPutError) Error() string {
	return fmt.Sprintf("%v; %d of the %d records of this put were not stored, the others were stored (each record's result says which)",
		e.Err, e.Failed, len(e.Results))
}

func (e *PartialPutError) Unwrap() error { return e.Err }

// shardPut is one shard's part of a put: the records routed to it (their
// indexes in the request) and its commit group, or the error its append
// got (g is then nil).
type shardPut struct {
	shard *shard
	recs  []int32
	g     *commitGroup
	err   error
}

// settle waits for every shard's group of a put and assembles the put's
// answer: res when every record was stored, the first error when none
// was, res with a *PartialPutError otherwise.
func settle(ctx context.Context, name string, n int, res []PutResult, puts []shardPut) ([]PutResult, error) {
	failed := 0
	var first error
	for k := range puts {
		p := &puts[k]
		if p.g != nil {
			select {
			case <-p.g.done:
				if p.g.err != nil {
					p.err = fmt.Errorf("put to stream %s: %w", name, p.g.err)
				}
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if p.err == nil {
			continue
		}
		if first == nil {
			first = p.err
		}
		failed += len(p.recs)
		for _, i := range p.recs {
			res[i] = PutResult{ShardID: p.shard.id, ShardIndex: p.shard.index, Err: p.err}
		}
	}
	switch {
	case failed == 0:
		return res, nil
	case failed == n:
		return nil, first
	}
	return res, &PartialPutError{Stream: name, Results: res, Failed: failed, Err: first}
}

// discardFailed overwrites with zeros the n bytes a failed write put at
// the end of seg (after its last record) and syncs them, so that the
// group's records, reported not stored, are not found after a restart
// either. It returns err, wrapped with ErrMaybeStored when the bytes could
// not be overwritten. Caller holds wmu.
func (sh *shard) discardFailed(f vfs.File, seg *segment, n int64, err error) error {
	if n <= 0 {
		return err
	}
	sh.mu.Lock()
	at := seg.size
	sh.mu.Unlock()
	zeros := zeroChunk()
	var zerr error
	for off := at; off < at+n && zerr == nil; {
		var w int
		w, zerr = f.WriteAt(zeros[:min(int64(len(zeros)), at+n-off)], off)
		off += int64(w)
	}
	if zerr == nil {
		zerr = f.Sync()
	}
	if zerr != nil {
		sh.log.Error("a failed write's bytes could not be cut off: its records may be found after a restart", "segment", seg.path, "err", zerr)
		return fmt.Errorf("%w (%w: overwriting its bytes failed: %v)", err, ErrMaybeStored, zerr)
	}
	// The zeros are the segment's filled tail now, cut off with any
	// prefill when the segment is sealed or its writer stops.
	sh.mu.Lock()
	seg.filled = max(seg.filled, at+n)
	sh.mu.Unlock()
	return err
}

// retryableWrite reports whether a failed write leaves the shard able to
// write again once there is room: a full disk, with nothing of the group
// left in the file.
func retryableWrite(err error) bool {
	return isNoSpace(err) && !errors.Is(err, ErrMaybeStored)
}
