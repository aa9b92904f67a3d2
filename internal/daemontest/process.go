package daemontest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/pgtest"
)

// BuildBinary builds cmd/schedulerd into the test's temporary directory and returns its
// path, for tests that run the daemon as a separate process so that they can kill it.
func BuildBinary(t testing.TB) string {
	t.Helper()
	bin, err := BuildBinaryIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// BuildBinaryIn builds cmd/schedulerd into dir and returns its path, for a package whose
// tests share one binary that outlives each test's temporary directory.
func BuildBinaryIn(dir string) (string, error) {
	root, err := pgtest.ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "schedulerd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/schedulerd")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build schedulerd: %w\n%s", err, out)
	}
	return bin, nil
}

// Process is `schedulerd run` started by a test as a child process, so that the test can
// send it SIGKILL, SIGSTOP and SIGCONT. Each Start begins a new process with the same
// environment, appending to the same log file.
type Process struct {
	T   testing.TB
	Bin string
	// Env is the whole environment of the process (os.Environ() plus SCHEDULERD_* settings).
	Env []string
	// LogPath receives the daemon's standard output and error.
	LogPath string

	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// Start starts a new daemon process. The test's cleanup kills it if it still runs.
func (p *Process) Start() {
	p.T.Helper()
	log, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.T.Fatalf("open daemon log: %v", err)
	}
	p.cmd = exec.Command(p.Bin, "run")
	p.cmd.Env = p.Env
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		_ = log.Close()
		p.T.Fatalf("start schedulerd: %v", err)
	}
	exited := make(chan struct{})
	p.exited = exited
	cmd := p.cmd
	go func() {
		p.err = cmd.Wait()
		_ = log.Close()
		close(exited)
	}()
	p.T.Cleanup(func() { p.Kill() })
}

// PID returns the process id of the last Start.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process of the last Start has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr returns the process's exit error once Exited is closed: nil for exit code 0.
func (p *Process) ExitErr() error {
	<-p.exited
	return p.err
}

// Kill sends SIGKILL, which the daemon cannot handle, and waits for the exit. It also
// resumes a stopped process first, since a stopped process would not die until resumed.
func (p *Process) Kill() {
	if p.cmd == nil || !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	<-p.exited
}

// Stop sends SIGTERM, the daemon's clean shutdown, and waits up to timeout for the exit.
func (p *Process) Stop(timeout time.Duration) error {
	if p.cmd == nil || !p.running() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.cleanExit()
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("schedulerd (pid %d) did not exit within %s of SIGTERM; killed it", p.PID(), timeout)
	}
}

// Pause sends SIGSTOP: the process keeps its connections but runs no code, like a replica
// in a long garbage-collection pause or on a frozen virtual machine.
func (p *Process) Pause() error { return p.signal(syscall.SIGSTOP) }

// Resume sends SIGCONT to a paused process.
func (p *Process) Resume() error { return p.signal(syscall.SIGCONT) }

func (p *Process) signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("send %s to schedulerd (pid %d): %w", sig, p.PID(), err)
	}
	return nil
}

func (p *Process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// cleanExit returns nil for exit code 0, and for death by the SIGTERM that Stop sent.
func (p *Process) cleanExit() error {
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	if p.err != nil {
		return fmt.Errorf("schedulerd (pid %d) exited: %w", p.PID(), p.err)
	}
	return nil
}
