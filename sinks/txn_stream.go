package sinks

// Exactly-once output of the stream sink in a checkpointed job.
//
// Guarantee: after any number of crashes, each restarted from the job's
// latest complete checkpoint, the output stream holds the record of every
// row the sink was given before a completed checkpoint's barrier exactly
// once, and the records of one partition key in the order the rows were
// written. Rows after the last completed checkpoint are not in the stream:
// the restarted job replays their input.
//
// How: Write only stages records in memory. PreCommit(e) stores them in
// the sink's state space under e, followed by a marker holding the output
// stream's name, incarnation (creation time and sequence tag) and
// per-shard end positions at that moment. The checkpoint then
// snapshots the space; Commit appends the records with durable Puts and
// deletes them from the space. A restored space therefore holds the
// epochs whose commit had not finished before the checkpoint — possibly
// all of whose records are already in the stream, possibly some. OpenState
// reads the records appended to the stream after the oldest staged
// epoch's positions and appends only the staged records not found there,
// matching by partition key and bytes as a multiset, in staged order.
// Each epoch is recovered into the stream its marker names, not the one
// the sink now writes to: a job restored with a changed sink target (a
// deploy from a savepoint) delivers the checkpoint's records where they
// were staged for, and a target deleted since — or deleted and created
// again under its name, a new stream — fails OpenState (and a Commit)
// with ErrStagedTargetGone instead of losing them or writing them
// elsewhere.
// Puts keep per-shard order and an interrupted commit leaves a per-shard
// prefix, so the appended remainder keeps every key's order.
//
// Assumptions:
//   - the sink is the only writer that could append a record identical
//     (same partition key and bytes) to one of its own while a commit is
//     being recovered; window results carry their window and key, so other
//     writers' records do not match;
//   - the job restarts from its latest complete checkpoint (state.Restore
//     with state.Latest), never from the live store after a crash and never
//     from an older checkpoint: the live store may hold epochs of a failed
//     checkpoint, and an older checkpoint lacks rows already committed;
//   - the output stream keeps the records appended since the oldest staged
//     epoch (retention is at least 24 hours) and uses synchronous
//     durability (streams.Options.SyncInterval 0): with an interval, a
//     power loss can take back records the sink counted as appended.
//
// Layout of the space:
//
//	'm' epoch              marker: stream name and incarnation, shard end positions, chunk and record counts
//	'c' epoch chunk        up to maxPut records: (uvarint len, key, uvarint len, data)...
//
// epoch is 8 bytes and chunk 4 bytes, big-endian, so a scan returns them
// in order. Chunks without a marker come from a PreCommit cut short and
// are dropped.

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/runnel-dev/runnel/sinks/twophase"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/streams"
)

const (
	txnMarkerTag = 'm'
	txnChunkTag  = 'c'
	// txnVersion 3 markers name their stream and its incarnation; version
	// 2 name the stream only (any incarnation matches), and a version 1
	// marker's stream is the one the sink writes to.
	txnVersion = 3
	// txnBatchBytes bounds one Pebble batch of PreCommit; the marker comes
	// last, so splitting does not break atomicity.
	txnBatchBytes = 4 << 20
)

var _ Transactional = (*Stream)(nil)

// streamTxn is the transactional state of a Stream after OpenState.
type streamTxn struct {
	sp *state.Space
	// staged holds the records written since the last PreCommit.
	staged []streams.PutRecord
	// log holds the pre-committed epochs not yet committed. An error of
	// a commit that stopped part-way fails it: retrying the commit from
	// memory could repeat records, so the job must restart from its
	// checkpoint.
	log *twophase.Log[stagedEpoch]
}

type stagedEpoch struct {
	epoch  uint64
	marker txnMarker
	recs   []streams.PutRecord
}

// txnMarker is what PreCommit records besides the records.
type txnMarker struct {
	// stream is the output stream the records were staged for, and inc
	// its incarnation (zero in older markers: unknown).
	stream  string
	inc     incarnation
	chunks  uint32
	records uint64
	// ends maps shard index to the shard's last counter at PreCommit.
	ends map[int]uint64
}

