// Package flock takes and releases an exclusive advisory lock on an open
// file, across processes: flock(2) on unix, LockFileEx on Windows. A
// lock is held until Unlock or until the file is closed.
package flock
