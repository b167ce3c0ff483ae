package state

import (
	"errors"
	"fmt"
	"github.com/cockroachdb/errors/oserror"
	"hash/crc32"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrExists is returned by ExportCheckpoint when the destination exists.
var ErrExists = errors.New("state: destination exists")

// ExportCheckpoint copies complete checkpoint epoch (or Latest) of the
// state directory dir into dst, a new directory, as a state directory of
// its own that holds just that checkpoint: Restore(dst, Latest, ...) opens
// it. This is how savepoints are kept apart from a job's pruned checkpoint
// history, and how a job starts from one (export the savepoint into the
// job's empty state directory, then Restore). Tables are hard-linked
// (they never change), other files copied, everything synced; dst appears
// under its final name only when complete. It must not run concurrently
// with a Checkpoint of dir that could prune epoch.
func ExportCheckpoint(fs vfs.FS, dir string, epoch uint64, dst string) (Info, error) {
	if fs == nil {
		fs = vfs.Default
	}
	if _, err := fs.Stat(dst); err == nil {
		return Info{}, fmt.Errorf("%w: %s", ErrExists, dst)
	} else if !oserror.IsNotExist(err) {
		return Info{}, err
	}
	epochs, err := manifestEpochs(fs, dir)
	if err != nil {
		return Info{}, fmt.Errorf("state: export from %s: %w", dir, err)
	}
	if len(epochs) == 0 {
		return Info{}, fmt.Errorf("%w in %s", ErrNoCheckpoint, dir)
	}
	if epoch == Latest {
		epoch = epochs[len(epochs)-1]
	}
	// The newest manifest knows every retained checkpoint; an older one
	// may be named directly.
	var info Info
	found := false
	for i := len(epochs) - 1; i >= 0 && !found; i-- {
		history, err := readManifest(fs, manifestPath(fs, dir, epochs[i]))
		if err != nil {
			continue
		}
		if k := slices.IndexFunc(history, func(in Info) bool { return in.Epoch == epoch }); k >= 0 {
			info, found = history[k], true
		}
	}
	if !found {
		return Info{}, fmt.Errorf("%w at epoch %d in %s (have %v)", ErrNoCheckpoint, epoch, dir, epochs)
	}
	tmp := strings.TrimSuffix(dst, "/") + ".tmp"
	if err := fs.RemoveAll(tmp); err != nil {
		return Info{}, err
	}
	if err := copyTree(fs, ckptPath(fs, dir, epoch), ckptPath(fs, tmp, epoch)); err != nil {
		return Info{}, fmt.Errorf("state: export checkpoint %d: %w", epoch, err)
	}
	if err := writeManifest(fs, tmp, epoch, []Info{info}); err != nil {
		return Info{}, err
	}
	if err := syncDir(fs, tmp); err != nil {
		return Info{}, err
	}
	if err := fs.Rename(tmp, dst); err != nil {
		return Info{}, err
	}
	parent := fs.PathDir(dst)
	if err := syncDir(fs, parent); err != nil {
		return Info{}, err
	}
	return info, nil
}

// copyTree copies directory from to a new directory to: .sst files
// hard-linked when possible, the rest copied and synced.
func copyTree(fs vfs.FS, from, to string) error {
	if err := mkdirAllSynced(fs, to); err != nil {
		return err
	}
	names, err := fs.List(from)
	if err != nil {
		return err
	}
	for _, n := range names {
		src, dst := fs.PathJoin(from, n), fs.PathJoin(to, n)
		st, err := fs.Stat(src)
		if err != nil {
			return err
		}
		switch {
		case st.IsDir():
			err = copyTree(fs, src, dst)
		case strings.HasSuffix(n, ".sst"):
			err = vfs.LinkOrCopy(fs, src, dst)
		default:
			err = copyFileSync(fs, src, dst)
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", n, err)
		}
	}
	return syncDir(fs, to)
}

// ReadCheckpoint returns the record and metadata of complete checkpoint
// epoch (or Latest) of state directory dir without opening or changing
// anything (Restore rebuilds the live store; this only reads).
func ReadCheckpoint(fs vfs.FS, dir string, epoch uint64) (Info, []byte, error) {
	if fs == nil {
		fs = vfs.Default
	}
	epochs, err := manifestEpochs(fs, dir)
	if err != nil {
		return Info{}, nil, fmt.Errorf("state: read %s: %w", dir, err)
	}
	if len(epochs) == 0 {
		return Info{}, nil, fmt.Errorf("%w in %s", ErrNoCheckpoint, dir)
	}
	if epoch == Latest {
		epoch = epochs[len(epochs)-1]
	}
	history, err := readManifest(fs, manifestPath(fs, dir, epochs[len(epochs)-1]))
	if err != nil {
		return Info{}, nil, err
	}
	k := slices.IndexFunc(history, func(in Info) bool { return in.Epoch == epoch })
	if k < 0 {
		return Info{}, nil, fmt.Errorf("%w at epoch %d in %s", ErrNoCheckpoint, epoch, dir)
	}
	meta, err := readFile(fs, fs.PathJoin(ckptPath(fs, dir, epoch), metaFile))
	if err != nil {
		return Info{}, nil, err
	}
	if crc32.Checksum(meta, castagnoli) != history[k].MetaCRC {
		return Info{}, nil, fmt.Errorf("%w: metadata of checkpoint %d fails its checksum", ErrManifestCorrupt, epoch)
	}
	return history[k], meta, nil
}

// ListCheckpoints returns the complete checkpoints state directory dir
// keeps, oldest first, as its newest manifest lists them, without opening
// or changing anything (DB.Checkpoints of a store that is not open).
func ListCheckpoints(fs vfs.FS, dir string) ([]Info, error) {
	if fs == nil {
		fs = vfs.Default
	}
	epochs, err := manifestEpochs(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("state: read %s: %w", dir, err)
	}
	if len(epochs) == 0 {
		return nil, nil
	}
	return readManifest(fs, manifestPath(fs, dir, epochs[len(epochs)-1]))
}
