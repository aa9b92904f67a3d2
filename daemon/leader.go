package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
)

// ErrLeaseLost is returned by Run when this replica stopped holding the Lease while its
// context was still live, for example because renewals failed for RenewDeadline.
var ErrLeaseLost = errors.New("leader lease lost")

// LeaderElection names the Lease that replicas compete for and its timing. Zero durations
// take the defaults in parentheses, which are client-go's usual ones.
//
// Safety rests on the loops stopping within LeaseDuration minus RenewDeadline of the last
// successful renewal: a leader gives up after RenewDeadline without a renewal, while the
// others wait for the whole LeaseDuration before they take over. The loops stop within
// about a second of their context's end. Even an overlap double-dispatches nothing, because
// every state change is a guarded SQL statement and pod names derive from job and run, but
// it wastes work. The exception is a pod creation decided before a freeze: its run may have
// ended since and its pod been deleted, so CheckLease guards pod creation.
//
// NOTE: client-go times a renewal from its response, so a slow response delays when the
// loops stop by that much. CheckLease times it from the request instead.
type LeaderElection struct {
	Namespace string // of the Lease: schedulerd's own namespace
	Name      string // of the Lease ("schedulerd")
	// Identity names this replica in the Lease; it must differ between replicas
	// (DefaultIdentity()).
	Identity      string
	LeaseDuration time.Duration // how long a Lease holds without renewal (15s)
	RenewDeadline time.Duration // how long the leader keeps retrying a renewal (10s)
	RetryPeriod   time.Duration // wait between attempts to acquire or renew (2s)
}

// DefaultIdentity returns the host name, which is the pod name in Kubernetes, with a random
// suffix, so that a restarted container never takes itself for the previous holder.
func DefaultIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "schedulerd"
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return host + "-" + hex.EncodeToString(suffix)
}

func (le LeaderElection) withDefaults() LeaderElection {
	if le.Name == "" {
		le.Name = "schedulerd"
	}
	if le.Identity == "" {
		le.Identity = DefaultIdentity()
	}
	if le.LeaseDuration <= 0 {
		le.LeaseDuration = 15 * time.Second
	}
	if le.RenewDeadline <= 0 {
		le.RenewDeadline = 10 * time.Second
	}
	if le.RetryPeriod <= 0 {
		le.RetryPeriod = 2 * time.Second
	}
	return le
}

// term tracks whether the loops run for the Lease. The elector starts OnStartedLeading in
// a goroutine of its own, so the callback and the code after elector.Run agree through
// this state on whether loops ran and must be waited for.
type term struct {
	mu       sync.Mutex
	finished bool // the election is over: a late OnStartedLeading must not start loops
	leading  bool
	running  sync.WaitGroup
}

