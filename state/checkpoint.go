package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Checkpoint steps passed to Options.Failpoint, in order.
const (
	StepBeforeSnapshot = "before-snapshot"
	StepAfterSnapshot  = "after-snapshot"
	StepBeforeManifest = "before-manifest"
	StepAfterManifest  = "after-manifest"
	StepBeforePrune    = "before-prune"
)

// Restore steps passed to Options.Failpoint, in order.
const (
	StepRestoreBeforeRewind = "restore-before-rewind"
	StepRestoreBeforeCopy   = "restore-before-copy"
	StepRestoreBeforeSwap   = "restore-before-swap"
	StepRestoreBeforeOpen   = "restore-before-open"
)

// Latest asks Restore for the newest complete checkpoint.
const Latest uint64 = math.MaxUint64

// StatusComplete is the status of a checkpoint recorded in a manifest.
const StatusComplete = "complete"

var (
	// ErrNoCheckpoint is returned by Restore when there is no complete
	// checkpoint (at the requested epoch).
	ErrNoCheckpoint = errors.New("state: no complete checkpoint")
	// ErrManifestCorrupt is returned when a manifest fails its checksum or
	// does not parse. Older checkpoints stay restorable by epoch.
	ErrManifestCorrupt = errors.New("state: checkpoint manifest damaged")
)

const (
	liveDir        = "live"
	restoreDir     = "live.restore"
	checkpointsDir = "checkpoints"
	manifestPrefix = "MANIFEST-"
	metaFile       = "meta"
	ckptDBDir      = "db"
)

// Info describes one complete checkpoint.
type Info struct {
	Epoch uint64    `json:"epoch"`
	Time  time.Time `json:"time"`
	// Duration is the whole checkpoint, Paused the part writers were
	// blocked (Pebble's snapshot of the live store).
	Duration time.Duration `json:"duration"`
	Paused   time.Duration `json:"paused"`
	// Size is the bytes of the checkpoint's files (hard-linked tables are
	// counted, though they share disk with the live store).
	Size    int64  `json:"size"`
	Status  string `json:"status"`
	MetaCRC uint32 `json:"meta_crc"`
}

type manifest struct {
	Version     int    `json:"version"`
	Checkpoints []Info `json:"checkpoints"`
}

func epochName(epoch uint64) string { return fmt.Sprintf("%020d", epoch) }

func ckptPath(fs vfs.FS, dir string, epoch uint64) string {
	return fs.PathJoin(dir, checkpointsDir, epochName(epoch))
}

func manifestPath(fs vfs.FS, dir string, epoch uint64) string {
	return fs.PathJoin(dir, checkpointsDir, manifestPrefix+epochName(epoch))
}

func (db *DB) failpoint(step string) error { return failpoint(db.opts, step) }

func failpoint(opts Options, step string) error {
	if opts.Failpoint == nil {
		return nil
	}
	if err := opts.Failpoint(step); err != nil {
		return fmt.Errorf("state: failpoint %s: %w", step, err)
	}
	return nil
}

