//go:build linux && amd64

package kvm

import "golang.org/x/sys/unix"

const syscallOCloexec = unix.O_CLOEXEC
