//go:build !linux

package batest

import "syscall"

// sysProcAttr puts the server in its own process group, so Close can signal
// the group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
