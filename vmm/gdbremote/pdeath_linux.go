package gdbremote

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes QEMU die with vmdap.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
