package state

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Restoring the newest checkpoint that is intact.
//
// Every complete checkpoint also rewrites checkpoints/LATEST with its
// epoch, after its manifest. At a restore, the newest checkpoint whose
// manifest, metadata and Pebble files all check out is used; newer ones
// that do not are moved aside to DIR/damaged/ (never deleted: an operator
// may want them) and reported. A LATEST that names an epoch without a
// manifest means the manifest was lost after the checkpoint completed
// (not a crash midway: LATEST is written after the manifest), and is
// reported too, also when no checkpoint is left at all.

const (
	latestFile = "LATEST"
	damagedDir = DamagedDir
)

// DamagedDir is the directory, in a store's directory, that damaged
// checkpoints are moved to.
const DamagedDir = "damaged"

// Skipped is a checkpoint RestoreNewestGood could not use.
type Skipped struct {
	Epoch uint64
	Err   error
	// MovedTo is where its files were moved ("" if there were none).
	MovedTo string
}

// RestoreReport is what RestoreNewestGood found wrong on the way.
type RestoreReport struct {
	// Skipped lists damaged checkpoints newer than the one restored,
	// newest first.
	Skipped []Skipped
	// Lost is the epoch LATEST named whose manifest is gone (0: none).
	Lost uint64
	// LostMovedTo is where the lost checkpoint's remaining files went.
	LostMovedTo string
}

// Problems reports whether anything was found wrong.
func (r RestoreReport) Problems() bool { return len(r.Skipped) > 0 || r.Lost != 0 }

// RestoreNewestGood is Restore of the newest intact checkpoint under dir.
// Each candidate is checked before anything is changed: its manifest and
// metadata checksums, and a copy of its Pebble store opened and read
// through (every block's checksum). If none is intact it changes nothing
// and returns an error naming each problem. With no checkpoint at all it
// returns ErrNoCheckpoint, and the report still says if one was lost.
func RestoreNewestGood(dir string, opts Options) (*DB, Info, []byte, RestoreReport, error) {
	var rep RestoreReport
	if err := opts.Validate(); err != nil {
		return nil, Info{}, nil, rep, err
	}
	opts.EnsureDefaults()
	fs := opts.FS
	epochs, err := manifestEpochs(fs, dir)
	if err != nil {
		return nil, Info{}, nil, rep, fmt.Errorf("state: restore %s: %w", dir, err)
	}
	if latest, ok := readLatest(fs, dir); ok && !slices.Contains(epochs, latest) &&
		(len(epochs) == 0 || latest > epochs[len(epochs)-1]) {
		rep.Lost = latest
	}
	chosen := uint64(0)
	var problems []string
	for _, e := range slices.Backward(epochs) {
		err := checkCheckpoint(opts, dir, e)
		if err == nil {
			chosen = e
			break
		}
		if isNoSpace(err) {
			// The check's scratch copy found no room: that says nothing
			// about the checkpoint, which must not be passed over for it.
			return nil, Info{}, nil, RestoreReport{}, fmt.Errorf("%w: state: restore %s: checkpoint %d cannot be checked (its check needs room for a copy of its log); nothing was changed, restore again once space is freed: %w", ErrDiskFull, dir, e, err)
		}
		rep.Skipped = append(rep.Skipped, Skipped{Epoch: e, Err: err})
		problems = append(problems, err.Error())
	}
	if chosen == 0 && len(epochs) > 0 {
		return nil, Info{}, nil, rep, fmt.Errorf("state: restore %s: no intact checkpoint: %s", dir, strings.Join(problems, "; "))
	}
	// Move aside what is newer than the chosen checkpoint and not usable.
	stamp := time.Now().UTC().Format("20060102T150405Z")
	for i := range rep.Skipped {
		s := &rep.Skipped[i]
		s.MovedTo, err = quarantine(fs, dir, s.Epoch, stamp)
		if err != nil {
			return nil, Info{}, nil, rep, fmt.Errorf("state: restore %s: move damaged checkpoint %d aside: %w", dir, s.Epoch, err)
		}
	}
	if rep.Lost != 0 {
		if rep.LostMovedTo, err = quarantine(fs, dir, rep.Lost, stamp); err != nil {
			return nil, Info{}, nil, rep, fmt.Errorf("state: restore %s: move checkpoint %d aside: %w", dir, rep.Lost, err)
		}
	}
	if chosen == 0 {
		return nil, Info{}, nil, rep, fmt.Errorf("%w in %s", ErrNoCheckpoint, dir)
	}
	if rep.Problems() {
		// LATEST names what is restored now, so the same loss is not
		// reported again at the next start.
		if err := writeLatest(fs, dir, chosen); err != nil {
			return nil, Info{}, nil, rep, fmt.Errorf("state: restore %s: %w", dir, err)
		}
	}
	db, info, meta, err := Restore(dir, chosen, opts)
	return db, info, meta, rep, err
}

