package streams

import "sync/atomic"

// WriteStats counts the log's writes since the store opened: the commit
// groups written to segment files, the records they held, and the syncs
// (fdatasync, or fsync when a segment is sealed) that made them durable.
// Records over Syncs is what group commit achieves: every sync costs about
// the same whatever it carries.
type WriteStats struct {
	Groups, Records, Syncs int64
}

// writeCounters are a Store's WriteStats.
type writeCounters struct {
	groups, records, syncs atomic.Int64
	prefilled              atomic.Int64 // zero bytes written ahead of records
}

// WriteStats returns the log's write counts so far.
func (s *Store) WriteStats() WriteStats {
	return WriteStats{Groups: s.writes.groups.Load(), Records: s.writes.records.Load(), Syncs: s.writes.syncs.Load()}
}
