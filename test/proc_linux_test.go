package test

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the child if the test process dies (a timeout's
// panic, say), so that no gatehouse outlives its test.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
