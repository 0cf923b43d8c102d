//go:build !linux

package gdbremote

import "os/exec"

func setDeathSignal(cmd *exec.Cmd) {}
