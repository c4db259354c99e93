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

// runAs makes the command run as uid:gid, as a container's USER does; it
// reports false where that cannot be done (not root).
func runAs(cmd *exec.Cmd, uid, gid uint32) bool {
	if syscall.Getuid() != 0 {
		return false
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: gid}
	return true
}
