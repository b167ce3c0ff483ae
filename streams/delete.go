package streams

import (
	"fmt"
	"strings"
)

// A delete is whole across a crash. Its steps:
//
//  1. stop the stream's writers;
//  2. rename its directory D to the tombstone D.deleted and sync streams/:
//     from here the delete stands;
//  3. write the metadata without the stream;
//  4. remove the tombstone and sync streams/.
//
// A start after a crash between 2 and 3 finds the metadata naming D while
// only D.deleted exists: it drops the stream from the metadata and writes
// it, then removes the tombstone (tidyStreamDirs). A tombstone the metadata
// does not name (a crash in 4) is removed. Stream directories never hold a
// '.' (sanitize), so no live directory ends in the suffix.
const tombstoneSuffix = ".deleted"

// DeleteStream removes a stream and its data. Once it returned, the stream
// stays gone after a crash; a crash during it leaves the stream whole or
// gone, never a directory to report. If the delete cannot start (its
// directory cannot be renamed), the stream is opened again and stays.
//
// The stream leaves the store's map first, so that a reader woken by its
// shards closing finds it gone (not a shard read to its end); metaMu is
// held until the metadata is written, so that no other change writes
// metadata without the stream before its tombstone is durable.
func (s *Store) DeleteStream(name string) error {
	st, err := s.get("delete stream", name)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.deleted {
		// Another delete won the race; the name may be a new stream's now.
		return notFound("delete stream", name)
	}
	st.deleted = true
	s.metaMu.Lock()
	dir := st.meta.Dir
	s.mu.Lock()
	delete(s.mu.streams, name)
	s.mu.Unlock()
	// Writers take no metaMu: stopping them under it cannot deadlock.
	for _, sh := range st.shards {
		sh.closeForWrites()
		sh.stopWriter()
		sh.closeFiles()
	}
	root := s.fs.PathJoin(s.dir, "streams")
	if err := s.entomb(root, dir); err != nil {
		s.reopenStream(st)
		s.metaMu.Unlock()
		return fmt.Errorf("delete stream %s: %w", name, err)
	}
	err = s.persist()
	s.metaMu.Unlock()
	if err != nil {
		// The tombstone stands for the delete: the next start finishes
		// it, and the next change of the metadata records it.
		s.log.Warn("record the deletion in the stream metadata; the next start finishes it", "stream", name, "err", err)
		return nil
	}
	s.removeTombstones([]string{dir + tombstoneSuffix})
	return nil
}

// entomb renames the directory dir of streams/ to its tombstone name and
// syncs streams/. When the sync fails the rename is undone, so that the
// caller's error means the stream is whole.
func (s *Store) entomb(root, dir string) error {
	from, to := s.fs.PathJoin(root, dir), s.fs.PathJoin(root, dir+tombstoneSuffix)
	if !isNotExist(s.fs, to) {
		// A tombstone of an earlier incarnation (CreateStream avoids
		// directory names with one): it is garbage.
		if err := s.fs.RemoveAll(to); err != nil {
			return fmt.Errorf("remove old tombstone %s: %w", to, err)
		}
	}
	if err := s.fs.Rename(from, to); err != nil {
		return fmt.Errorf("rename %s to %s: %w", from, to, err)
	}
	if err := syncDir(s.fs, root); err != nil {
		if s.fs.Rename(to, from) == nil {
			return err
		}
		// Neither synced nor undone: go on with the delete, which a
		// start finishes if the rename survived a crash.
		s.log.Error("sync the renamed directory of a deleted stream", "path", to, "err", err)
	}
	return nil
}

// reopenStream opens again a stream whose delete failed before it stood:
// its shards were stopped, so it gets new ones from its files. Caller
// holds metaMu.
func (s *Store) reopenStream(old *stream) {
	st, err := s.recoverStream(old.meta)
	if err != nil {
		s.log.Error("open a stream again after its delete failed; it takes no records until a restart", "stream", old.name, "err", err)
		return
	}
	s.mu.Lock()
	s.mu.streams[old.name] = st
	s.mu.Unlock()
	for _, sh := range st.shards {
		if !sh.mu.closed {
			s.startShard(sh)
		}
	}
}

// removeTombstones removes tombstone directories of streams/ and syncs it.
func (s *Store) removeTombstones(names []string) {
	if len(names) == 0 {
		return
	}
	root := s.fs.PathJoin(s.dir, "streams")
	for _, n := range names {
		if err := s.fs.RemoveAll(s.fs.PathJoin(root, n)); err != nil {
			s.log.Warn("remove a deleted stream's files", "path", s.fs.PathJoin(root, n), "err", err)
		}
	}
	if err := syncDir(s.fs, root); err != nil {
		s.log.Warn("sync the streams directory after removing deleted streams", "err", err)
	}
}

// tidyStreamDirs finishes, before the streams open, what a crash left
// under streams/: a stream whose directory is gone while its tombstone
// exists was being deleted, and is dropped from m (dropped: m must be
// written); every tombstone is returned, to be removed once m is written;
// the other directories no stream names go to reportOrphans.
func (s *Store) tidyStreamDirs(m *metaFile) (dropped bool, tombs []string, err error) {
	dirs, err := s.streamDirs()
	if err != nil {
		return false, nil, err
	}
	present := map[string]bool{}
	for _, d := range dirs {
		present[d] = true
	}
	kept := m.Streams[:0]
	for _, sm := range m.Streams {
		if !present[sm.Dir] && present[sm.Dir+tombstoneSuffix] {
			s.log.Info("finishing the delete of a stream that a crash interrupted", "stream", sm.Name, "dir", sm.Dir)
			dropped = true
			continue
		}
		kept = append(kept, sm)
	}
	m.Streams = kept
	known := map[string]bool{}
	for _, sm := range m.Streams {
		known[sm.Dir] = true
	}
	var others []string
	for _, d := range dirs {
		if strings.HasSuffix(d, tombstoneSuffix) && !known[d] {
			tombs = append(tombs, d)
		} else {
			others = append(others, d)
		}
	}
	return dropped, tombs, s.reportOrphans(m, others)
}
