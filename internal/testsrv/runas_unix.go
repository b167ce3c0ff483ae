//go:build unix

package testsrv

import (
	"os/exec"
	"syscall"
)

// credential is a user and group to run a command as.
type credential struct{ uid, gid uint32 }

// runAs makes cmd run as c (nil: as this process).
func runAs(cmd *exec.Cmd, c *credential) {
	if c != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: c.uid, Gid: c.gid}}
	}
}
