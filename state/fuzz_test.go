package state

import (
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FuzzReadManifest: any bytes in a manifest file give either a history or
// ErrManifestCorrupt, never a panic; a valid manifest round-trips.
func FuzzReadManifest(f *testing.F) {
	fs := vfs.NewMem()
	if err := fs.MkdirAll("job/checkpoints", 0o755); err != nil {
		f.Fatal(err)
	}
	hist := []Info{{Epoch: 7, Time: time.Unix(1, 0).UTC(), Status: StatusComplete, Size: 10}}
	if err := writeManifest(fs, "job", 7, hist); err != nil {
		f.Fatal(err)
	}
	good, err := readFile(fs, manifestPath(fs, "job", 7))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("00000000\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := "job/checkpoints/MANIFEST-fuzz"
		if err := writeFileSync(fs, path, b); err != nil {
			t.Fatal(err)
		}
		h, err := readManifest(fs, path)
		if err != nil && !errors.Is(err, ErrManifestCorrupt) {
			t.Fatalf("error without ErrManifestCorrupt: %v", err)
		}
		if err == nil && string(b) == string(good) && (len(h) != 1 || h[0].Epoch != 7) {
			t.Fatalf("round trip: %+v", h)
		}
	})
}
