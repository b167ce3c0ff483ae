package testsrv

import (
	"os"
	"os/exec"
)

// process is a server run as its own process (KafkaProcess, S3Process),
// which a test may kill and start again.
type process struct {
	cmd *exec.Cmd // nil when not running
}

// Kill stops the process with SIGKILL and waits for it. It does nothing
// when the process is not running.
func (p *process) Kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
	p.cmd = nil
}

// Signal sends sig to the process (SIGSTOP and SIGCONT pause and resume
// it). It does nothing when the process is not running.
func (p *process) Signal(sig os.Signal) {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(sig)
	}
}