// OpenState switches the sink to staged writes and commits the epochs
// found in sp, skipping records an interrupted commit already appended.
func (s *Stream) OpenState(ctx context.Context, sp *state.Space) error {
	if s.txn != nil {
		return fmt.Errorf("stream sink %s: OpenState called twice", s.cfg.Stream)
	}
	if sp == nil {
		return fmt.Errorf("stream sink %s: OpenState without a state space", s.cfg.Stream)
	}
	// Set at once, so that after a failed OpenState Write never falls
	// back to plain appends.
	t := &streamTxn{sp: sp, log: twophase.New[stagedEpoch]("stream sink " + s.cfg.Stream)}
	s.txn = t
	epochs, err := loadStaged(sp)
	if err != nil {
		return t.log.Fail(fmt.Errorf("open state: %w", err))
	}
	if len(epochs) > 0 {
		if err := s.recoverCommit(ctx, t, epochs); err != nil {
			return t.log.Fail(fmt.Errorf("recover commit of epochs %d..%d: %w",
				epochs[0].epoch, epochs[len(epochs)-1].epoch, err))
		}
		t.log.Restored(epochs[len(epochs)-1].epoch)
	}
	return nil
}

// PreCommit stores the records staged since the last PreCommit under
// epoch, with the output stream's end positions.
func (s *Stream) PreCommit(ctx context.Context, epoch uint64) error {
	t := s.txn
	if t == nil {
		return twophase.ErrNotOpen
	}
	if err := t.log.PreCommit(epoch); err != nil {
		return err
	}
	if len(t.staged) == 0 {
		return nil
	}
	ends, inc, err := s.shardEnds()
	if err != nil {
		return fmt.Errorf("stream sink %s: pre-commit %d: %w", s.cfg.Stream, epoch, err)
	}
	m := txnMarker{stream: s.cfg.Stream, inc: inc, records: uint64(len(t.staged)), ends: ends}
	b := t.sp.NewBatch()
	size := 0
	var enc []byte
	for recs := t.staged; len(recs) > 0; m.chunks++ {
		n := min(len(recs), maxPut)
		enc = encodeChunk(enc[:0], recs[:n])
		b.Set(chunkKey(epoch, m.chunks), enc)
		size += len(enc)
		recs = recs[n:]
		if size >= txnBatchBytes {
			if err := b.Commit(); err != nil {
				return fmt.Errorf("stream sink %s: pre-commit %d: %w", s.cfg.Stream, epoch, err)
			}
			b, size = t.sp.NewBatch(), 0
		}
	}
	b.Set(markerKey(epoch), encodeMarker(m))
	if err := b.Commit(); err != nil {
		return fmt.Errorf("stream sink %s: pre-commit %d: %w", s.cfg.Stream, epoch, err)
	}
	t.log.Add(epoch, stagedEpoch{epoch: epoch, marker: m, recs: t.staged})
	t.staged = nil
	return nil
}

// Commit appends the records of every pre-committed epoch <= epoch, in
// order, and forgets them.
func (s *Stream) Commit(ctx context.Context, epoch uint64) error {
	t := s.txn
	if t == nil {
		return twophase.ErrNotOpen
	}
	return t.log.Commit(epoch, func(_ uint64, e stagedEpoch) error {
		// The stream may have been deleted and created again since the
		// pre-commit: its records are not the new stream's. (A re-create
		// between this check and the Put is not caught.)
		if err := s.checkIncarnation(e.marker.stream, e.marker.inc, []stagedEpoch{e}); err != nil {
			return err
		}
		if err := s.putStaged(ctx, s.cfg.Stream, e.recs); err != nil {
			return err
		}
		return forget(t.sp, e)
	})
}

// recoverCommit finishes the commit of epochs restored from a checkpoint,
// each into the stream it was staged for.
func (s *Stream) recoverCommit(ctx context.Context, t *streamTxn, epochs []stagedEpoch) error {
	targets, by := byTarget(epochs, s.cfg.Stream)
	// Every target is checked before any is written to, so that a gone
	// one fails the restore before the others took their records.
	for _, k := range targets {
		if err := s.checkIncarnation(k.stream, k.inc, by[k]); err != nil {
			return err
		}
	}
	for _, k := range targets {
		if err := s.recoverInto(ctx, t, k.stream, by[k]); err != nil {
			return err
		}
	}
	return nil
}

