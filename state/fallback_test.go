package state

import (
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// threeCheckpoints writes state and takes checkpoints 1, 2 and 3, and
// returns the state as of each.
func threeCheckpoints(t *testing.T, fs vfs.FS) []model {
	t.Helper()
	db := mustOpen(t, fs, Options{})
	rng := testutil.Rand(t, 5)
	m := model{}
	var out []model
	for e := uint64(1); e <= 3; e++ {
		writeRandom(t, db, m, rng, 200)
		if _, err := db.Checkpoint(e, []byte{byte('0' + e)}); err != nil {
			t.Fatal(err)
		}
		out = append(out, m.clone())
	}
	db.Close()
	return out
}

// pebbleManifest returns the path of the Pebble MANIFEST of checkpoint
// epoch: a file of that checkpoint alone (tables are shared by links).
func pebbleManifest(t *testing.T, fs vfs.FS, epoch uint64) string {
	t.Helper()
	d := fs.PathJoin(ckptPath(fs, "job", epoch), ckptDBDir)
	names, err := fs.List(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "MANIFEST-") {
			return fs.PathJoin(d, n)
		}
	}
	t.Fatalf("no Pebble MANIFEST in %s (%v)", d, names)
	return ""
}

func TestRestoreNewestGoodSkipsDamagedCheckpoints(t *testing.T) {
	fs := vfs.NewMem()
	want := threeCheckpoints(t, fs)
	// Checkpoint 3: its Pebble manifest overwritten with garbage.
	// Checkpoint 2: its metadata gone.
	if err := writeFileSync(fs, pebbleManifest(t, fs, 3), []byte("not a pebble manifest")); err != nil {
		t.Fatal(err)
	}
	if err := fs.Remove(fs.PathJoin(ckptPath(fs, "job", 2), metaFile)); err != nil {
		t.Fatal(err)
	}
	db, info, meta, rep, err := RestoreNewestGood("job", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if info.Epoch != 1 || string(meta) != "1" {
		t.Fatalf("restored epoch %d meta %q, want 1", info.Epoch, meta)
	}
	checkModel(t, db, want[0])
	if len(rep.Skipped) != 2 || rep.Skipped[0].Epoch != 3 || rep.Skipped[1].Epoch != 2 || rep.Lost != 0 {
		t.Fatalf("report %+v, want checkpoints 3 and 2 skipped", rep)
	}
	for _, s := range rep.Skipped {
		if s.MovedTo == "" {
			t.Fatalf("checkpoint %d not moved aside", s.Epoch)
		}
		if _, err := fs.Stat(fs.PathJoin(s.MovedTo, epochName(s.Epoch))); err != nil {
			t.Fatalf("checkpoint %d's files are not in %s: %v", s.Epoch, s.MovedTo, err)
		}
	}
	// Checkpointing goes on from the restored epoch.
	if _, err := db.Checkpoint(2, []byte("again")); err != nil {
		t.Fatal(err)
	}
}

func TestRestoreNewestGoodReportsLostManifest(t *testing.T) {
	fs := vfs.NewMem()
	want := threeCheckpoints(t, fs)
	if err := fs.Remove(manifestPath(fs, "job", 3)); err != nil {
		t.Fatal(err)
	}
	db, info, _, rep, err := RestoreNewestGood("job", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if info.Epoch != 2 || rep.Lost != 3 || rep.LostMovedTo == "" || len(rep.Skipped) != 0 {
		t.Fatalf("restored %d, report %+v; want 2 with 3 lost", info.Epoch, rep)
	}
	checkModel(t, db, want[1])
	db.Close()
	// Reported once: LATEST now names what was restored.
	db, info, _, rep, err = RestoreNewestGood("job", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if info.Epoch != 2 || rep.Problems() {
		t.Fatalf("second restore: %d, %+v", info.Epoch, rep)
	}

	// Every manifest gone: no checkpoint, but the loss is reported.
	for _, e := range []uint64{1, 2} {
		if err := fs.Remove(manifestPath(fs, "job", e)); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _, rep, err = RestoreNewestGood("job", Options{FS: fs})
	if !errors.Is(err, ErrNoCheckpoint) || rep.Lost != 2 {
		t.Fatalf("all manifests gone: %v, %+v", err, rep)
	}
}

func TestRestoreNewestGoodChangesNothingWhenAllDamaged(t *testing.T) {
	fs := vfs.NewMem()
	threeCheckpoints(t, fs)
	for e := uint64(1); e <= 3; e++ {
		if err := writeFileSync(fs, pebbleManifest(t, fs, e), []byte("garbage")); err != nil {
			t.Fatal(err)
		}
	}
	_, _, _, _, err := RestoreNewestGood("job", Options{FS: fs})
	if err == nil || errors.Is(err, ErrNoCheckpoint) || !strings.Contains(err.Error(), "checkpoint 1") {
		t.Fatalf("all damaged: %v", err)
	}
	for e := uint64(1); e <= 3; e++ {
		if _, err := fs.Stat(manifestPath(fs, "job", e)); err != nil {
			t.Fatalf("checkpoint %d was moved although nothing could be restored: %v", e, err)
		}
	}
}

func TestCrashBetweenManifestAndLatestIsNoLoss(t *testing.T) {
	fs := vfs.NewMem()
	threeCheckpoints(t, fs)
	// As if LATEST still named 2 when the process died after writing
	// manifest 3.
	if err := writeLatest(fs, "job", 2); err != nil {
		t.Fatal(err)
	}
	db, info, _, rep, err := RestoreNewestGood("job", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if info.Epoch != 3 || rep.Problems() {
		t.Fatalf("restored %d, report %+v; want 3 and no problem", info.Epoch, rep)
	}
}
