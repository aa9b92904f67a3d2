package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

// search is an hpo parent and its trials as its workflow creates them.
type search struct {
	parent store.Job
	trials []store.Job
}

// newSearch submits an hpo parent with n one-GPU trials on A10, as its workflow makes them,
// and moves the parent to running.
func newSearch(t *testing.T, s *store.Store, n int) search {
	t.Helper()
	ctx := context.Background()
	if err := s.SyncGPUCapacity(ctx, []store.ModelCapacity{{Model: "A10", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000}}); err != nil {
		t.Fatal(err)
	}
	parentSub := submission("")
	parentSub.JobType, parentSub.Workflow = "hpo", true
	parent, err := s.SubmitJob(ctx, parentSub)
	if err != nil {
		t.Fatal(err)
	}
	var trials []store.Job
	for i := range n {
		sub := submission(fmt.Sprintf("hpo-%s-trial-%d", parent.ID, i))
		sub.GPUMilli, sub.Parent = 1000, &store.JobRef{ID: parent.ID, CreatedAt: parent.CreatedAt}
		trial, err := s.SubmitJob(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		trials = append(trials, trial)
	}
	if err := s.SetParentStatus(ctx, parent.Ref(), store.JobSubmitted, store.JobRunning, ""); err != nil {
		t.Fatal(err)
	}
	parent.Status = store.JobRunning
	return search{parent: parent, trials: trials}
}

// runningSearch is a search of three trials: the first running (its run returned), the
// second queued and the third paused by an operator on its own.
func runningSearch(t *testing.T, s *store.Store) (search, store.Admission) {
	t.Helper()
	h := newSearch(t, s, 3)
	run := admitNext(t, s)
	if run.Job.ID != h.trials[0].ID {
		t.Fatalf("admitted job %s, want the first trial %s", run.Job.ID, h.trials[0].ID)
	}
	if _, err := s.SetJobStatus(context.Background(), h.trials[2].Ref(), store.JobQueued, store.JobPaused, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	return h, run
}

func operatorAudit(action string) *store.Audit {
	return &store.Audit{Actor: store.Actor{Name: "oncall", Role: store.RoleOperator}, Action: action, At: time.Now()}
}

// moveParent moves the search's parent from one status to another with an operator's audit.
func moveParent(s *store.Store, h search, from, to store.JobStatus, action string) (store.ParentMove, error) {
	return s.MoveHPOParent(context.Background(), h.parent.Ref(), from, to, time.Now(), operatorAudit(action))
}

// wantJob checks the job's status and paused_by_parent mark in the database.
func wantJob(t *testing.T, s *store.Store, name string, job store.Job, status store.JobStatus, byParent bool) {
	t.Helper()
	got, err := s.GetJob(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != status {
		t.Errorf("%s is %s, want %s", name, got.Status, status)
	}
	if got.PausedByParent != byParent {
		t.Errorf("%s paused_by_parent %t, want %t", name, got.PausedByParent, byParent)
	}
}

func movedIDs(move store.ParentMove) []uuid.UUID {
	ids := make([]uuid.UUID, len(move.Trials))
	for i, j := range move.Trials {
		ids[i] = j.ID
	}
	return ids
}

// The pause of an hpo parent pauses its queued and running trials with it, marked as
// paused by the parent. A trial paused on its own keeps its own pause. The running trial's
// run stays live with its job paused, so the dispatcher stops it as for any paused job. No
// trial is admitted while the search is paused.
func TestPauseHPOParentPausesTrials(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	h, run := runningSearch(t, s)

	move, err := moveParent(s, h, store.JobRunning, store.JobPaused, "job.pause")
	if err != nil {
		t.Fatal(err)
	}

	if move.Parent.Status != store.JobPaused {
		t.Errorf("parent %s after the pause, want paused", move.Parent.Status)
	}
	if got, want := fmt.Sprint(movedIDs(move)), fmt.Sprint([]uuid.UUID{h.trials[0].ID, h.trials[1].ID}); got != want {
		t.Errorf("trials moved %s, want the running and the queued one %s", got, want)
	}
	wantJob(t, s, "parent", h.parent, store.JobPaused, false)
	wantJob(t, s, "running trial", h.trials[0], store.JobPaused, true)
	wantJob(t, s, "queued trial", h.trials[1], store.JobPaused, true)
	wantJob(t, s, "trial paused by hand", h.trials[2], store.JobPaused, false)
	if n := countRows(t, s, `SELECT count(*) FROM job_queue`); n != 0 {
		t.Errorf("%d job_queue rows after the pause, want 0", n)
	}

	stopping, err := s.GetRun(ctx, run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if stopping.Status != store.RunRunning && stopping.Status != store.RunPending {
		t.Errorf("run of the running trial %s, want still live until the dispatcher stops its pod", stopping.Status)
	}
	if stopping.JobStatus != store.JobPaused {
		t.Errorf("the dispatcher reads the run's job as %s, want paused, which makes it stop the run", stopping.JobStatus)
	}
	admitted, err := s.Dequeue(ctx, store.CandidateWindow{Limit: 10}, admitAll(new(int), &[]store.Snapshot{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(admitted) != 0 {
		t.Errorf("%d trials admitted while the search is paused, want none", len(admitted))
	}
}

// Each job the pause changed has its audit record: the parent with the number of trials
// it paused, and each trial with its status before.
func TestPauseHPOParentAudited(t *testing.T) {
	s := setup(t)
	h, _ := runningSearch(t, s)
	if _, err := moveParent(s, h, store.JobRunning, store.JobPaused, "job.pause"); err != nil {
		t.Fatal(err)
	}

	records, err := s.ListAudit(context.Background(), store.AuditFilter{ProjectID: "vision", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := map[uuid.UUID]string{}
	for _, r := range records {
		if r.Action != "job.pause" || r.Actor != "oncall" || r.JobID == nil {
			t.Errorf("record %s by %s of job %v, want job.pause by oncall of a job", r.Action, r.Actor, r.JobID)
			continue
		}
		got[*r.JobID] = string(r.Before) + " -> " + string(r.After)
	}
	want := map[uuid.UUID]string{
		h.parent.ID: `{"priority": 7, "status": "running"} -> ` +
			`{"status": "paused", "priority": 7, "paused_by": "operator", "trials_moved": 2}`,
		h.trials[0].ID: `{"priority": 7, "status": "running"} -> {"status": "paused", "priority": 7, "paused_by_parent": true}`,
		h.trials[1].ID: `{"priority": 7, "status": "queued"} -> {"status": "paused", "priority": 7, "paused_by_parent": true}`,
	}
	if len(got) != len(want) {
		t.Errorf("%d audit records, want %d: %v", len(got), len(want), got)
	}
	for id, w := range want {
		if !sameJSONPair(t, got[id], w) {
			t.Errorf("audit of job %s: %s, want %s", id, got[id], w)
		}
	}
}

// The resume of an hpo parent queues again the trials its pause paused and leaves a trial
// paused on its own, or made its own after the parent's pause, paused. It waits, writing
// nothing, while a trial still stops its last run.
func TestResumeHPOParentKeepsOwnPauses(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	h := newSearch(t, s, 4)
	run := admitNext(t, s)
	if _, err := s.SetJobStatus(ctx, h.trials[2].Ref(), store.JobQueued, store.JobPaused, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := moveParent(s, h, store.JobRunning, store.JobPaused, "job.pause"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimPause(ctx, h.trials[3].Ref(), operatorAudit("job.pause")); err != nil {
		t.Fatalf("an operator's pause of a trial the parent paused: %v", err)
	}

	_, err := moveParent(s, h, store.JobPaused, store.JobRunning, "job.resume")
	var live *store.TrialRunLiveError
	if !errors.As(err, &live) || live.Trial != h.trials[0].ID {
		t.Fatalf("resume while the first trial's run is live: %v, want a TrialRunLiveError for %s", err, h.trials[0].ID)
	}
	wantJob(t, s, "parent after the refused resume", h.parent, store.JobPaused, false)
	wantJob(t, s, "queued trial after the refused resume", h.trials[1], store.JobPaused, true)

	// The dispatcher ends the stopped run, as for any paused job.
	if _, err := s.EndRun(ctx, store.RunEnd{RunID: run.RunID, Status: store.RunCancelled, EndedAt: time.Now(),
		Reason: "job paused"}); err != nil {
		t.Fatal(err)
	}
	move, err := moveParent(s, h, store.JobPaused, store.JobRunning, "job.resume")
	if err != nil {
		t.Fatal(err)
	}

	if move.Parent.Status != store.JobRunning {
		t.Errorf("parent %s after the resume, want running", move.Parent.Status)
	}
	if got, want := fmt.Sprint(movedIDs(move)), fmt.Sprint([]uuid.UUID{h.trials[0].ID, h.trials[1].ID}); got != want {
		t.Errorf("trials moved %s, want the two the pause paused %s", got, want)
	}
	wantJob(t, s, "trial that was running", h.trials[0], store.JobQueued, false)
	wantJob(t, s, "trial that was queued", h.trials[1], store.JobQueued, false)
	wantJob(t, s, "trial paused by hand before", h.trials[2], store.JobPaused, false)
	wantJob(t, s, "trial paused by hand after", h.trials[3], store.JobPaused, false)
	if n := countRows(t, s, `SELECT count(*) FROM job_queue`); n != 2 {
		t.Errorf("%d job_queue rows after the resume, want the 2 resumed trials", n)
	}
}

// A trial of a paused hpo parent cannot be resumed on its own: the database rejects it
// until the parent is resumed.
func TestTrialResumeWaitsForParent(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	h := newSearch(t, s, 2)
	if _, err := s.SetJobStatus(ctx, h.trials[0].Ref(), store.JobQueued, store.JobPaused, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := moveParent(s, h, store.JobRunning, store.JobPaused, "job.pause"); err != nil {
		t.Fatal(err)
	}

	for i, trial := range h.trials {
		_, err := s.SetJobStatus(ctx, trial.Ref(), store.JobPaused, store.JobQueued, time.Now(), nil)
		if !errors.Is(err, store.ErrIllegalTransition) {
			t.Errorf("resume of trial %d while its parent is paused: %v, want ErrIllegalTransition", i, err)
		}
	}

	if _, err := moveParent(s, h, store.JobPaused, store.JobRunning, "job.resume"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetJobStatus(ctx, h.trials[0].Ref(), store.JobPaused, store.JobQueued, time.Now(), nil); err != nil {
		t.Errorf("resume of the trial paused by hand once its parent runs: %v", err)
	}
}

// A parent whose trials have all ended has nothing to pause: the pause is rejected with
// ErrTrialsEnded and the parent keeps running until its workflow ends it.
func TestPauseHPOParentWithEndedTrials(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	h := newSearch(t, s, 2)
	if _, err := s.TransitionJob(ctx, h.trials[0].Ref(), store.JobQueued, store.JobFailed, "broken"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetJobStatus(ctx, h.trials[1].Ref(), store.JobQueued, store.JobCancelled, time.Now(), nil); err != nil {
		t.Fatal(err)
	}

	_, err := moveParent(s, h, store.JobRunning, store.JobPaused, "job.pause")
	if !errors.Is(err, store.ErrTrialsEnded) {
		t.Errorf("pause of a parent whose trials ended: %v, want ErrTrialsEnded", err)
	}
	wantJob(t, s, "parent", h.parent, store.JobRunning, false)
	if n := countRows(t, s, `SELECT count(*) FROM audit_log`); n != 0 {
		t.Errorf("%d audit records after the rejected pause, want none", n)
	}
}

// The cancel of a paused parent cancels every trial that has not ended, in the same
// transaction, and each cancelled trial's end reaches the parent's workflow.
func TestCancelPausedHPOParent(t *testing.T) {
	s := setup(t)
	h, _ := runningSearch(t, s)
	if _, err := moveParent(s, h, store.JobRunning, store.JobPaused, "job.pause"); err != nil {
		t.Fatal(err)
	}

	move, err := moveParent(s, h, store.JobPaused, store.JobCancelled, "job.cancel")
	if err != nil {
		t.Fatal(err)
	}

	if move.Parent.Status != store.JobCancelled || move.Parent.CompletedAt == nil {
		t.Errorf("parent %s with completed_at %v, want cancelled with a completion time",
			move.Parent.Status, move.Parent.CompletedAt)
	}
	if len(move.Trials) != 3 {
		t.Errorf("%d trials moved, want all 3", len(move.Trials))
	}
	for i, trial := range h.trials {
		wantJob(t, s, fmt.Sprintf("trial %d", i), trial, store.JobCancelled, false)
	}
	sql := fmt.Sprintf(`SELECT count(*) FROM workflow_events WHERE workflow_id = '%s' AND kind = 'trial_ended'`,
		store.WorkflowID(h.parent.ID))
	if n := countRows(t, s, sql); n != 3 {
		t.Errorf("%d trial_ended events for the parent's workflow, want 3", n)
	}
}

// A trial admitted while the pause of its parent is in flight ends paused and marked as
// paused by the parent, like the trial that stayed queued. The pause waits for the
// admission's commit and moves the trial as it is then.
func TestPauseHPOParentAfterConcurrentAdmission(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	h := newSearch(t, s, 2)
	trial := h.trials[0]

	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM job_queue WHERE job_id = $1 FOR UPDATE`, trial.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := moveParent(s, h, store.JobRunning, store.JobPaused, "job.pause")
		done <- err
	}()
	waitForLockWait(t, s)
	if _, err := tx.Exec(ctx, `UPDATE jobs SET status = 'running' WHERE id = $1 AND created_at = $2`,
		trial.ID, trial.CreatedAt); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	if err := <-done; err != nil {
		t.Fatalf("pause: %v", err)
	}
	wantJob(t, s, "trial admitted during the pause", trial, store.JobPaused, true)
	wantJob(t, s, "other trial", h.trials[1], store.JobPaused, true)
}

// waitForLockWait waits until a session of the test database waits for a row lock.
func waitForLockWait(t *testing.T, s *store.Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if countRows(t, s, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`) > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no session waited for a lock within 10 s")
}

// sameJSONPair reports whether two "before -> after" pairs of JSON documents are equal as
// JSON, whatever the order of their keys.
func sameJSONPair(t *testing.T, got, want string) bool {
	t.Helper()
	decode := func(pair string) []any {
		var docs []any
		for _, part := range strings.Split(pair, " -> ") {
			var doc any
			if err := json.Unmarshal([]byte(part), &doc); err != nil {
				return nil
			}
			docs = append(docs, doc)
		}
		return docs
	}
	g, w := decode(got), decode(want)
	return g != nil && reflect.DeepEqual(g, w)
}