// recoverInto appends to stream the records of epochs that an
// interrupted commit did not append, and forgets the epochs.
func (s *Stream) recoverInto(ctx context.Context, t *streamTxn, stream string, epochs []stagedEpoch) error {
	type recKey struct{ key, data string }
	// want counts the staged records; found, those already appended.
	want := map[recKey]int{}
	for _, e := range epochs {
		for _, r := range e.recs {
			want[recKey{r.PartitionKey, string(r.Data)}]++
		}
	}
	found := map[recKey]int{}
	info, err := s.cfg.Store.DescribeStream(stream)
	if err != nil || !epochs[0].marker.inc.matches(info) {
		// Deleted or created again since recoverCommit checked it.
		if cerr := s.checkIncarnation(stream, epochs[0].marker.inc, epochs); cerr != nil {
			return cerr
		}
		if err == nil {
			err = fmt.Errorf("%w: stream %q was created again during the restore", ErrStagedTargetGone, stream)
		}
		return err
	}
	// Positions only grow, so the oldest epoch's are the earliest.
	ends := epochs[0].marker.ends
	for _, sh := range info.Shards {
		from := uint64(0) // a shard created since: all of it
		if e, ok := ends[sh.Index]; ok {
			from = e + 1
		}
		for from <= sh.LastSeq {
			res, err := s.cfg.Store.Read(stream, sh.ID, from, 0, 0)
			if err != nil {
				return err
			}
			for _, r := range res.Records {
				k := recKey{r.PartitionKey, string(r.Data)}
				if want[k] > 0 {
					want[k]--
					found[k]++
				}
			}
			if res.Next <= from {
				break
			}
			from = res.Next
		}
	}
	var rest []streams.PutRecord
	for _, e := range epochs {
		for _, r := range e.recs {
			k := recKey{r.PartitionKey, string(r.Data)}
			if found[k] > 0 {
				found[k]--
				continue
			}
			rest = append(rest, r)
		}
	}
	if err := s.putStaged(ctx, stream, rest); err != nil {
		return err
	}
	for _, e := range epochs {
		if err := forget(t.sp, e); err != nil {
			return err
		}
	}
	return nil
}

