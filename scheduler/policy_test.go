package scheduler_test

import (
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/scheduler"
)

// Decide rejects the candidates of a project whose budget period does not contain the
// snapshot's time, and admits the others.
func TestDecideChecksBudgetPeriod(t *testing.T) {
	snap := snapshot(20, true)
	midnight := snap.Now.Truncate(24 * time.Hour)
	ended, future := snap.Quotas["project-1"], snap.Quotas["project-2"]
	ended.PeriodStart, ended.PeriodEnd = midnight.AddDate(0, -1, 0), midnight
	future.PeriodStart, future.PeriodEnd = midnight.AddDate(0, 0, 1), midnight.AddDate(0, 1, 0)
	snap.Quotas["project-1"], snap.Quotas["project-2"] = ended, future

	decisions, refusals := scheduler.Policy{StarvationBound: time.Hour}.Decide(snap)

	reasons := map[string]string{}
	for _, r := range refusals {
		reasons[r.Job.ID.String()] = r.Reason
	}
	for _, c := range snap.Candidates {
		want := ""
		switch c.ProjectID {
		case "project-1":
			want = scheduler.ReasonPeriodEnded
		case "project-2":
			want = scheduler.ReasonPeriodNotStarted
		}
		if got := reasons[c.JobID.String()]; got != want {
			t.Errorf("job of %s: reason %q, want %q", c.ProjectID, got, want)
		}
	}
	if len(decisions) != 16 {
		t.Errorf("%d admitted, want the 16 jobs of the other projects", len(decisions))
	}
}
