package streams

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Each shard's last durable position — the counter of its newest record
// known to be on disk — is recorded in the metadata every
// Options.DurableInterval (when it moved) and when the store closes. At the
// next start a log that ends below it has lost acknowledged records: a
// truncated or deleted segment, a restored old copy of the directory. That
// is reported loudly (an ERROR, a CorruptionError, a Problem, and the range
// in the shard's metadata, which the API shows), and the shard's counters
// continue above the lost ones, so that a consumer's checkpoint never
// points at a reissued sequence number. A torn tail beyond the durable
// position (a crash in the middle of a write) loses nothing acknowledged
// and is truncated quietly, as before.

// checkDurable compares a recovered shard with its recorded durable
// position. It runs in Open, which owns the metadata.
func (s *Store) checkDurable(sm *streamMeta, m *shardMeta, sh *shard) {
	got := sh.mu.visible
	sh.mu.durable = got
	if m.DurableSeq <= got {
		return
	}
	if m.EndingSeq != nil && (len(sh.mu.segs) == 0 || s.opts.Now().Sub(*m.Closed) > time.Duration(sm.RetentionHours)*time.Hour) {
		// Retention removes every segment of a closed shard once its
		// records are old enough (an open shard keeps an empty one named
		// by its next counter), so no segments is not a loss there.
		return
	}
	lost := LostRange{From: got + 1, To: m.DurableSeq, Found: s.opts.Now().UTC(),
		Reason: "the log ends before the shard's last durable position (a segment was truncated or removed)"}
	m.Lost = append(m.Lost, lost)
	sh.known = m.Lost
	sh.mu.nextSeq = max(sh.mu.nextSeq, m.DurableSeq+1)
	sh.mu.visible = max(sh.mu.visible, m.DurableSeq)
	sh.mu.durable = m.DurableSeq
	file := sh.dir
	if n := len(sh.mu.segs); n > 0 {
		file = sh.mu.segs[n-1].path
	}
	msg := fmt.Sprintf("records %d to %d (%d acknowledged records) are missing: %s; new records get positions after %d",
		lost.From, lost.To, lost.To-lost.From+1, lost.Reason, lost.To)
	s.noteCorruption(&CorruptionError{Stream: sm.Name, Shard: sh.id, File: file, Reason: msg})
	s.noteProblem(Problem{Kind: ProblemLostRecords, Stream: sm.Name, Shard: sh.id, Path: file,
		Message: "acknowledged records lost: " + msg + "; restore the shard's files from a backup if there is one"})
	s.mu.Lock()
	s.mu.lossFound = true
	s.mu.Unlock()
}

// knownLost reports whether the counters from..to lie in a loss already
// recorded, so that a gap it left between segments is not reported again
// at every start.
func (sh *shard) knownLost(from, to uint64) bool {
	for _, l := range sh.known {
		if l.From <= from && to <= l.To {
			return true
		}
	}
	return false
}

// durablePos is the counter of the shard's newest record known durable.
func (sh *shard) durablePos() uint64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.mu.durable
}

// noteDurable copies every shard's durable position into the metadata and
// reports whether the metadata changed (or, at open, needs writing because
// of what was found). It takes the locks in their order: each stream's,
// then metaMu.
func (s *Store) noteDurable(atOpen bool) bool {
	s.mu.Lock()
	sts := slices.Collect(maps.Values(s.mu.streams))
	changed := atOpen && (s.mu.lossFound || len(s.mu.problems) > 0)
	s.mu.Unlock()
	type pos struct {
		st    *stream
		index int
		seq   uint64
	}
	var ps []pos
	for _, st := range sts {
		st.mu.RLock()
		for idx, sh := range st.shards {
			ps = append(ps, pos{st, idx, sh.durablePos()})
		}
		st.mu.RUnlock()
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	for _, p := range ps {
		for _, m := range p.st.meta.Shards {
			if m.Index == p.index && p.seq > m.DurableSeq {
				m.DurableSeq = p.seq
				changed = true
			}
		}
	}
	return changed
}

// recordDurable writes the durable positions when they moved. A failure
// (a full disk) is logged once until a write succeeds again.
func (s *Store) recordDurable() {
	if !s.noteDurable(false) {
		return
	}
	s.metaMu.Lock()
	err := s.persist()
	s.metaMu.Unlock()
	s.mu.Lock()
	first := err != nil && !s.mu.durableFailing
	s.mu.durableFailing = err != nil
	s.mu.Unlock()
	if first {
		s.log.Error("record durable positions in the stream metadata (retrying; the records themselves are safe)", "err", err)
	}
}
