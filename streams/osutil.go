package streams

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

func oserrorIsNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || os.IsNotExist(err)
}

// isOutOfFiles reports whether err says the process (EMFILE) or the
// system (ENFILE) has no file descriptors left: it passes once others are
// closed, so an open that failed with it can be tried again.
func isOutOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// OutOfFiles reports whether err is an ErrUnavailable of a process with
// no file descriptors left (its open-file limit): retryable, and not a
// full disk.
func OutOfFiles(err error) bool { return errors.Is(err, ErrUnavailable) && isOutOfFiles(err) }

// isNoSpace reports whether err says the disk (or the quota) is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
