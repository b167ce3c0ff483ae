//go:build !unix

package main

import "os"

// killSelf ends the process at once, without cleanup, as a crash would.
func killSelf() {
	p, _ := os.FindProcess(os.Getpid())
	p.Kill()
}

// openFileLimit is 0 (unknown): the server's defaults apply.
func openFileLimit() int { return 0 }
