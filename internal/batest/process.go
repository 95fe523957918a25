package batest

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A Process is a Node server started in a process group of its own, which
// announces itself with a line on stdout. What it writes to stderr, and any
// other stdout line, is kept for failure messages.
type Process struct {
	cmd      *exec.Cmd
	out      *SyncBuffer
	exited   chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// StartProcess starts cmd (its Stdout, Stderr and SysProcAttr are set here)
// and waits, at most timeout, for a stdout line starting with readyPrefix;
// it returns the rest of that line. When the process exits first, or the
// time passes (the process is then stopped), the error says so and carries
// its output.
func StartProcess(cmd *exec.Cmd, readyPrefix string, timeout time.Duration) (*Process, string, error) {
	p := &Process{cmd: cmd, out: &SyncBuffer{}, exited: make(chan struct{})}
	cmd.SysProcAttr = SysProcAttr()
	cmd.Stderr = p.out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting %s in %s: %w", strings.Join(cmd.Args, " "), cmd.Dir, err)
	}
	ready := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, readyPrefix); ok {
				select {
				case ready <- strings.TrimSpace(rest):
				default:
				}
				continue
			}
			p.out.Write([]byte("stdout: " + line + "\n"))
		}
	}()
	go func() {
		<-readDone // Wait must not run before the pipe is drained.
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case rest := <-ready:
		return p, rest, nil
	case <-p.exited:
		return nil, "", fmt.Errorf("exited before it was ready (%v); its output:\n%s", p.waitErr, Tail(p.out.String()))
	case <-timer.C:
		p.Stop()
		return nil, "", fmt.Errorf("not ready after %s; its output:\n%s", timeout, Tail(p.out.String()))
	}
}

// Output is what the process wrote so far (stderr and unexpected stdout).
func (p *Process) Output() string { return p.out.String() }

// Stop sends SIGTERM to the process group, then SIGKILL if it lingers, and
// waits for the process. It is safe to call more than once.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.exited
		}
		// Anything left in the group (there should be nothing) goes too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
}
