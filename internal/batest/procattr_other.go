//go:build !linux

package batest

import "syscall"

// SysProcAttr puts a child process (a test server) in its own process group, so Close can signal
// the group.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
