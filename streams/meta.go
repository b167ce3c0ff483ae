package streams

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Metadata — streams, shards, lineage, retention, tags, each shard's last
// durable position — lives in one JSON file, replaced atomically (write
// temp, fsync, rename, fsync directory) on every change. Before each
// replacement the previous contents are written to streams.json.prev, so
// that a lost or damaged main file can be recovered from its copy (see
// metaload.go). Records never go through it.
const (
	metaFileName = "streams.json"
	metaVersion  = 1
)

type metaFile struct {
	Version int           `json:"version"`
	Streams []*streamMeta `json:"streams"`
}

type streamMeta struct {
	Name    string    `json:"name"`
	Dir     string    `json:"dir"`
	Created time.Time `json:"created"`
	// SeqTag is the stream's sequence tag (see seq.go); 0 for a stream
	// created before tags existed, whose metadata has none.
	SeqTag         uint64            `json:"seq_tag,omitempty"`
	RetentionHours int               `json:"retention_hours"`
	Tags           map[string]string `json:"tags,omitempty"`
	Attrs          map[string]string `json:"attrs,omitempty"`
	Pending        string            `json:"pending,omitempty"`
	PendingUntil   time.Time         `json:"pending_until,omitempty"`
	NextShardIndex int               `json:"next_shard_index"`
	Shards         []*shardMeta      `json:"shards"`
}

type shardMeta struct {
	Index          int        `json:"index"`
	Range          HashRange  `json:"range"`
	Parent         string     `json:"parent,omitempty"`
	AdjacentParent string     `json:"adjacent_parent,omitempty"`
	EndingSeq      *uint64    `json:"ending_seq,omitempty"`
	Created        time.Time  `json:"created"`
	Closed         *time.Time `json:"closed,omitempty"`
	// DurableSeq is the last counter known durable (recorded every
	// Options.DurableInterval): a log that ends below it at the next start
	// lost acknowledged records.
	DurableSeq uint64 `json:"durable_seq,omitempty"`
	// Lost lists the acknowledged records found missing at a start; kept so
	// that the loss stays visible.
	Lost []LostRange `json:"lost,omitempty"`
}

// LostRange is a run of acknowledged records found missing when the store
// opened: the shard's log ended before its last durable position.
type LostRange struct {
	From   uint64    `json:"from"` // counters, inclusive
	To     uint64    `json:"to"`
	Found  time.Time `json:"found"` // when the loss was found
	Reason string    `json:"reason"`
}

func (m *streamMeta) clone() *streamMeta {
	c := *m
	c.Tags = cloneMap(m.Tags)
	c.Attrs = cloneMap(m.Attrs)
	c.Shards = make([]*shardMeta, len(m.Shards))
	for i, s := range m.Shards {
		sc := *s
		sc.Lost = slices.Clone(s.Lost)
		c.Shards[i] = &sc
	}
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func isNotExist(fs vfs.FS, path string) bool {
	_, err := fs.Stat(path)
	return err != nil && oserrorIsNotExist(err)
}

// WriteFileAtomic replaces path with data so that a crash leaves either the
// old or the new contents: write a temporary file, fsync it, rename it over
// path, fsync the directory. The job manager uses it for job files too.
// Each call has a temporary file of its own (PATH.N.tmp), so that two
// writers of one path do not write or rename each other's; the last rename
// wins. A crash may leave a temporary file; its name ends in ".tmp", which
// the directories' readers skip (and a shard's recovery removes).
func WriteFileAtomic(fs vfs.FS, path string, data []byte) error {
	tmp := fmt.Sprintf("%s.%d.tmp", path, tmpSeq.Add(1))
	if err := writeSynced(fs, tmp, data); err != nil {
		fs.Remove(tmp)
		return err
	}
	if err := fs.Rename(tmp, path); err != nil {
		fs.Remove(tmp)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return syncDir(fs, fs.PathDir(path))
}

// tmpSeq numbers WriteFileAtomic's temporary files.
var tmpSeq atomic.Uint64

// writeSynced creates path with data and syncs it.
func writeSynced(fs vfs.FS, path string, data []byte) error {
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// mkdirAllSynced creates dir and its missing parents, syncing each parent
// that gained an entry so that the new directories survive a crash (a
// segment synced inside a directory whose own entry was lost is lost too).
func mkdirAllSynced(fs vfs.FS, dir string) error {
	var missing []string
	for d := dir; isNotExist(fs, d); {
		missing = append(missing, d)
		p := fs.PathDir(d)
		if p == d {
			break
		}
		d = p
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := syncDir(fs, fs.PathDir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}
