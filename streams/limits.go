package streams

import (
	"fmt"
	"time"
)

// Server-wide limits, as Kinesis has account limits: every open shard
// costs a writer and segment files, and every stream metadata, so a server
// holds a bounded number of them.
const (
	DefaultMaxStreams      = 1000
	DefaultMaxOpenShards   = 4096
	DefaultDurableInterval = 2 * time.Second
)

// Limits are the caps a store enforces and how much of them is in use.
type Limits struct {
	MaxStreams, Streams       int
	MaxOpenShards, OpenShards int
	Files                     FileCacheStats
}

// Limits reports the store's caps and their use.
func (s *Store) Limits() Limits {
	s.metaMu.Lock()
	streams, shards := s.countLocked(nil)
	s.metaMu.Unlock()
	return Limits{MaxStreams: s.opts.MaxStreams, Streams: streams, MaxOpenShards: s.opts.MaxOpenShards, OpenShards: shards, Files: s.files.stats()}
}

// countLocked counts the streams and their open shards, leaving out skip.
// Caller holds metaMu.
func (s *Store) countLocked(skip *stream) (streams, openShards int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.mu.streams {
		if st == skip {
			continue
		}
		streams++
		for _, m := range st.meta.Shards {
			if m.EndingSeq == nil {
				openShards++
			}
		}
	}
	return streams, openShards
}

// checkLimits refuses a change that leaves the store with more than its
// streams or open shards: newStream says a stream is added, and open is the
// open shards that st (new or resharded) will have. Caller holds metaMu.
func (s *Store) checkLimits(op string, st *stream, newStream bool, open int) error {
	streams, shards := s.countLocked(st)
	if newStream && streams+1 > s.opts.MaxStreams {
		return &Error{Op: op, Field: "name", Err: ErrLimitExceeded,
			Msg: fmt.Sprintf("the server holds %d streams, its limit (runnel serve --max-streams); delete a stream or raise the limit", streams)}
	}
	if shards+open > s.opts.MaxOpenShards {
		return &Error{Op: op, Field: "shards", Err: ErrLimitExceeded,
			Msg: fmt.Sprintf("the server would hold %d open shards, more than its limit of %d (runnel serve --max-shards); %d are open in other streams", shards+open, s.opts.MaxOpenShards, shards)}
	}
	return nil
}

// DiskFullStats says how a full disk affects the store now.
type DiskFullStats struct {
	// Shards refusing writes now because the disk is full, and writes
	// refused for a full disk since the store opened.
	Shards, RefusedWrites int64
}

// DiskFull reports the shards stopped by a full disk.
func (s *Store) DiskFull() DiskFullStats {
	return DiskFullStats{Shards: s.shardsFull.Load(), RefusedWrites: s.diskFullWrites.Load()}
}
