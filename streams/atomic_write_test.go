package streams

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Writers of one file at once each replace it whole: every call succeeds,
// the file holds one of their contents, and no temporary file is left.
// With one temporary name for all, a writer's rename failed (the other had
// renamed the file away) or moved another's half-written file in place.
func TestWriteFileAtomicConcurrent(t *testing.T) {
	dir := t.TempDir()
	fs := vfs.Default
	path := fs.PathJoin(dir, "job.json")
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers*20)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				body := strings.Repeat(fmt.Sprintf("writer %d write %d\n", w, i), 200)
				if err := WriteFileAtomic(fs, path, []byte(body)); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if string(b) != strings.Repeat(first+"\n", 200) {
		t.Errorf("the file mixes writes: %d bytes starting %q", len(b), first)
	}
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 {
		t.Errorf("files left beside the file: %v", names)
	}
}
