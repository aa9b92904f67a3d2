package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/store"
)

// admitAll admits candidates on A10 up to their project's free concurrency slots in the
// snapshot, reserving their GPUs for an hour, and records each call and snapshot.
func admitAll(calls *int, snapshots *[]store.Snapshot) store.Decider {
	return func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		*calls++
		*snapshots = append(*snapshots, snap)
		var decisions []store.Decision
		for _, c := range snap.Candidates {
			if snap.Quotas[c.ProjectID].CurrentConcurrent+len(decisions) >= snap.Quotas[c.ProjectID].MaxConcurrentJobs {
				continue
			}
			decisions = append(decisions, store.Decision{Candidate: c, GPUModel: "A10",
				GPUHoursReserved: float64(c.GPUMilli) / 1000})
		}
		return decisions, nil
	}
}

func TestDequeueRetriesLockedAfterConflict(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	if err := s.SyncGPUCapacity(ctx, []store.ModelCapacity{{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.SubmitJob(ctx, submission("")); err != nil {
			t.Fatal(err)
		}
	}

	// Between the unlocked read and the write, another writer takes three of the four
	// concurrency slots, so the admission of three jobs no longer fits.
	var calls int
	var snapshots []store.Snapshot
	decide := admitAll(&calls, &snapshots)
	conflicting := func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		if calls == 0 {
			if _, err := s.Pool().Exec(ctx, `UPDATE quotas SET current_concurrent = 3 WHERE project_id = 'vision'`); err != nil {
				t.Error(err)
			}
		}
		return decide(snap)
	}
	admissions, err := s.Dequeue(ctx, store.CandidateWindow{Limit: 10}, conflicting)
	if err != nil {
		t.Fatal(err)
	}

	if calls != 2 {
		t.Errorf("decide called %d times, want 2: once on the read rows, once on the locked ones", calls)
	}
	if len(snapshots) == 2 && snapshots[1].Quotas["vision"].CurrentConcurrent != 3 {
		t.Errorf("second decision saw %d running, want the 3 of the other writer", snapshots[1].Quotas["vision"].CurrentConcurrent)
	}
	if len(admissions) != 1 {
		t.Errorf("%d jobs admitted, want the 1 that fits the last free slot", len(admissions))
	}
	quota, err := s.GetQuota(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if quota.CurrentConcurrent != 4 {
		t.Errorf("quota has %d running, want 4 (3 from the other writer, 1 admitted)", quota.CurrentConcurrent)
	}
	if quota.GPUHoursReserved != 2 {
		t.Errorf("quota has %.4f GPU-hours reserved, want the 2 of the admitted job only", quota.GPUHoursReserved)
	}
}

func TestDequeueModelGuardChecksLargestNode(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	if err := s.SyncGPUCapacity(ctx, []store.ModelCapacity{{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SubmitJob(ctx, submission("")); err != nil {
		t.Fatal(err)
	}

	// The nodes shrink to one GPU each after the read: the 2-GPU job no longer fits any.
	var calls int
	_, err := s.Dequeue(ctx, store.CandidateWindow{Limit: 10}, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		calls++
		if calls == 1 {
			if err := s.SyncGPUCapacity(ctx, []store.ModelCapacity{{Model: "A10", CapacityMilli: 16000, Nodes: 16, LargestNodeMilli: 1000}}); err != nil {
				t.Error(err)
			}
		}
		c := snap.Candidates[0]
		return []store.Decision{{Candidate: c, GPUModel: "A10", GPUHoursReserved: 2}}, nil
	})

	if calls != 2 {
		t.Errorf("decide called %d times, want 2", calls)
	}
	if err == nil {
		t.Error("dequeue of a 2-GPU job on 1-GPU nodes succeeded, want the guard's error")
	}
	models, err := s.ListGPUModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if models[0].AllocatedMilli != 0 {
		t.Errorf("A10 has %d milli allocated after the rolled-back dequeue, want 0", models[0].AllocatedMilli)
	}
}

// A decision for a job that is no longer queued fails the jobs guard in the server. The
// dequeue sends its COMMIT in the same round trip as that guard, so the server must end the
// transaction before the COMMIT runs. Nothing of the decision may remain, and the
// connection must go back to the pool outside any transaction.
func TestDequeueJobGuardStopsTheCommit(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	if err := s.SyncGPUCapacity(ctx, []store.ModelCapacity{{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000}}); err != nil {
		t.Fatal(err)
	}
	queued, err := s.SubmitJob(ctx, submission("queued"))
	if err != nil {
		t.Fatal(err)
	}
	paused, err := s.SubmitJob(ctx, submission("paused"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE jobs SET status = 'paused' WHERE id = $1`, paused.ID); err != nil {
		t.Fatal(err)
	}

	// The decider admits the queued candidate and, wrongly, the paused job as well.
	var calls int
	_, err = s.Dequeue(ctx, store.CandidateWindow{Limit: 10}, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		calls++
		forged := snap.Candidates[0]
		forged.JobID, forged.JobCreatedAt = paused.ID, paused.CreatedAt
		return []store.Decision{
			{Candidate: snap.Candidates[0], GPUModel: "A10", GPUHoursReserved: 2},
			{Candidate: forged, GPUModel: "A10", GPUHoursReserved: 2},
		}, nil
	})

	if err == nil || !strings.Contains(err.Error(), "guard of admitted jobs matched 1 of 2 rows") {
		t.Fatalf("dequeue error = %v, want the jobs guard to report 1 of 2 rows", err)
	}
	if calls != 2 {
		t.Errorf("decide called %d times, want 2: the conflict is retried once on locked rows", calls)
	}
	var runs, inTx int
	var status string
	var allocated int64
	if err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM runs),
		(SELECT status::text FROM jobs WHERE id = $1),
		(SELECT allocated_milli FROM gpu_models WHERE model = 'A10'),
		(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		     AND state LIKE 'idle in transaction%')`, queued.ID).Scan(&runs, &status, &allocated, &inTx); err != nil {
		t.Fatal(err)
	}
	if runs != 0 || status != "queued" || allocated != 0 {
		t.Errorf("after the failed dequeue: %d runs, job %s, %d milli allocated; want 0 runs, queued, 0", runs, status, allocated)
	}
	if inTx != 0 {
		t.Errorf("%d connections idle in a transaction after the failed dequeue, want 0", inTx)
	}
	quota, err := s.GetQuota(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if quota.CurrentConcurrent != 0 || quota.GPUHoursReserved != 0 {
		t.Errorf("quota holds %d jobs and %.1f GPU-hours after the failed dequeue, want none", quota.CurrentConcurrent, quota.GPUHoursReserved)
	}
}

// periodsOutside are budget periods that do not contain the current UTC day. A period
// starts two days ahead so that the test holds across midnight.
func periodsOutside() map[string][2]time.Time {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	return map[string][2]time.Time{
		"ended":       {today.AddDate(0, -1, 0), today},
		"not started": {today.AddDate(0, 0, 2), today.AddDate(0, 1, 0)},
	}
}

// The quotas guard rejects an admission outside the budget period, whatever the decider
// chose, and nothing of the admission remains. The period moves between the read and the
// write, so only the guard can catch it. The locked retry then finds no candidate.
func TestDequeueQuotaGuardChecksPeriod(t *testing.T) {
	for name, period := range periodsOutside() {
		t.Run(name, func(t *testing.T) {
			testQuotaGuardPeriod(t, period[0], period[1])
		})
	}
}

func testQuotaGuardPeriod(t *testing.T, start, end time.Time) {
	s := setup(t)
	ctx := context.Background()
	if err := s.SyncGPUCapacity(ctx, []store.ModelCapacity{{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000}}); err != nil {
		t.Fatal(err)
	}
	job, err := s.SubmitJob(ctx, submission(""))
	if err != nil {
		t.Fatal(err)
	}

	var calls int
	var snapshots []store.Snapshot
	decide := admitAll(&calls, &snapshots)
	admissions, err := s.Dequeue(ctx, store.CandidateWindow{Limit: 10}, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		if calls == 0 {
			if _, err := s.Pool().Exec(ctx, `UPDATE quotas SET period_start = $1, period_end = $2
				WHERE project_id = 'vision'`, start, end); err != nil {
				t.Error(err)
			}
		}
		return decide(snap)
	})

	if err != nil {
		t.Errorf("dequeue error = %v, want none: the locked retry finds no candidate", err)
	}
	if calls != 1 {
		t.Errorf("decide called %d times, want 1: the retry's read leaves the project out", calls)
	}
	if len(admissions) != 0 {
		t.Errorf("%d admissions, want 0", len(admissions))
	}
	got, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	quota, err := s.GetQuota(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.JobQueued {
		t.Errorf("job %s after the rejected admission, want queued", got.Status)
	}
	if quota.CurrentConcurrent != 0 {
		t.Errorf("quota counts %d running jobs after the rejected admission, want 0", quota.CurrentConcurrent)
	}
	if quota.GPUHoursReserved != 0 {
		t.Errorf("quota reserved %v GPU-hours after the rejected admission, want 0", quota.GPUHoursReserved)
	}
}

// The candidate read leaves out the jobs of a project outside its budget period.
func TestDequeueSkipsProjectOutsidePeriod(t *testing.T) {
	for name, period := range periodsOutside() {
		t.Run(name, func(t *testing.T) {
			s := setup(t)
			ctx := context.Background()
			if _, err := s.SubmitJob(ctx, submission("")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Pool().Exec(ctx, `UPDATE quotas SET period_start = $1, period_end = $2
				WHERE project_id = 'vision'`, period[0], period[1]); err != nil {
				t.Fatal(err)
			}

			var calls int
			var snapshots []store.Snapshot
			admissions, err := s.Dequeue(ctx, store.CandidateWindow{Limit: 10}, admitAll(&calls, &snapshots))
			if err != nil {
				t.Fatal(err)
			}

			if calls != 0 {
				t.Errorf("decide called %d times, want 0: no candidate", calls)
			}
			if len(admissions) != 0 {
				t.Errorf("%d admissions, want 0", len(admissions))
			}
		})
	}
}
