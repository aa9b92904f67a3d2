package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// connect opens a connection of its own to the test's database, outside the store's pool,
// which the dequeues may fill.
func (f *fixture) connect() *pgx.Conn {
	f.t.Helper()
	conn, err := pgx.Connect(context.Background(), f.store.Pool().Config().ConnString())
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// lockQuota holds project's quota row locked, as another writer would, so that a dequeue's
// writes wait for it. It returns the holding connection's backend pid and the release.
func (f *fixture) lockQuota(project string) (int, func()) {
	f.t.Helper()
	ctx := context.Background()
	tx, err := f.connect().Begin(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var pid int
	err = tx.QueryRow(ctx, `SELECT pg_backend_pid() FROM quotas WHERE project_id = $1 FOR UPDATE`, project).Scan(&pid)
	if err != nil {
		f.t.Fatal(err)
	}
	return pid, func() { _ = tx.Rollback(ctx) }
}

// dequeueState reports, for the backends of the test's database other than skipPID and
// conn's, how many wait for a lock and how many sit inside a transaction waiting for their
// client.
func dequeueState(t *testing.T, conn *pgx.Conn, skipPID int) (waiting, idleInTx int) {
	t.Helper()
	err := conn.QueryRow(context.Background(), `SELECT
		count(*) FILTER (WHERE wait_event_type = 'Lock'),
		count(*) FILTER (WHERE state = 'idle in transaction')
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> $1 AND pid <> pg_backend_pid()`,
		skipPID).Scan(&waiting, &idleInTx)
	if err != nil {
		t.Fatal(err)
	}
	return waiting, idleInTx
}

// takeOverlapLock tries the scheduler's overlap lock (store.OverlapLock) from conn. When
// it got it, conn keeps it if keep is set, until conn closes, and gives it back otherwise.
func takeOverlapLock(t *testing.T, conn *pgx.Conn, keep bool) bool {
	t.Helper()
	var ok bool
	ctx := context.Background()
	err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('schedulerd.dequeue_overlap'))`).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	if ok && !keep {
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('schedulerd.dequeue_overlap'))`); err != nil {
			t.Fatal(err)
		}
	}
	return ok
}

// drain runs s.Drain on its own goroutine and returns its outcome on a channel.
type drainResult struct {
	n   int
	err error
}

func startDrain(s *scheduler.Scheduler) <-chan drainResult {
	done := make(chan drainResult, 1)
	go func() {
		n, err := s.Drain(context.Background())
		done <- drainResult{n, err}
	}()
	return done
}

// twelveJobs submits 12 one-GPU jobs of vision, highest priority first, and returns them
// with a scheduler of batch 4 whose admissions collect in the returned slice.
func (f *fixture) twelveJobs() ([]store.Job, *scheduler.Scheduler, *[]store.Admission) {
	var jobs []store.Job
	for priority := 12; priority > 0; priority-- {
		jobs = append(jobs, f.submit("vision", priority, 1000))
	}
	admitted := &[]store.Admission{}
	s := scheduler.New(f.store, scheduler.Config{Batch: 4, OnAdmitted: func(a []store.Admission) {
		*admitted = append(*admitted, a...)
	}})
	return jobs, s, admitted
}

// expectPriorityOrder checks that the dispatcher got the admissions of jobs in their order.
func expectPriorityOrder(t *testing.T, admitted []store.Admission, jobs []store.Job) {
	t.Helper()
	for i, a := range admitted {
		if a.Job.ID != jobs[i].ID {
			t.Errorf("admission %d: job %s, want %s (priority order)", i, a.Job.ID, jobs[i].ID)
		}
	}
}

