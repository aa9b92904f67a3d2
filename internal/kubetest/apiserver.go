package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/schedulerd/schedulerd/internal/proc"
)

// StopAPIServer stops only the kube-apiserver of a cluster that Start started, by the PID
// that kube-up.sh recorded, and waits for it to exit. etcd, kube-scheduler and KWOK keep
// running, so clients see an apiserver outage. It returns the apiserver's command line,
// for StartAPIServer.
func (e *Env) StopAPIServer() ([]string, error) {
	if e.Dir == "" {
		return nil, fmt.Errorf("the cluster in %s was not started by this test; it cannot stop its apiserver", KubeconfigEnv)
	}
	pid, err := proc.ReadPIDFile(filepath.Join(e.Dir, "kube-apiserver.pid"))
	if err != nil {
		return nil, fmt.Errorf("read the apiserver's PID: %w", err)
	}
	args, err := commandLine(pid)
	if err != nil {
		return nil, err
	}

	// The PID must still be the apiserver of this cluster, not a reused PID.
	if !strings.Contains(strings.Join(args, " "), e.Dir+"/") {
		return nil, fmt.Errorf("process %d is not the apiserver of %s", pid, e.Dir)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return nil, fmt.Errorf("stop the apiserver (pid %d): %w", pid, err)
	}
	// A graceful stop waits for open watches and can take a minute; kube-down.sh also
	// falls back to SIGKILL.
	if waitExit(pid, 5*time.Second) != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		if err := waitExit(pid, 10*time.Second); err != nil {
			return nil, err
		}
	}
	return args, nil
}

// StartAPIServer starts the apiserver again with the command line that StopAPIServer
// returned, so on the same port with the same etcd, records its PID for kube-down.sh and
// waits until it serves again.
func (e *Env) StartAPIServer(ctx context.Context, args []string) error {
	logFile, err := os.OpenFile(filepath.Join(e.Dir, "log", "kube-apiserver.log"),
		os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open the apiserver log: %w", err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start the apiserver again: %w", err)
	}
	// kube-down.sh stops the process by this PID; the goroutine reaps it then.
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
	}()
	pid := strconv.Itoa(cmd.Process.Pid) + "\n"
	if err := os.WriteFile(filepath.Join(e.Dir, "kube-apiserver.pid"), []byte(pid), 0o644); err != nil {
		return fmt.Errorf("record the apiserver's PID: %w", err)
	}
	return waitAPIReady(ctx, e.Clientset)
}

// commandLine returns the arguments of process pid from /proc.
func commandLine(pid int) ([]string, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, fmt.Errorf("read the command line of process %d: %w", pid, err)
	}
	args := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
	if len(args) == 0 || args[0] == "" {
		return nil, errors.New("empty command line of process " + strconv.Itoa(pid))
	}
	return args, nil
}

// waitExit polls until process pid has exited or is a zombie. The apiserver is not a child
// of this process (kube-up.sh started it), so it cannot be waited for.
func waitExit(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		fields, err := proc.Stat(pid)
		if err != nil {
			return nil // the process is gone
		}
		if fields[proc.FieldState] == "Z" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("process %d did not exit within %s", pid, timeout)
}
