//go:build linux

package demostack

import "syscall"

// sysProcAttr puts the frontend in its own process group (so Close can
// signal the group) and has the kernel kill it if the test binary dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
