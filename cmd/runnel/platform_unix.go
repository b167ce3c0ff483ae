//go:build unix

package main

import (
	"os"
	"syscall"
)

// killSelf ends the process with SIGKILL, as a crash would.
func killSelf() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }

// openFileLimit is the process's soft limit on open files, 0 when unknown
// or practically unbounded.
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < 1<<30 {
		return int(rl.Cur)
	}
	return 0
}
