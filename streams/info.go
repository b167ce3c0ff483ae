package streams

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// What a stream looks like from outside: its description and list, and
// the editable part of its metadata.

// Stream statuses, as Kinesis names them.
const (
	StatusCreating = "CREATING"
	StatusActive   = "ACTIVE"
	StatusUpdating = "UPDATING"
)

// StreamInfo describes a stream.
type StreamInfo struct {
	Name    string
	Status  string
	Created time.Time
	// SeqTag is the stream's sequence tag, part of every sequence number
	// it issues (see seq.go); 0 for a stream created before tags existed.
	SeqTag         uint64
	RetentionHours int
	Tags           map[string]string
	Attrs          map[string]string
	Shards         []ShardInfo // by index
}

// ShardInfo describes a shard.
type ShardInfo struct {
	ID             string
	Index          int
	SeqTag         uint64 // the stream's
	Range          HashRange
	Parent         string // "" for an original shard
	AdjacentParent string // the other parent of a merge
	Children       []string
	Open           bool
	EndingSeq      uint64 // last counter, when closed
	Created        time.Time
	Closed         time.Time // zero while open
	TrimSeq        uint64    // counter of the oldest kept record
	LastSeq        uint64    // counter of the newest durable record (0: none yet)
	// Traffic since the store opened: record bytes appended, records
	// returned by reads, and how far behind the tip the latest read was.
	BytesIn, RecordsRead int64
	MillisBehind         int64
	// DiskBytes is the size of the shard's segment files now (what it
	// keeps on disk; trimmed segments are gone).
	DiskBytes int64
	// Expired: closed longer ago than the retention, so it holds no
	// records any more (Kinesis stops listing such shards).
	Expired bool
	// Lost lists acknowledged records found missing when the store opened
	// (see LostRange); DiskFull says the shard refuses writes now because
	// the disk is full.
	Lost     []LostRange
	DiskFull bool
}

// StartingSequenceNumber is the public starting sequence number.
func (si ShardInfo) StartingSequenceNumber() string { return FormatSeq(si.SeqTag, si.Index, 0) }

// EndingSequenceNumber is the public ending sequence number ("" while open).
func (si ShardInfo) EndingSequenceNumber() string {
	if si.Open {
		return ""
	}
	return FormatSeq(si.SeqTag, si.Index, si.EndingSeq)
}

func (s *Store) info(st *stream) StreamInfo {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	return s.infoLocked(st)
}

// infoLocked builds a StreamInfo; caller holds metaMu.
func (s *Store) infoLocked(st *stream) StreamInfo {
	m := st.meta
	now := s.opts.Now()
	in := StreamInfo{Name: m.Name, Status: StatusActive, Created: m.Created, SeqTag: m.SeqTag, RetentionHours: m.RetentionHours,
		Tags: cloneMap(m.Tags), Attrs: cloneMap(m.Attrs)}
	if m.Pending != "" && now.Before(m.PendingUntil) {
		in.Status = m.Pending
	}
	children := map[string][]string{}
	for _, sm := range m.Shards {
		id := ShardID(sm.Index)
		if sm.Parent != "" {
			children[sm.Parent] = append(children[sm.Parent], id)
		}
		if sm.AdjacentParent != "" {
			children[sm.AdjacentParent] = append(children[sm.AdjacentParent], id)
		}
	}
	for _, sm := range m.Shards {
		si := ShardInfo{ID: ShardID(sm.Index), Index: sm.Index, SeqTag: m.SeqTag, Range: sm.Range, Parent: sm.Parent,
			AdjacentParent: sm.AdjacentParent, Open: sm.EndingSeq == nil, Created: sm.Created}
		si.Children = children[si.ID]
		si.Lost = slices.Clone(sm.Lost)
		if sm.EndingSeq != nil {
			si.EndingSeq = *sm.EndingSeq
			si.Closed = *sm.Closed
			si.Expired = now.Sub(*sm.Closed) > time.Duration(m.RetentionHours)*time.Hour
		}
		if sh := st.shards[sm.Index]; sh != nil {
			v := sh.view()
			si.TrimSeq, si.LastSeq = v.trimHorizon(), v.visible
			si.DiskBytes = v.diskBytes()
			si.BytesIn, si.RecordsRead, si.MillisBehind = sh.bytesIn.Load(), sh.recordsRead.Load(), sh.behindMs.Load()
			sh.mu.Lock()
			si.DiskFull = sh.mu.full != nil
			sh.mu.Unlock()
		}
		in.Shards = append(in.Shards, si)
	}
	sort.Slice(in.Shards, func(i, j int) bool { return in.Shards[i].Index < in.Shards[j].Index })
	return in
}

// DescribeStream returns a stream's metadata and shards.
func (s *Store) DescribeStream(name string) (StreamInfo, error) {
	st, err := s.get("describe stream", name)
	if err != nil {
		return StreamInfo{}, err
	}
	return s.info(st), nil
}

// StreamCreated returns when a stream was created (StreamInfo.Created)
// without describing it: the time tells one stream of a name from another
// created after it was deleted.
func (s *Store) StreamCreated(name string) (time.Time, error) {
	st, err := s.get("describe stream", name)
	if err != nil {
		return time.Time{}, err
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	return st.meta.Created, nil
}

// SeqTag returns a stream's sequence tag (StreamInfo.SeqTag) without
// describing it.
func (s *Store) SeqTag(name string) (uint64, error) {
	st, err := s.get("describe stream", name)
	if err != nil {
		return 0, err
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	return st.meta.SeqTag, nil
}

// ListStreams returns every stream, sorted by name.
func (s *Store) ListStreams() []StreamInfo {
	sts := s.streamList()
	sort.Slice(sts, func(i, j int) bool { return sts[i].name < sts[j].name })
	out := make([]StreamInfo, len(sts))
	for i, st := range sts {
		out[i] = s.info(st)
	}
	return out
}

// UpdateStream changes a stream's retention, tags or attributes
// atomically: fn edits a copy, which is validated and persisted.
func (s *Store) UpdateStream(name string, fn func(u *StreamUpdate) error) error {
	const op = "update stream"
	st, err := s.get(op, name)
	if err != nil {
		return err
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	m := st.meta
	u := StreamUpdate{RetentionHours: m.RetentionHours, Tags: cloneMap(m.Tags), Attrs: cloneMap(m.Attrs)}
	if u.Tags == nil {
		u.Tags = map[string]string{}
	}
	if u.Attrs == nil {
		u.Attrs = map[string]string{}
	}
	if err := fn(&u); err != nil {
		return err
	}
	if err := validateRetention(op, u.RetentionHours); err != nil {
		return err
	}
	old := st.meta
	nm := old.clone()
	nm.RetentionHours, nm.Tags, nm.Attrs = u.RetentionHours, u.Tags, u.Attrs
	st.meta = nm
	if err := s.persist(); err != nil {
		st.meta = old
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	return nil
}

// StreamUpdate is the editable part of a stream's metadata.
type StreamUpdate struct {
	RetentionHours int
	Tags           map[string]string
	Attrs          map[string]string
}
