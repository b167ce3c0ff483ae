//go:build windows

package flock

import (
	"os"

	"golang.org/x/sys/windows"
)

// Lock blocks until the process holds an exclusive lock on f (its first
// byte range, which every locker names alike).
func Lock(f *os.File) error {
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &windows.Overlapped{})
}

// Unlock releases the lock on f.
func Unlock(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &windows.Overlapped{})
}
