package streams

import (
	"os"
	"syscall"
)

// datasync flushes a file's data (and the metadata needed to read it), as
// the log's writers do through vfs SyncData.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