// Checkpoint takes a consistent, durable snapshot of all state and records
// it with meta (opaque to the DB: source positions, watermarks, timers)
// under epoch, which must exceed every earlier checkpoint's. Writers are
// blocked only while Pebble snapshots the live store (hard links plus the
// unflushed log); the rest runs alongside them. If Checkpoint fails at any
// step, the previous checkpoint stays the latest complete one.
func (db *DB) Checkpoint(epoch uint64, meta []byte) (Info, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.closed {
		return Info{}, ErrClosed
	}
	if epoch == Latest {
		return Info{}, fmt.Errorf("state: checkpoint epoch %d is reserved", epoch)
	}
	if n := len(db.mu.history); n > 0 && epoch <= db.mu.history[n-1].Epoch {
		return Info{}, fmt.Errorf("state: checkpoint epoch %d is not after the last one (%d)", epoch, db.mu.history[n-1].Epoch)
	}
	fs := db.opts.FS
	start := time.Now()
	info := Info{Epoch: epoch, Time: start.UTC(), Status: StatusComplete, MetaCRC: crc32.Checksum(meta, castagnoli)}
	dst := ckptPath(fs, db.dir, epoch)
	// A failed attempt at the same epoch may have left files behind.
	if err := fs.RemoveAll(dst); err != nil {
		return Info{}, fmt.Errorf("state: checkpoint %d: clear %s: %w", epoch, dst, err)
	}
	if err := db.failpoint(StepBeforeSnapshot); err != nil {
		return Info{}, err
	}
	// Create the checkpoint's directory before blocking writers, so the
	// blocked part syncs as little as possible.
	if err := fs.MkdirAll(dst, 0o755); err != nil {
		return Info{}, fmt.Errorf("state: checkpoint %d: %w", epoch, err)
	}
	if err := syncDir(fs, fs.PathJoin(db.dir, checkpointsDir)); err != nil {
		return Info{}, fmt.Errorf("state: checkpoint %d: %w", epoch, err)
	}
	// Flushing the memtable first, alongside writers, leaves only a short
	// log tail for Pebble to copy while they are blocked.
	if err := db.flush(); err != nil {
		return Info{}, fmt.Errorf("state: checkpoint %d: %w", epoch, err)
	}
	db.writeMu.Lock()
	pauseStart := time.Now()
	err := db.pdb.Checkpoint(fs.PathJoin(dst, ckptDBDir), pebble.WithFlushedWAL())
	info.Paused = time.Since(pauseStart)
	db.writeMu.Unlock()
	if err != nil {
		return Info{}, fmt.Errorf("state: checkpoint %d: pebble snapshot: %w", epoch, err)
	}
	if err := db.failpoint(StepAfterSnapshot); err != nil {
		return Info{}, err
	}
	if err := writeFileSync(fs, fs.PathJoin(dst, metaFile), meta); err != nil {
		return Info{}, fmt.Errorf("state: checkpoint %d: write meta: %w", epoch, err)
	}
	if err := syncDir(fs, dst); err != nil {
		return Info{}, fmt.Errorf("state: checkpoint %d: %w", epoch, err)
	}
	size, err := dirSize(fs, dst)
	if err != nil {
		return Info{}, fmt.Errorf("state: checkpoint %d: %w", epoch, err)
	}
	info.Size = size
	info.Duration = time.Since(start)

	history := append(slices.Clone(db.mu.history), info)
	if len(history) > db.opts.Retain {
		history = history[len(history)-db.opts.Retain:]
	}
	if err := db.failpoint(StepBeforeManifest); err != nil {
		return Info{}, err
	}
	if err := writeManifest(fs, db.dir, epoch, history); err != nil {
		return Info{}, fmt.Errorf("state: checkpoint %d: %w", epoch, err)
	}
	db.mu.history = history
	// LATEST after the manifest: a restore that finds LATEST naming an
	// epoch without a manifest knows the manifest was lost, not unwritten.
	if err := writeLatest(fs, db.dir, epoch); err != nil {
		return info, fmt.Errorf("state: checkpoint %d: %w", epoch, err)
	}
	if err := db.failpoint(StepAfterManifest); err != nil {
		return info, err
	}
	if err := db.failpoint(StepBeforePrune); err != nil {
		return info, err
	}
	if err := prune(fs, db.dir, history); err != nil {
		// The checkpoint is complete; stale files only cost disk.
		db.opts.Logger.Error("state: prune old checkpoints", "dir", db.dir, "err", err)
	}
	return info, nil
}

// Checkpoints returns the complete checkpoints kept, oldest first.
func (db *DB) Checkpoints() []Info {
	db.mu.Lock()
	defer db.mu.Unlock()
	return slices.Clone(db.mu.history)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// writeManifest writes the manifest of epoch atomically: a temporary file,
// synced, renamed into place, and the directory synced. The first line is
// the CRC-32C of the JSON body that follows it.
func writeManifest(fs vfs.FS, dir string, epoch uint64, history []Info) error {
	body, err := json.Marshal(manifest{Version: 1, Checkpoints: history})
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	content := fmt.Appendf(nil, "%08x\n%s\n", crc32.Checksum(body, castagnoli), body)
	final := manifestPath(fs, dir, epoch)
	tmp := final + ".tmp"
	if err := writeFileSync(fs, tmp, content); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := fs.Rename(tmp, final); err != nil {
		return fmt.Errorf("rename manifest: %w", err)
	}
	return syncDir(fs, fs.PathJoin(dir, checkpointsDir))
}

func readManifest(fs vfs.FS, path string) ([]Info, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	content, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	head, body, ok := bytes.Cut(content, []byte("\n"))
	body = bytes.TrimSuffix(body, []byte("\n"))
	want, perr := strconv.ParseUint(string(head), 16, 32)
	if !ok || perr != nil || len(head) != 8 {
		return nil, fmt.Errorf("%w: %s: no checksum line", ErrManifestCorrupt, path)
	}
	if got := crc32.Checksum(body, castagnoli); got != uint32(want) {
		return nil, fmt.Errorf("%w: %s: checksum %08x, want %08x", ErrManifestCorrupt, path, got, want)
	}
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: unreadable body: %w", ErrManifestCorrupt, path, err)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("%w: %s: unknown version %d", ErrManifestCorrupt, path, m.Version)
	}
	return m.Checkpoints, nil
}

