//go:build !linux

package demostack

import "syscall"

// sysProcAttr puts the frontend in its own process group, so Close can
// signal the group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
