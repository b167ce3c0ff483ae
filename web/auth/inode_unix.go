//go:build unix

package auth

import (
	"os"
	"syscall"
)

// inodeOf is the file's inode, so that a tokens file replaced by a rename
// is noticed even with the same size and time.
func inodeOf(fi os.FileInfo) uint64 {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return sys.Ino
	}
	return 0
}
