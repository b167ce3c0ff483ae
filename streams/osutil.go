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

// isNoSpace reports whether err says the disk (or the quota) is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