// putStaged appends records durably to stream, maxPut at a time, in order.
func (s *Stream) putStaged(ctx context.Context, stream string, recs []streams.PutRecord) error {
	for len(recs) > 0 {
		n := min(len(recs), maxPut)
		var err error
		if s.put != nil {
			err = s.put(ctx, recs[:n])
		} else {
			_, err = s.cfg.Store.Put(ctx, stream, recs[:n])
		}
		if err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// shardEnds reads the last counter of every shard of the output stream,
// and its incarnation.
func (s *Stream) shardEnds() (map[int]uint64, incarnation, error) {
	info, err := s.cfg.Store.DescribeStream(s.cfg.Stream)
	if err != nil {
		return nil, incarnation{}, err
	}
	ends := make(map[int]uint64, len(info.Shards))
	for _, sh := range info.Shards {
		ends[sh.Index] = sh.LastSeq
	}
	return ends, incarnationOf(info), nil
}

// forget deletes an epoch's marker and chunks.
func forget(sp *state.Space, e stagedEpoch) error {
	b := sp.NewBatch()
	for c := range e.marker.chunks {
		b.Delete(chunkKey(e.epoch, c))
	}
	b.Delete(markerKey(e.epoch))
	return b.Commit()
}

// loadStaged reads the complete staged epochs of sp, oldest first, and
// deletes chunks that have no marker.
func loadStaged(sp *state.Space) ([]stagedEpoch, error) {
	markers := map[uint64]txnMarker{}
	err := sp.Scan([]byte{txnMarkerTag}, func(k, v []byte) error {
		if len(k) != 9 {
			return fmt.Errorf("%w: marker key %x", errStagedCorrupt, k)
		}
		m, err := decodeMarker(v)
		if err != nil {
			return err
		}
		markers[binary.BigEndian.Uint64(k[1:])] = m
		return nil
	})
	if err != nil {
		return nil, err
	}
	recs := map[uint64][]streams.PutRecord{}
	chunks := map[uint64]uint32{}
	var orphans [][]byte
	err = sp.Scan([]byte{txnChunkTag}, func(k, v []byte) error {
		if len(k) != 13 {
			return fmt.Errorf("%w: chunk key %x", errStagedCorrupt, k)
		}
		epoch, c := binary.BigEndian.Uint64(k[1:]), binary.BigEndian.Uint32(k[9:])
		m, ok := markers[epoch]
		if !ok {
			orphans = append(orphans, slices.Clone(k))
			return nil
		}
		if c != chunks[epoch] || c >= m.chunks {
			return fmt.Errorf("%w: epoch %d has chunk %d where %d of %d was expected", errStagedCorrupt, epoch, c, chunks[epoch], m.chunks)
		}
		chunks[epoch]++
		var err error
		recs[epoch], err = decodeChunk(recs[epoch], v)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(orphans) > 0 {
		b := sp.NewBatch()
		for _, k := range orphans {
			b.Delete(k)
		}
		if err := b.Commit(); err != nil {
			return nil, err
		}
	}
	var out []stagedEpoch
	for epoch, m := range markers {
		if chunks[epoch] != m.chunks || uint64(len(recs[epoch])) != m.records {
			return nil, fmt.Errorf("%w: epoch %d has %d chunks and %d records, marker says %d and %d",
				errStagedCorrupt, epoch, chunks[epoch], len(recs[epoch]), m.chunks, m.records)
		}
		out = append(out, stagedEpoch{epoch: epoch, marker: m, recs: recs[epoch]})
	}
	slices.SortFunc(out, func(a, b stagedEpoch) int { return cmp.Compare(a.epoch, b.epoch) })
	return out, nil
}

// errStagedCorrupt marks staged sink state that does not decode.
var errStagedCorrupt = errors.New("sinks: staged records damaged")

func markerKey(epoch uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{txnMarkerTag}, epoch)
}

func chunkKey(epoch uint64, chunk uint32) []byte {
	k := make([]byte, 13)
	k[0] = txnChunkTag
	binary.BigEndian.PutUint64(k[1:], epoch)
	binary.BigEndian.PutUint32(k[9:], chunk)
	return k
}

func encodeMarker(m txnMarker) []byte {
	b := []byte{txnVersion}
	b = binary.AppendUvarint(b, uint64(len(m.stream)))
	b = append(b, m.stream...)
	b = binary.AppendUvarint(b, uint64(max(m.inc.created, 0)))
	b = binary.AppendUvarint(b, m.inc.seqTag)
	b = binary.AppendUvarint(b, uint64(m.chunks))
	b = binary.AppendUvarint(b, m.records)
	b = binary.AppendUvarint(b, uint64(len(m.ends)))
	idx := make([]int, 0, len(m.ends))
	for i := range m.ends {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		b = binary.AppendUvarint(b, uint64(i))
		b = binary.AppendUvarint(b, m.ends[i])
	}
	return b
}

func decodeMarker(b []byte) (txnMarker, error) {
	d := decoder{b: b}
	if len(b) == 0 || b[0] < 1 || b[0] > txnVersion {
		return txnMarker{}, fmt.Errorf("%w: marker version %x", errStagedCorrupt, b[:min(len(b), 1)])
	}
	d.b = d.b[1:]
	var m txnMarker
	if b[0] >= 2 {
		m.stream = string(d.bytes())
	}
	if b[0] >= 3 {
		m.inc.created, m.inc.seqTag = int64(d.uvarint(1<<63-1)), d.uvarint(1<<63)
	}
	m.chunks, m.records = uint32(d.uvarint(1<<32)), d.uvarint(1<<62)
	n := d.uvarint(1 << 20)
	m.ends = make(map[int]uint64, n)
	for range n {
		i := int(d.uvarint(1 << 31))
		m.ends[i] = d.uvarint(1 << 63)
	}
	if d.err != nil || len(d.b) != 0 {
		return txnMarker{}, fmt.Errorf("%w: marker", errStagedCorrupt)
	}
	return m, nil
}

func encodeChunk(b []byte, recs []streams.PutRecord) []byte {
	for _, r := range recs {
		b = binary.AppendUvarint(b, uint64(len(r.PartitionKey)))
		b = append(b, r.PartitionKey...)
		b = binary.AppendUvarint(b, uint64(len(r.Data)))
		b = append(b, r.Data...)
	}
	return b
}

// decodeChunk appends the records of a chunk to recs; their data is
// copied out of b.
func decodeChunk(recs []streams.PutRecord, b []byte) ([]streams.PutRecord, error) {
	d := decoder{b: b}
	for len(d.b) > 0 && d.err == nil {
		key := d.bytes()
		data := d.bytes()
		if d.err == nil {
			recs = append(recs, streams.PutRecord{PartitionKey: string(key), Data: slices.Clone(data)})
		}
	}
	if d.err != nil {
		return recs, fmt.Errorf("%w: chunk", errStagedCorrupt)
	}
	return recs, nil
}

// decoder reads uvarints and length-prefixed bytes, remembering the first
// error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > limit {
		d.err = errStagedCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint(1 << 62)
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errStagedCorrupt
	}
	if d.err != nil {
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}
