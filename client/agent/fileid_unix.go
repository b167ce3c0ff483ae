//go:build unix

package agent

import (
	"os"
	"syscall"
)

// fileID is the device and inode that identify a file across renames.
func fileID(fi os.FileInfo) (dev, ino uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Dev), st.Ino, true
}
