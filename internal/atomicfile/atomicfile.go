// Package atomicfile replaces small files so that a crash leaves either the
// old or the new contents, never a mix or an empty file, and keeps random
// keys in such files. The stream log has its own variant over Pebble's vfs
// (streams.WriteFileAtomic), so that its crash tests can run in memory.
package atomicfile

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data (mode perm): it writes a temporary file in
// the same directory, fsyncs it, renames it over path and fsyncs the
// directory.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*") // PATH.tmp-N: readers of the directory may skip it by that prefix
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename it names nothing
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, making the creations, renames and removals
// of its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// WrongSizeError is a key file whose length is not the key's.
type WrongSizeError struct {
	Path       string
	Size, Want int
}

func (e *WrongSizeError) Error() string {
	return fmt.Sprintf("key %s has %d bytes, want %d", e.Path, e.Size, e.Want)
}

// Key returns the n-byte key kept at path, creating the file with a new
// random key (mode 0600, written with Write) when there is none. A file of
// another length is a *WrongSizeError: it is never replaced, since whatever
// the key protects would silently become unreadable.
func Key(path string, n int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != n {
			return nil, &WrongSizeError{Path: path, Size: len(b), Want: n}
		}
		return b, nil
	}
	if !os.IsNotExist(err) {
		return nil, fmt.Errorf("read key: %w", err)
	}
	key := make([]byte, n)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("make key: %w", err)
	}
	if err := Write(path, key, 0o600); err != nil {
		return nil, err
	}
	return key, nil
}
