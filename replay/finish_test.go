package replay

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/replay/report"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// TestActiveJobsJudgesBudgetNow: a queued job whose stored wait reason is the budget, but
// whose reservation fits the quota as it is now, keeps the replay waiting. Its reason
// changes only when a dequeue reads it, which happens right after the run that freed the
// budget ends. A job that the budget still holds back does not keep it waiting.
func TestActiveJobsJudgesBudgetNow(t *testing.T) {
	s := newT4Store(t)
	ctx := context.Background()
	job := submitLowTask(t, s, "openb-pod-0001")
	setWaitReason(t, s, job, scheduler.ReasonBudget)
	r := &Replayer{store: s}

	active, err := r.activeJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if active != 1 {
		t.Errorf("%d active jobs with the budget's room for the queued job, want 1", active)
	}
	if got, want := r.describeActive(), "; job "+job.ID.String()+" queued"; !strings.HasPrefix(got, want) {
		t.Errorf("active jobs described as %q, want it to start with %q", got, want)
	}

	_, err = s.Pool().Exec(ctx, `UPDATE quotas SET gpu_hours_used = gpu_hours_budget WHERE project_id = $1`,
		job.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	active, err = r.activeJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if active != 0 {
		t.Errorf("%d active jobs with the budget used up, want 0", active)
	}

	// Once the scheduler finds that the job can never fit this period's budget, its reason
	// states that.
	setWaitReason(t, s, job, scheduler.ReasonBudgetTooSmall)
	active, err = r.activeJobs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if active != 0 {
		t.Errorf("%d active jobs waiting for %q, want 0", active, scheduler.ReasonBudgetTooSmall)
	}
}

// The report names the queued jobs that wait for either budget reason as waiting for the
// budget.
func TestJobStatesNameBudgetWaits(t *testing.T) {
	s := newT4Store(t)
	ctx := context.Background()
	for i, reason := range []string{scheduler.ReasonBudget, scheduler.ReasonBudgetTooSmall, scheduler.ReasonNoCapacity} {
		job := submitLowTask(t, s, fmt.Sprintf("openb-pod-%04d", i))
		setWaitReason(t, s, job, reason)
	}
	r := &Replayer{store: s}

	states, err := r.jobStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []report.StateCount{{State: StateWaitingForBudget, Jobs: 2}, {State: "queued", Jobs: 1}}
	if !slices.Equal(states, want) {
		t.Errorf("job states %+v, want %+v", states, want)
	}
}

// setWaitReason stores reason as the job's wait reason, as a dequeue would.
func setWaitReason(t *testing.T, s *store.Store, job store.Job, reason string) {
	t.Helper()
	_, err := s.Pool().Exec(context.Background(), `UPDATE jobs SET wait_reason = $1 WHERE id = $2`, reason, job.ID)
	if err != nil {
		t.Fatal(err)
	}
}
