package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/schedulerd/schedulerd/internal/proc"
	"github.com/schedulerd/schedulerd/store"
)

// memoryNamespace is the namespace of the memory measurement's pods.
const memoryNamespace = "bench-memory"

// MemoryResult is the daemon's resident memory while it follows the pods.
type MemoryResult struct {
	RSSMiB  []float64 // samples of VmRSS, ten seconds apart
	PeakMiB float64   // VmHWM at the last sample
	// AnonMiB and FileMiB split the last sample into anonymous memory (Go heap, stacks,
	// runtime) and pages mapped from files (mostly the binary's own code and data).
	AnonMiB, FileMiB float64
	Startup          time.Duration
}

// MeasureMemory runs `schedulerd run` as its own process on a fresh database with pods
// queued jobs whose simulated pods never finish. Once all their runs are running, it reads
// the process's resident memory samples times, ten seconds apart, so that a resync of every
// live run (every ten seconds) falls between two samples. It stops the daemon and deletes
// the pods afterwards.
func MeasureMemory(ctx context.Context, env *Env, name string, pods, nodes, samples int,
	kubeconfig string) (MemoryResult, error) {
	var result MemoryResult
	client, err := env.KubeClient()
	if err != nil {
		return result, err
	}
	if env.DaemonBinary == "" {
		return result, fmt.Errorf("no schedulerd binary: pass -daemon-binary")
	}
	if err := ensureNodes(ctx, client, nodes); err != nil {
		return result, err
	}
	pool, err := env.FreshDatabase(ctx, name, 4)
	if err != nil {
		return result, err
	}
	defer pool.Close()
	s := store.New(pool)
	if err := seedProjects(ctx, s, memoryNamespace); err != nil {
		return result, err
	}
	kind, err := sharedShape(0)
	if err != nil {
		return result, err
	}
	if err := seedQueued(ctx, pool, pods, []jobShape{kind}); err != nil {
		return result, err
	}

	dbURL, err := env.DatabaseURL(name)
	if err != nil {
		return result, err
	}
	daemon, err := startDaemon(env.DaemonBinary, dbURL, kubeconfig, env.DaemonLog)
	if err != nil {
		return result, err
	}
	defer func() {
		if stopErr := daemon.stop(); stopErr != nil {
			env.Log.Error("stop schedulerd run", "err", stopErr, "pid", daemon.cmd.Process.Pid)
		}
		if err := deletePods(context.WithoutCancel(ctx), client, memoryNamespace); err != nil {
			env.Log.Error("delete the memory measurement's pods", "err", err)
		}
	}()

	started := time.Now()
	result.Startup, err = waitCount(ctx, pool, `SELECT count(*) FROM runs WHERE status = 'running'`,
		pods, 15*time.Minute, started)
	if err != nil {
		return result, fmt.Errorf("wait for %d running pods: %w", pods, err)
	}
	for i := range samples {
		if i > 0 {
			time.Sleep(10 * time.Second)
		}
		mem, err := proc.ReadMemory(daemon.cmd.Process.Pid)
		if err != nil {
			return result, err
		}
		result.RSSMiB = append(result.RSSMiB, mebibytes(mem.VmRSS))
		result.PeakMiB, result.AnonMiB, result.FileMiB = mebibytes(mem.VmHWM), mebibytes(mem.RssAnon),
			mebibytes(mem.RssFile)
	}
	return result, nil
}

type daemonProcess struct {
	cmd     *exec.Cmd
	done    chan error
	log     *os.File
	keepLog bool
}

// startDaemon starts `schedulerd run` on loopback with its log in logPath, or in a temporary
// file that is deleted after a clean stop when logPath is empty.
func startDaemon(binary, databaseURL, kubeconfig, logPath string) (*daemonProcess, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	var logFile *os.File
	if logPath != "" {
		logFile, err = os.Create(logPath)
	} else {
		logFile, err = os.CreateTemp("", "schedulerd-bench-daemon-*.log")
	}
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "run")
	cmd.Env = append(os.Environ(),
		"SCHEDULERD_DATABASE_URL="+databaseURL,
		"SCHEDULERD_KUBECONFIG="+kubeconfig,
		"SCHEDULERD_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"SCHEDULERD_LOG_LEVEL=warn",
		"SCHEDULERD_LOG_FORMAT=text")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s run: %w", binary, err)
	}
	p := &daemonProcess{cmd: cmd, done: make(chan error, 1), log: logFile, keepLog: logPath != ""}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// stop sends SIGTERM to the daemon's PID and waits up to 30 s before SIGKILL. The log
// stays in place when the daemon failed.
func (p *daemonProcess) stop() error {
	defer p.log.Close()
	select {
	case err := <-p.done:
		return fmt.Errorf("schedulerd run exited early (%v); log in %s", err, p.log.Name())
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			return fmt.Errorf("schedulerd run: %w; log in %s", err, p.log.Name())
		}
		if p.keepLog {
			return nil
		}
		return os.Remove(p.log.Name())
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("schedulerd run did not stop within 30 s of SIGTERM; killed; log in %s", p.log.Name())
	}
}

func mebibytes(bytes int64) float64 {
	return float64(bytes) / (1 << 20)
}

// freeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