// runElected takes part in the election until ctx ends or the Lease is lost, and runs the
// loops while it holds the Lease. It releases the Lease only after the loops stopped, so
// that the next leader never overlaps with them.
func (d *Daemon) runElected(ctx context.Context) error {
	cfg := d.cfg.LeaderElection.withDefaults()
	log := d.cfg.Logger.With("lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity)
	// Leadership changes become Events on the Lease, which `kubectl describe lease` shows.
	// The broadcaster outlives ctx, so that the stopped-leading Event of a shutdown is sent.
	events := record.NewBroadcaster(record.WithContext(context.WithoutCancel(ctx)))
	defer events.Shutdown()
	events.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: d.cfg.Kube.CoreV1().Events(cfg.Namespace)})
	recorder := events.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "schedulerd", Host: cfg.Identity})
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
		Client:     d.cfg.Kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity, EventRecorder: recorder},
	}
	renewals := &renewalLock{Interface: lock}

	// The elector gets a context of its own, which ends only after the loops have stopped:
	// ending it earlier would let it stop renewing while the loops still run.
	electing, stopElecting := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElecting()
	var t term
	var loopsErr error
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          renewals,
		LeaseDuration: cfg.LeaseDuration,
		RenewDeadline: cfg.RenewDeadline,
		RetryPeriod:   cfg.RetryPeriod,
		Name:          cfg.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leading context.Context) {
				if !t.start(ctx) {
					stopElecting()
					return
				}
				defer t.running.Done()
				log.Info("became leader; starting the scheduler and dispatcher")
				loopsErr = d.runLoopsWhile(ctx, leading)
				stopElecting()
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(identity string) {
				if identity != cfg.Identity {
					log.Info("another replica leads", "leader", identity)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("configure leader election: %w", err)
	}
	d.election.Store(&election{elector: elector, renewals: renewals, renewDeadline: cfg.RenewDeadline})
	stopWatching := context.AfterFunc(ctx, func() {
		if !t.isLeading() {
			stopElecting()
		}
	})
	defer stopWatching()

	log.Debug("joining the leader election")
	elector.Run(electing)
	led, stopped := t.finish(d.cfg.ShutdownTimeout)
	switch {
	case !stopped:
		return fmt.Errorf("election ended, but the loops did not stop within %s", d.cfg.ShutdownTimeout)
	case ctx.Err() == nil && loopsErr == nil:
		log.Error("leader lease lost; stopped the scheduler and dispatcher")
		return ErrLeaseLost
	}
	if led {
		d.releaseLease(lock, cfg, log)
	}
	return loopsErr
}

// errLeaseStale is the fence's error while this replica may no longer hold its Lease.
var errLeaseStale = errors.New("this replica may no longer hold its Lease")

// CheckLease fails unless this replica holds its Lease as of a renewal sent less than
// RenewDeadline ago. The dispatcher calls it right before each pod creation. A leader
// renews every RetryPeriod, so only a process that was frozen or starved that long, or
// whose renewals got no timely response, fails it. Another replica may have taken the Lease
// meanwhile, so such a process must not act on runs it read before: it creates no pod until
// it renews, and it exits when it finds the Lease taken. Without leader election the
// replica is alone and the check passes.
//
// The age counts from when the renewal was sent, not from its response as client-go's
// LeaderElector.Check does. Another replica starts its LeaseDuration when it reads the
// renewal stored, which may be long before a slow response arrives.
//
// NOTE: a freeze between this check and the pod creation right after it still escapes
// it. The check narrows the window from a whole reconcile to those few instructions.
func (d *Daemon) CheckLease() error {
	e := d.election.Load()
	if e == nil {
		return nil
	}
	if !e.elector.IsLeader() {
		return errLeaseStale
	}
	age, ok := e.renewals.sinceRenewal()
	if !ok {
		return fmt.Errorf("%w: no renewal of it succeeded", errLeaseStale)
	}
	if age > e.renewDeadline {
		return fmt.Errorf("%w: its last successful renewal was sent %s ago, more than the renew deadline %s",
			errLeaseStale, age.Round(time.Millisecond), e.renewDeadline)
	}
	return nil
}

// election is a running leader election, for CheckLease.
type election struct {
	elector       *leaderelection.LeaderElector
	renewals      *renewalLock
	renewDeadline time.Duration
}

// renewalLock is the Lease lock of the elector. It records when this replica sent the last
// write of its own record that succeeded: its acquisition or latest renewal.
type renewalLock struct {
	resourcelock.Interface
	mu   sync.Mutex
	sent time.Time // zero until a write succeeds
}

// Create creates the Lease with this replica as its holder.
func (l *renewalLock) Create(ctx context.Context, record resourcelock.LeaderElectionRecord) error {
	sent := time.Now()
	if err := l.Interface.Create(ctx, record); err != nil {
		return err
	}
	l.recordWrite(sent, record)
	return nil
}

// Update writes the Lease's record: a renewal, or a takeover from another holder.
func (l *renewalLock) Update(ctx context.Context, record resourcelock.LeaderElectionRecord) error {
	sent := time.Now()
	if err := l.Interface.Update(ctx, record); err != nil {
		return err
	}
	l.recordWrite(sent, record)
	return nil
}

func (l *renewalLock) recordWrite(sent time.Time, record resourcelock.LeaderElectionRecord) {
	if record.HolderIdentity != l.Identity() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if sent.After(l.sent) {
		l.sent = sent
	}
}

// sinceRenewal returns the time since the last successful write was sent, and false before
// the first.
func (l *renewalLock) sinceRenewal() (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent.IsZero() {
		return 0, false
	}
	return time.Since(l.sent), true
}

// runLoopsWhile runs the loops until either ctx (shutdown) or leading (the Lease) ends.
func (d *Daemon) runLoopsWhile(ctx, leading context.Context) error {
	loopCtx, cancel := context.WithCancel(leading)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	return d.runLoops(loopCtx)
}

// start records that loops start, unless the election is over or ctx has ended.
func (t *term) start(ctx context.Context) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finished || ctx.Err() != nil {
		return false
	}
	t.leading = true
	t.running.Add(1)
	return true
}

func (t *term) isLeading() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.leading
}

// finish ends the election and waits up to timeout for loops that started. It returns
// whether loops ran and whether they stopped in time.
func (t *term) finish(timeout time.Duration) (led, stopped bool) {
	t.mu.Lock()
	t.finished = true
	led = t.leading
	t.mu.Unlock()

	done := make(chan struct{})
	go func() {
		t.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return led, true
	case <-time.After(timeout):
		return led, false
	}
}

// releaseLease hands the Lease back after a clean stop, so that another replica takes over
// at its next retry instead of waiting for the Lease to expire. It changes the Lease only if
// this replica still holds it.
func (d *Daemon) releaseLease(lock *resourcelock.LeaseLock, cfg LeaderElection, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.RenewDeadline)
	defer cancel()
	record, _, err := lock.Get(ctx)
	if err != nil {
		log.Warn("leader lease not released; the next leader waits for it to expire", "err", err)
		return
	}
	if record.HolderIdentity != cfg.Identity {
		return
	}
	now := metav1.NewTime(time.Now())
	released := resourcelock.LeaderElectionRecord{LeaseDurationSeconds: 1, AcquireTime: now,
		RenewTime: now, LeaderTransitions: record.LeaderTransitions}
	if err := lock.Update(ctx, released); err != nil {
		log.Warn("leader lease not released; the next leader waits for it to expire", "err", err)
		return
	}
	log.Info("leader lease released")
}
