package bench

import (
	"os"
	"syscall"
)

// datasync is the sync the log's writers make on Linux.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
