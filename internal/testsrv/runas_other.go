//go:build !unix

package testsrv

import "os/exec"

// credential is a user and group to run a command as; only unix switches
// users, and PostgreSQL's tests run only there.
type credential struct{ uid, gid uint32 }

// runAs runs cmd as this process.
func runAs(*exec.Cmd, *credential) {}