// manifestEpochs lists the epochs that have a manifest file, ascending.
func manifestEpochs(fs vfs.FS, dir string) ([]uint64, error) {
	names, err := fs.List(fs.PathJoin(dir, checkpointsDir))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []uint64
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, manifestPrefix)
		if !ok || strings.HasSuffix(rest, ".tmp") {
			continue
		}
		if e, err := strconv.ParseUint(rest, 10, 64); err == nil {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return out, nil
}

// readHistory returns the history in the newest manifest.
func readHistory(fs vfs.FS, dir string) ([]Info, error) {
	epochs, err := manifestEpochs(fs, dir)
	if err != nil || len(epochs) == 0 {
		return nil, err
	}
	newest := epochs[len(epochs)-1]
	h, err := readManifest(fs, manifestPath(fs, dir, newest))
	if err != nil && errors.Is(err, ErrManifestCorrupt) && len(epochs) > 1 {
		return nil, fmt.Errorf("%w; older checkpoints can be restored by epoch: %v", err, epochs[:len(epochs)-1])
	}
	return h, err
}

// removeIncomplete removes checkpoint directories newer than the newest
// complete one: a crash left them before their manifest was written.
func removeIncomplete(fs vfs.FS, dir string, history []Info) error {
	var last uint64
	if n := len(history); n > 0 {
		last = history[n-1].Epoch
	}
	names, err := fs.List(fs.PathJoin(dir, checkpointsDir))
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			if err := fs.RemoveAll(fs.PathJoin(dir, checkpointsDir, n)); err != nil {
				return err
			}
			continue
		}
		if e, err := strconv.ParseUint(n, 10, 64); err == nil && e > last {
			if err := fs.RemoveAll(fs.PathJoin(dir, checkpointsDir, n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// prune removes checkpoints and manifests not in history.
func prune(fs vfs.FS, dir string, history []Info) error {
	keep := map[uint64]bool{}
	for _, in := range history {
		keep[in.Epoch] = true
	}
	names, err := fs.List(fs.PathJoin(dir, checkpointsDir))
	if err != nil {
		return err
	}
	for _, n := range names {
		rest, _ := strings.CutPrefix(n, manifestPrefix)
		e, err := strconv.ParseUint(rest, 10, 64)
		if err != nil || keep[e] {
			continue
		}
		if err := fs.RemoveAll(fs.PathJoin(dir, checkpointsDir, n)); err != nil {
			return err
		}
	}
	return nil
}

// Restore rebuilds the live state under dir from the checkpoint of epoch
// (Latest for the newest complete one) and opens it. It returns the
// checkpoint's Info and the meta passed to Checkpoint. Restoring an older
// epoch rewinds history: newer checkpoints are removed. If Restore itself
// crashes, running it again is safe.
func Restore(dir string, epoch uint64, opts Options) (*DB, Info, []byte, error) {
	if err := opts.Validate(); err != nil {
		return nil, Info{}, nil, err
	}
	opts.EnsureDefaults()
	fs := opts.FS
	epochs, err := manifestEpochs(fs, dir)
	if err != nil {
		return nil, Info{}, nil, fmt.Errorf("state: restore %s: %w", dir, err)
	}
	if len(epochs) == 0 {
		return nil, Info{}, nil, fmt.Errorf("%w in %s", ErrNoCheckpoint, dir)
	}
	if epoch == Latest {
		epoch = epochs[len(epochs)-1]
	} else if !slices.Contains(epochs, epoch) {
		return nil, Info{}, nil, fmt.Errorf("%w at epoch %d in %s (have %v)", ErrNoCheckpoint, epoch, dir, epochs)
	}
	history, err := readManifest(fs, manifestPath(fs, dir, epoch))
	if err != nil {
		if i := slices.Index(epochs, epoch); errors.Is(err, ErrManifestCorrupt) && i > 0 {
			err = fmt.Errorf("%w; older checkpoints can be restored by epoch: %v", err, epochs[:i])
		}
		return nil, Info{}, nil, fmt.Errorf("state: restore %s: %w", dir, err)
	}
	if len(history) == 0 || history[len(history)-1].Epoch != epoch {
		return nil, Info{}, nil, fmt.Errorf("%w: manifest of epoch %d does not end with it", ErrManifestCorrupt, epoch)
	}
	info := history[len(history)-1]
	src := ckptPath(fs, dir, epoch)
	meta, err := readFile(fs, fs.PathJoin(src, metaFile))
	if err != nil {
		return nil, Info{}, nil, fmt.Errorf("state: restore %s epoch %d: read meta: %w", dir, epoch, err)
	}
	if crc32.Checksum(meta, castagnoli) != info.MetaCRC {
		return nil, Info{}, nil, fmt.Errorf("state: restore %s epoch %d: meta checksum mismatch", dir, epoch)
	}
	if err := failpoint(opts, StepRestoreBeforeRewind); err != nil {
		return nil, Info{}, nil, err
	}
	// Rewind: drop what is newer than the restored checkpoint, newest
	// first, so a crash here leaves the newest manifest a complete one.
	for _, e := range slices.Backward(epochs) {
		if e > epoch {
			if err := fs.RemoveAll(manifestPath(fs, dir, e)); err != nil {
				return nil, Info{}, nil, fmt.Errorf("state: restore %s: remove newer manifest: %w", dir, err)
			}
		}
	}
	if err := syncDir(fs, fs.PathJoin(dir, checkpointsDir)); err != nil {
		return nil, Info{}, nil, fmt.Errorf("state: restore %s: %w", dir, err)
	}
	if err := removeIncomplete(fs, dir, history); err != nil {
		return nil, Info{}, nil, fmt.Errorf("state: restore %s: %w", dir, err)
	}
	if err := rebuildLive(opts, dir, fs.PathJoin(src, ckptDBDir)); err != nil {
		return nil, Info{}, nil, fmt.Errorf("state: restore %s epoch %d: %w", dir, epoch, err)
	}
	if err := failpoint(opts, StepRestoreBeforeOpen); err != nil {
		return nil, Info{}, nil, err
	}
	db, err := openLive(dir, opts, history)
	if err != nil {
		return nil, Info{}, nil, err
	}
	return db, info, meta, nil
}

// rebuildLive replaces the live store with a copy of a checkpoint's
// Pebble directory: tables hard-linked (immutable), other files copied,
// since Pebble appends to its manifest and log.
func rebuildLive(opts Options, dir, src string) error {
	fs := opts.FS
	if err := failpoint(opts, StepRestoreBeforeCopy); err != nil {
		return err
	}
	tmp := fs.PathJoin(dir, restoreDir)
	if err := fs.RemoveAll(tmp); err != nil {
		return err
	}
	if err := copyStore(fs, src, tmp); err != nil {
		return err
	}
	if err := syncDir(fs, tmp); err != nil {
		return err
	}
	if err := failpoint(opts, StepRestoreBeforeSwap); err != nil {
		return err
	}
	live := fs.PathJoin(dir, liveDir)
	if err := fs.RemoveAll(live); err != nil {
		return err
	}
	if err := fs.Rename(tmp, live); err != nil {
		return err
	}
	return syncDir(fs, dir)
}

// copyStore makes tmp a copy of the Pebble directory src that Pebble may
// open and write to: tables hard-linked (they are immutable), the other
// files (manifest, log, options) copied.
func copyStore(fs vfs.FS, src, tmp string) error {
	if err := fs.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	names, err := fs.List(src)
	if err != nil {
		return fmt.Errorf("list %s: %w", src, err)
	}
	for _, n := range names {
		from, to := fs.PathJoin(src, n), fs.PathJoin(tmp, n)
		if strings.HasSuffix(n, ".sst") {
			err = vfs.LinkOrCopy(fs, from, to)
		} else {
			err = copyFileSync(fs, from, to)
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", n, err)
		}
	}
	return nil
}

func writeFileSync(fs vfs.FS, path string, data []byte) error {
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func copyFileSync(fs vfs.FS, from, to string) error {
	data, err := readFile(fs, from)
	if err != nil {
		return err
	}
	return writeFileSync(fs, to, data)
}

func readFile(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func syncDir(fs vfs.FS, path string) error {
	d, err := fs.OpenDir(path)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", path, err)
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync dir %s: %w", path, err)
	}
	return d.Close()
}

func dirSize(fs vfs.FS, path string) (int64, error) {
	var total int64
	names, err := fs.List(path)
	if err != nil {
		return 0, err
	}
	for _, n := range names {
		p := fs.PathJoin(path, n)
		st, err := fs.Stat(p)
		if err != nil {
			return 0, err
		}
		if st.IsDir() {
			sub, err := dirSize(fs, p)
			if err != nil {
				return 0, err
			}
			total += sub
			continue
		}
		total += st.Size()
	}
	return total, nil
}
