package streams

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Problem is damage or doubt found in the data directory when the store
// opened (besides damaged records, see CorruptionError): each is logged as
// an ERROR, counted by kind in the metrics and listed by the API until the
// server restarts, so that an operator sees it.
type Problem struct {
	Kind    string    `json:"kind"` // one of the Problem* kinds
	Stream  string    `json:"stream,omitempty"`
	Shard   string    `json:"shard,omitempty"`
	Path    string    `json:"path,omitempty"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// Problem kinds.
const (
	// ProblemMetadataRecovered: streams.json was missing or damaged and
	// the store opened from streams.json.prev, which can be one change
	// older.
	ProblemMetadataRecovered = "metadata_recovered"
	// ProblemOrphanDirectory: a directory under streams/ that no stream's
	// metadata names (its records are not served).
	ProblemOrphanDirectory = "orphan_directory"
	// ProblemLostRecords: a shard's log ends before its last durable
	// position: acknowledged records are gone.
	ProblemLostRecords = "lost_records"
)

// Problems lists what was found wrong when the store opened.
func (s *Store) Problems() []Problem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Problem(nil), s.mu.problems...)
}

func (s *Store) noteProblem(p Problem) {
	p.Time = s.opts.Now().UTC()
	args := []any{"kind", p.Kind}
	if p.Stream != "" {
		args = append(args, "stream", p.Stream)
	}
	if p.Shard != "" {
		args = append(args, "shard", p.Shard)
	}
	if p.Path != "" {
		args = append(args, "path", p.Path)
	}
	s.log.Error(p.Message, args...)
	s.mu.Lock()
	s.mu.problems = append(s.mu.problems, p)
	s.mu.Unlock()
}

// errMetaMissing: the metadata file does not exist.
var errMetaMissing = errors.New("missing")

// readMetaFile reads and checks one metadata file strictly: the version is
// required, unknown fields and trailing data are refused, and the streams
// must be consistent (valid unique names and directories, unique shard
// indexes).
func readMetaFile(fs vfs.FS, path string) (*metaFile, []byte, error) {
	b, err := readFile(fs, path)
	if err != nil {
		if oserrorIsNotExist(err) {
			return nil, nil, errMetaMissing
		}
		return nil, nil, fmt.Errorf("read: %w", err)
	}
	m, err := parseMeta(b)
	return m, b, err
}

func parseMeta(b []byte) (*metaFile, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m struct {
		Version *int          `json:"version"`
		Streams []*streamMeta `json:"streams"`
	}
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not valid stream metadata: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not valid stream metadata: data after the JSON value")
	}
	if m.Version == nil {
		return nil, errors.New(`"version" is missing`)
	}
	if *m.Version != metaVersion {
		return nil, fmt.Errorf("version %d is not supported (this runnel reads version %d)", *m.Version, metaVersion)
	}
	names, dirs := map[string]bool{}, map[string]bool{}
	for i, sm := range m.Streams {
		if sm == nil {
			return nil, fmt.Errorf("streams[%d] is null", i)
		}
		if err := ValidateStreamName(sm.Name); err != nil {
			return nil, fmt.Errorf("streams[%d]: %w", i, err)
		}
		if names[sm.Name] {
			return nil, fmt.Errorf("streams[%d]: stream %q is listed twice", i, sm.Name)
		}
		if sm.Dir == "" || sm.Dir == "." || sm.Dir == ".." || strings.ContainsAny(sm.Dir, `/\`) || dirs[sm.Dir] {
			return nil, fmt.Errorf("streams[%d] (%s): directory %q is empty, not a plain name, or used twice", i, sm.Name, sm.Dir)
		}
		names[sm.Name], dirs[sm.Dir] = true, true
		if len(sm.Shards) == 0 {
			return nil, fmt.Errorf("streams[%d] (%s): no shards", i, sm.Name)
		}
		idx := map[int]bool{}
		for j, sh := range sm.Shards {
			if sh == nil || sh.Index < 0 || sh.Index >= sm.NextShardIndex || idx[sh.Index] {
				return nil, fmt.Errorf("streams[%d] (%s): shards[%d] is null, out of range or repeated", i, sm.Name, j)
			}
			idx[sh.Index] = true
		}
	}
	return &metaFile{Version: *m.Version, Streams: m.Streams}, nil
}

// loadMeta reads the stream metadata of dir: streams.json, or its previous
// copy when the main file is missing or damaged (an ERROR and a Problem).
// It refuses to guess: when neither is good and stream directories exist,
// the store does not open. It returns the bytes it read, which become the
// previous copy at the next change.
func (s *Store) loadMeta() (*metaFile, []byte, error) {
	main := s.fs.PathJoin(s.dir, metaFileName)
	prev := main + ".prev"
	m, b, errMain := readMetaFile(s.fs, main)
	if errMain == nil {
		return m, b, nil
	}
	pm, pb, errPrev := readMetaFile(s.fs, prev)
	if errors.Is(errMain, errMetaMissing) && errors.Is(errPrev, errMetaMissing) {
		dirs, err := s.streamDirs()
		if err != nil {
			return nil, nil, err
		}
		// Tombstones are deleted streams (delete.go): no metadata needed.
		dirs = slices.DeleteFunc(dirs, func(d string) bool { return strings.HasSuffix(d, tombstoneSuffix) })
		if len(dirs) == 0 {
			// A new data directory. Its (empty) metadata is written at
			// once, before any stream directory can exist, so that stream
			// directories without metadata always mean lost metadata.
			m := &metaFile{Version: metaVersion, Streams: []*streamMeta{}}
			b, err := json.MarshalIndent(m, "", " ")
			if err == nil {
				err = WriteFileAtomic(s.fs, main, slices.Clone(b)) // b is kept: see persist
			}
			if err != nil {
				return nil, nil, fmt.Errorf("create %s: %w", main, err)
			}
			return m, b, nil
		}
		return nil, nil, fmt.Errorf("%s and its copy %s are both missing, but %s holds %d stream directories (%s): "+
			"refusing to start with no streams; restore %s from a backup, or move the stream directories away to start empty: %w",
			main, prev, s.fs.PathJoin(s.dir, "streams"), len(dirs), strings.Join(firstN(dirs, 3), ", "), metaFileName, ErrCorrupt)
	}
	if errPrev != nil {
		return nil, nil, fmt.Errorf("stream metadata is unusable: %s: %v; %s: %v; restore %s from a backup: %w",
			main, errMain, prev, errPrev, metaFileName, ErrCorrupt)
	}
	what := "missing"
	if !errors.Is(errMain, errMetaMissing) {
		what = "damaged (" + errMain.Error() + ")"
		// Keep the damaged file for inspection; the next change writes a
		// new one.
		kept := fmt.Sprintf("%s.damaged-%d", main, s.opts.Now().UnixNano())
		if err := s.fs.Rename(main, kept); err == nil {
			what += ", kept as " + kept
		}
	}
	s.noteProblem(Problem{Kind: ProblemMetadataRecovered, Path: main,
		Message: fmt.Sprintf("stream metadata %s is %s: opened from its previous copy %s, which can miss the last change (a stream created, deleted or resharded just before); check the streams", metaFileName, what, prev)})
	return pm, pb, nil
}

// streamDirs lists the directories under streams/.
func (s *Store) streamDirs() ([]string, error) {
	root := s.fs.PathJoin(s.dir, "streams")
	names, err := s.fs.List(root)
	if err != nil {
		if oserrorIsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	var out []string
	for _, n := range names {
		if st, err := s.fs.Stat(s.fs.PathJoin(root, n)); err == nil && st.IsDir() {
			out = append(out, n)
		}
	}
	return out, nil
}

// reportOrphans reports every directory of dirs (under streams/) that no
// stream's metadata names: records there are not served. They are left
// alone.
func (s *Store) reportOrphans(m *metaFile, dirs []string) error {
	known := map[string]bool{}
	for _, sm := range m.Streams {
		known[sm.Dir] = true
	}
	for _, d := range dirs {
		if known[d] {
			continue
		}
		path := s.fs.PathJoin(s.dir, "streams", d)
		if n, err := s.countSegments(path); err == nil && n == 0 {
			// No segment was ever written: a stream whose creation did not
			// finish (a crash before its metadata was written). Nothing
			// was acknowledged there.
			s.log.Info("removing the directory of a stream whose creation did not finish", "path", path)
			if err := s.fs.RemoveAll(path); err != nil {
				s.log.Warn("remove unfinished stream directory", "path", path, "err", err)
			}
			continue
		}
		s.noteProblem(Problem{Kind: ProblemOrphanDirectory, Path: path,
			Message: fmt.Sprintf("stream directory %s is named by no stream's metadata: its records are not served; restore %s from a backup if it held a live stream, or remove the directory", path, metaFileName)})
	}
	return nil
}

// countSegments counts the segment files in a stream directory's shards.
func (s *Store) countSegments(dir string) (int, error) {
	shards, err := s.fs.List(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, sh := range shards {
		names, err := s.fs.List(s.fs.PathJoin(dir, sh))
		if err != nil {
			continue
		}
		for _, f := range names {
			if strings.HasSuffix(f, ".seg") {
				n++
			}
		}
	}
	return n, nil
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "...")
	}
	return s
}