// While one round's writes wait, Drain reads and decides the next round on another
// connection, and every job is still admitted once, in priority order.
func TestDrainReadsWhileWritesRun(t *testing.T) {
	f := setup(t)
	jobs, s, admitted := f.twelveJobs()

	probe := f.connect()
	holder, release := f.lockQuota("vision")
	done := startDrain(s)
	deadline := time.Now().Add(30 * time.Second)
	for {
		waiting, idleInTx := dequeueState(t, probe, holder)
		if waiting >= 1 && idleInTx == 1 {
			break // the first rounds' writes wait for the lock; a later round has read
		}
		if time.Now().After(deadline) {
			release()
			t.Fatalf("no second dequeue read while the first one's writes waited: %d waiting, %d in a transaction",
				waiting, idleInTx)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if takeOverlapLock(t, probe, false) {
		t.Error("the overlap lock was free while the rounds overlapped")
	}
	release()

	res := <-done
	if res.err != nil || res.n != len(jobs) {
		t.Fatalf("Drain admitted %d jobs (%v), want %d", res.n, res.err, len(jobs))
	}
	if !takeOverlapLock(t, probe, false) {
		t.Error("the overlap lock is still held after Drain returned")
	}
	if len(*admitted) != len(jobs) {
		t.Fatalf("dispatcher got %d admissions, want %d", len(*admitted), len(jobs))
	}
	expectPriorityOrder(t, *admitted, jobs)
	if q := f.quota("vision"); q.CurrentConcurrent != len(jobs) || q.GPUHoursReserved != float64(len(jobs)) {
		t.Errorf("quota concurrent %d reserved %v, want %d and %d", q.CurrentConcurrent, q.GPUHoursReserved,
			len(jobs), len(jobs))
	}
}

// A round whose page read more candidates than it admitted lets the next round read only
// after its writes end. Until then its writes hold the refused and the undecided
// candidates locked, and the next round would read past them to jobs of lower priority.
func TestDrainWaitsForUndecidedCandidates(t *testing.T) {
	f := setup(t)
	var admitted []store.Admission
	s := scheduler.New(f.store, scheduler.Config{Batch: 2, Policy: scheduler.Policy{StarvationBound: time.Hour},
		OnAdmitted: func(a []store.Admission) { admitted = append(admitted, a...) }})
	// A job larger than any node is refused by every round. The round that refuses it
	// last widens the next round's read to four batches.
	huge := f.submit("vision", 20, 16000, "A10")
	f.runOnce(s)
	var jobs []store.Job
	for priority := 12; priority > 0; priority-- {
		jobs = append(jobs, f.submit("vision", priority, 1000))
	}

	probe := f.connect()
	holder, release := f.lockQuota("vision")
	done := startDrain(s)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if waiting, idleInTx := dequeueState(t, probe, holder); waiting > 1 || idleInTx > 0 {
			break // a next round read while the writes waited: the fault this test is for
		}
		time.Sleep(10 * time.Millisecond)
	}
	release()

	if res := <-done; res.err != nil || res.n != len(jobs) {
		t.Fatalf("Drain admitted %d jobs (%v), want %d", res.n, res.err, len(jobs))
	}
	for i, a := range admitted {
		if i < len(jobs) && a.Job.ID != jobs[i].ID {
			t.Errorf("admission %d: job %s, want %s (priority order)", i, a.Job.ID, jobs[i].ID)
		}
	}
	if got := f.job(huge); got.Status != store.JobQueued || waitReason(got) != scheduler.ReasonTooLarge {
		t.Errorf("huge job %s (%q), want queued with %q", got.Status, waitReason(got), scheduler.ReasonTooLarge)
	}
}

// waitForThirdRead polls until two dequeues' writes wait for a lock, then for up to a second
// more until a third dequeue sits inside its transaction, having read and decided while
// they wait. It fails the test when the two writes never wait.
func waitForThirdRead(t *testing.T, probe *pgx.Conn, holder int, release func()) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if waiting, _ := dequeueState(t, probe, holder); waiting >= 2 {
			break
		}
		if time.Now().After(deadline) {
			release()
			t.Fatal("two dequeues' writes never waited for the quota lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	deadline = time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if _, idleInTx := dequeueState(t, probe, holder); idleInTx > 0 {
			return // the third dequeue read past the second one's candidates
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An overlapped round decides on the model row as it was before the writes in flight.
// When its guard then fails, it decides again on locked rows and may refuse a starving
// job there. The round after it must not have read past that job, or its smaller job of
// lower priority takes the capacity that the starving job holds.
func TestDrainKeepsHoldFromRetry(t *testing.T) {
	f := setup(t)
	f.capacity(store.ModelCapacity{Model: "A10", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000})
	first := f.submit("vision", 10, 4000)
	starving := f.submit("vision", 9, 8000)
	small := f.submit("vision", 8, 4000)
	_, err := f.store.Pool().Exec(context.Background(),
		`UPDATE job_queue SET queued_at = now() - interval '2 hours' WHERE job_id = $1`, starving.ID)
	if err != nil {
		t.Fatal(err)
	}
	var admitted []store.Admission
	s := scheduler.New(f.store, scheduler.Config{Batch: 1, Policy: scheduler.Policy{StarvationBound: time.Hour},
		OnAdmitted: func(a []store.Admission) { admitted = append(admitted, a...) }})

	probe := f.connect()
	holder, release := f.lockQuota("vision")
	done := startDrain(s)
	waitForThirdRead(t, probe, holder, release)
	release()
	if res := <-done; res.err != nil {
		t.Fatalf("Drain: %v", res.err)
	}

	if got := f.job(first); got.Status != store.JobRunning {
		t.Errorf("first job %s, want running", got.Status)
	}
	if got := f.job(starving); got.Status != store.JobQueued {
		t.Errorf("starving job %s, want queued", got.Status)
	}
	got := f.job(small)
	if got.Status != store.JobQueued {
		t.Errorf("smaller job behind the starving one %s, want queued", got.Status)
	}
	if waitReason(got) != scheduler.ReasonReserved {
		t.Errorf("smaller job behind the starving one waits for %q, want %q", waitReason(got), scheduler.ReasonReserved)
	}
	if len(admitted) != 1 || admitted[0].Job.ID != first.ID {
		t.Errorf("dispatcher got %d admissions, want only the first job", len(admitted))
	}
}

// A scheduler that does not get the overlap lock, because another scheduler holds it,
// waits for each round's writes before it reads the next round.
func TestDrainWithoutOverlapLock(t *testing.T) {
	f := setup(t)
	jobs, s, admitted := f.twelveJobs()

	if !takeOverlapLock(t, f.connect(), true) {
		t.Fatal("the overlap lock was taken before the test")
	}
	probe := f.connect()
	holder, release := f.lockQuota("vision")
	done := startDrain(s)
	deadline := time.Now().Add(30 * time.Second)
	for waiting, _ := dequeueState(t, probe, holder); waiting == 0; waiting, _ = dequeueState(t, probe, holder) {
		if time.Now().After(deadline) {
			release()
			t.Fatal("the first round's writes never waited for the quota lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// With the lock, the next round reads within milliseconds (TestDrainReadsWhileWritesRun).
	for range 50 {
		if waiting, idleInTx := dequeueState(t, probe, holder); waiting != 1 || idleInTx != 0 {
			release()
			t.Fatalf("%d dequeues wait and %d sit in a transaction, want 1 and 0: a round read while the writes before it ran",
				waiting, idleInTx)
		}
		time.Sleep(10 * time.Millisecond)
	}
	release()

	res := <-done
	if res.err != nil || res.n != len(jobs) || len(*admitted) != len(jobs) {
		t.Fatalf("Drain admitted %d jobs (%v), dispatcher got %d, want %d", res.n, res.err, len(*admitted), len(jobs))
	}
	expectPriorityOrder(t, *admitted, jobs)
}