// checkCheckpoint checks checkpoint epoch under dir without changing it.
func checkCheckpoint(opts Options, dir string, epoch uint64) error {
	fs := opts.FS
	history, err := readManifest(fs, manifestPath(fs, dir, epoch))
	if err != nil {
		return fmt.Errorf("checkpoint %d: %w", epoch, err)
	}
	if len(history) == 0 || history[len(history)-1].Epoch != epoch {
		return fmt.Errorf("checkpoint %d: %w: its manifest does not end with it", epoch, ErrManifestCorrupt)
	}
	src := ckptPath(fs, dir, epoch)
	meta, err := readFile(fs, fs.PathJoin(src, metaFile))
	if err != nil {
		return fmt.Errorf("checkpoint %d: read meta: %w", epoch, err)
	}
	if crc32.Checksum(meta, castagnoli) != history[len(history)-1].MetaCRC {
		return fmt.Errorf("checkpoint %d: meta checksum mismatch", epoch)
	}
	if err := readThrough(opts, dir, fs.PathJoin(src, ckptDBDir)); err != nil {
		return fmt.Errorf("checkpoint %d: %w", epoch, err)
	}
	return nil
}

const verifyDir = "verify.tmp"

// readThrough opens a scratch copy of a checkpoint's Pebble store (tables
// linked, the rest copied: opening writes to it) and reads every key,
// which checks every block it holds.
func readThrough(opts Options, dir, src string) (err error) {
	fs := opts.FS
	tmp := fs.PathJoin(dir, verifyDir)
	if err := fs.RemoveAll(tmp); err != nil {
		return err
	}
	defer func() {
		if rerr := fs.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if err := copyStore(fs, src, tmp); err != nil {
		return err
	}
	pdb, err := pebble.Open(tmp, &pebble.Options{FS: fs, Logger: pebbleLogger{opts.Logger}, ErrorIfNotExists: true})
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer func() {
		if cerr := pdb.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", src, cerr)
		}
	}()
	it, err := pdb.NewIter(nil)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	for it.First(); it.Valid(); it.Next() {
		_ = it.Value()
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	if err := pdb.CheckLevels(nil); err != nil {
		return fmt.Errorf("check %s: %w", src, err)
	}
	return nil
}

// quarantine moves checkpoint epoch's directory and manifest (those that
// exist) to DIR/damaged/EPOCH-STAMP and returns that path ("" if there was
// nothing to move).
func quarantine(fs vfs.FS, dir string, epoch uint64, stamp string) (string, error) {
	dst := fs.PathJoin(dir, damagedDir, epochName(epoch)+"-"+stamp)
	moved := false
	for _, from := range []string{ckptPath(fs, dir, epoch), manifestPath(fs, dir, epoch)} {
		if _, err := fs.Stat(from); err != nil {
			if oserrNotExist(err) {
				continue
			}
			return "", err
		}
		if !moved {
			if err := mkdirAllSynced(fs, dst); err != nil {
				return "", err
			}
			moved = true
		}
		if err := fs.Rename(from, fs.PathJoin(dst, fs.PathBase(from))); err != nil {
			return "", err
		}
	}
	if !moved {
		return "", nil
	}
	if err := syncDir(fs, dst); err != nil {
		return "", err
	}
	return dst, syncDir(fs, fs.PathJoin(dir, checkpointsDir))
}

func oserrNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// readLatest returns the epoch checkpoints/LATEST names, if it is there
// and readable.
func readLatest(fs vfs.FS, dir string) (uint64, bool) {
	b, err := readFile(fs, fs.PathJoin(dir, checkpointsDir, latestFile))
	if err != nil {
		return 0, false
	}
	e, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || e == 0 {
		return 0, false
	}
	return e, true
}

// writeLatest records epoch as the newest complete checkpoint, atomically.
func writeLatest(fs vfs.FS, dir string, epoch uint64) error {
	final := fs.PathJoin(dir, checkpointsDir, latestFile)
	tmp := final + ".tmp"
	if err := writeFileSync(fs, tmp, []byte(strconv.FormatUint(epoch, 10)+"\n")); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, final); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return syncDir(fs, fs.PathJoin(dir, checkpointsDir))
}
