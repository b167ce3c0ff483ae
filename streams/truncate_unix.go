//go:build unix

package streams

import "syscall"

// prefillSupported: segments can be cut back to their records by
// descriptor, so prefill is on by default.
const prefillSupported = true

// truncateFd sets the length of an open file.
func truncateFd(fd uintptr, size int64) error { return syscall.Ftruncate(int(fd), size) }
