//go:build !linux

package confine

import "os"

const nonblock = 0

func openDir(dir string) (*os.File, error) { return os.Open(dir) }

func (r *Root) open(name string, flag int, perm os.FileMode) (*os.File, error) {
	return r.openPortable(name, flag, perm)
}

func clearNonblock(*os.File) error { return nil }
