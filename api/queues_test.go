package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

func TestListQueues(t *testing.T) {
	f := setup(t)
	f.do(f.admin, "POST", "/v1/projects", `{"id":"speech","org":"acme"}`).want(201)
	f.submit(f.submitter, "vision", 5)
	f.admit()
	f.submit(f.submitter, "vision", 5)
	paused := f.submit(f.submitter, "vision", 5)
	f.action(f.submitter, paused, "pause").want(200)
	f.submit(f.operator, "speech", 5)

	var list api.QueueList
	f.do(f.operator, "GET", "/v1/queues", nil).want(200).decode(&list)
	got := map[string]string{}
	for _, q := range list.Queues {
		got[q.Project] = fmt.Sprintf("queued %d running %d paused %d submitted %d quota %t",
			q.Depth["queued"], q.Depth["running"], q.Depth["paused"], q.Depth["submitted"], q.Quota != nil)
	}
	want := map[string]string{
		"audio":  "queued 0 running 0 paused 0 submitted 0 quota true",
		"speech": "queued 1 running 0 paused 0 submitted 0 quota false",
		"vision": "queued 1 running 1 paused 1 submitted 0 quota true",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("queues %v, want %v", got, want)
	}
	if list.Queues[2].Quota.CurrentConcurrent != 1 || list.Queues[2].Quota.GPUHoursReserved != 1 {
		t.Errorf("vision quota %+v, want 1 job admitted with 1 GPU-hour reserved", list.Queues[2].Quota)
	}

	f.do(f.submitter, "GET", "/v1/queues", nil).want(200).decode(&list)
	if len(list.Queues) != 1 || list.Queues[0].Project != "vision" {
		t.Errorf("a vision submitter sees %+v, want only vision", list.Queues)
	}
}

func TestDrainStopsAdmission(t *testing.T) {
	f := setup(t)
	f.submit(f.submitter, "vision", 5)
	audio := f.submit(f.audioSubmitter, "audio", 5)

	var result api.DrainResult
	f.do(f.operator, "POST", "/v1/queues/vision/drain", nil).want(200).decode(&result)
	if !result.Quota.Drained || result.Quota.DrainedAt == nil || len(result.RequeuedJobs) != 0 {
		t.Errorf("drain returned %+v, want drained with no job requeued", result)
	}
	admissions := f.admit()
	if len(admissions) != 1 || admissions[0].Job.ID != audio.ID {
		t.Fatalf("admitted %+v, want only the audio job", admissions)
	}

	var quota api.Quota
	f.do(f.operator, "POST", "/v1/queues/vision/undrain", nil).want(200).decode(&quota)
	if quota.Drained || quota.DrainedAt != nil {
		t.Errorf("undrain returned %+v, want not drained", quota)
	}
	if n := len(f.admit()); n != 1 {
		t.Errorf("after undrain admitted %d jobs, want 1", n)
	}
}

// A drain stops the runs that were admitted but have not started, whether or not their
// pod exists yet, and leaves running runs alone. A stopped run keeps its slot and
// reservation until the dispatcher has seen its pod gone.
func TestDrainStopsPendingRuns(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	for range 3 {
		f.submit(f.submitter, "vision", 5)
	}
	admissions := f.admit()
	noPod, podWaiting, running := admissions[0], admissions[1], admissions[2]
	if err := f.store.MarkPodCreated(ctx, podWaiting.RunID); err != nil {
		t.Fatal(err)
	}
	if err := f.store.StartRun(ctx, running.RunID, time.Now(), "node-1"); err != nil {
		t.Fatal(err)
	}

	var result api.DrainResult
	f.do(f.operator, "POST", "/v1/queues/vision/drain", nil).want(200).decode(&result)
	if !sameIDs(result.RequeuedJobs, noPod.Job.ID, podWaiting.Job.ID) {
		t.Errorf("requeued %v, want %s and %s", result.RequeuedJobs, noPod.Job.ID, podWaiting.Job.ID)
	}

	for _, a := range []store.Admission{noPod, podWaiting} {
		run, err := f.store.GetRun(ctx, a.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if run.Status != store.RunPending {
			t.Errorf("run %s is %s, want pending until its pod is gone", a.RunID, run.Status)
		}
		if run.StopStatus == nil || *run.StopStatus != store.RunPreempted {
			t.Errorf("run %s has stop %v, want preempted", a.RunID, run.StopStatus)
		}
		if run.StopReason == nil || *run.StopReason != store.DrainReason {
			t.Errorf("run %s has stop reason %v, want %q", a.RunID, run.StopReason, store.DrainReason)
		}
	}
	stillRunning, err := f.store.GetRun(ctx, running.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if stillRunning.StopStatus != nil {
		t.Errorf("the running run has stop %v, want none before the deadline", *stillRunning.StopStatus)
	}
	if q := result.Quota; q.CurrentConcurrent != 3 || q.GPUHoursReserved != 3 {
		t.Errorf("quota %+v, want the three admitted jobs' slots and hours", q)
	}

	// Once the dispatcher has seen the pods gone, the stopped runs end and their jobs
	// return to the queue.
	for _, a := range []store.Admission{noPod, podWaiting} {
		end := store.RunEnd{RunID: a.RunID, Status: store.RunPreempted, EndedAt: time.Now(), Reason: store.DrainReason}
		if _, err := f.store.EndRun(ctx, end); err != nil {
			t.Fatal(err)
		}
		if job := f.job(a.Job.ID); job.Status != store.JobQueued || job.Attempts != 0 {
			t.Errorf("job %s is %s after %d attempts, want queued with none used", job.ID, job.Status, job.Attempts)
		}
	}
}

// The guarantee of a drain: once it returned 200, no job of the queue starts, even one
// that a dequeue in flight was admitting. The dequeue here holds its locks until the drain
// is found waiting for them.
// A dequeue reads quotas without locking them and locks them only to update them, right
// before its commit. A drain that lands while the dequeue decides therefore does not wait:
// the dequeue's quota guard then finds the queue drained, and the dequeue decides again on
// locked rows, where the drained queue's jobs are no longer candidates.
func TestDrainDuringDequeueDecision(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	var visionJobs []uuid.UUID
	for range 3 {
		visionJobs = append(visionJobs, f.submit(f.submitter, "vision", 5).ID)
	}
	audio := f.submit(f.audioSubmitter, "audio", 5)

	deciding, release := make(chan struct{}), make(chan struct{})
	var decisions int
	type dequeued struct {
		admissions []store.Admission
		err        error
	}
	dequeueDone := make(chan dequeued, 1)
	go func() {
		policy := scheduler.Policy{StarvationBound: time.Hour}
		admissions, err := f.store.Dequeue(ctx, store.CandidateWindow{Limit: 100}, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
			decisions++
			if decisions == 1 {
				close(deciding)
				<-release
			}
			return policy.Decide(snap)
		})
		dequeueDone <- dequeued{admissions, err}
	}()
	<-deciding

	resp, err := f.send(f.operator, "POST", "/v1/queues/vision/drain", nil)
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	resp.t = t
	var result api.DrainResult
	resp.want(200).decode(&result)
	if len(result.RequeuedJobs) != 0 {
		t.Errorf("drain requeued %v, want none: nothing of vision was admitted yet", result.RequeuedJobs)
	}

	dq := <-dequeueDone
	if dq.err != nil {
		t.Fatal(dq.err)
	}
	if decisions != 2 {
		t.Errorf("the dequeue decided %d times, want 2: once on the read quotas, once on the locked ones", decisions)
	}
	if len(dq.admissions) != 1 || dq.admissions[0].Job.ID != audio.ID {
		t.Errorf("dequeue admitted %+v, want only the audio job", dq.admissions)
	}
	for _, id := range visionJobs {
		if job := f.job(id); job.Status != store.JobQueued {
			t.Errorf("vision job %s is %s, want queued in its drained queue", id, job.Status)
		}
	}
	if n := len(f.admit()); n != 0 {
		t.Errorf("a later dequeue admitted %d jobs, want 0", n)
	}
	if job := f.job(audio.ID); job.Status != store.JobRunning {
		t.Errorf("the audio job is %s, want running: the drain of vision must not touch it", job.Status)
	}
	quota, err := f.store.GetQuota(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if quota.CurrentConcurrent != 0 || quota.GPUHoursReserved != 0 {
		t.Errorf("vision quota %+v, want no slot and no reservation taken", quota)
	}
	models, err := f.store.ListGPUModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if allocated := models[0].AllocatedMilli + models[1].AllocatedMilli; allocated != 1000 {
		t.Errorf("%d GPU milli allocated, want 1000 (the audio job's)", allocated)
	}
}

func TestDrainBeforeDequeue(t *testing.T) {
	f := setup(t)
	f.submit(f.submitter, "vision", 5)
	f.do(f.operator, "POST", "/v1/queues/vision/drain", nil).want(200)
	if n := len(f.admit()); n != 0 {
		t.Errorf("admitted %d jobs of a drained queue, want 0", n)
	}
}

func TestDrainDeadline(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	var result api.DrainResult
	f.do(f.operator, "POST", "/v1/queues/vision/drain", `{"deadline":"2026-05-01T18:00:00+02:00"}`).
		want(200).decode(&result)

	want := time.Date(2026, 5, 1, 16, 0, 0, 0, time.UTC)
	if result.Quota.DrainDeadline == nil || !result.Quota.DrainDeadline.Equal(want) {
		t.Errorf("deadline %v, want %v", result.Quota.DrainDeadline, want)
	}
	deadline, err := f.store.DrainDeadline(ctx, "vision")
	if err != nil || deadline == nil || !deadline.Equal(want) {
		t.Errorf("stored deadline %v (err %v), want %v", deadline, err, want)
	}

	f.do(f.operator, "POST", "/v1/queues/vision/undrain", nil).want(200)
	if deadline, err := f.store.DrainDeadline(ctx, "vision"); err != nil || deadline != nil {
		t.Errorf("after undrain the deadline is %v (err %v), want none", deadline, err)
	}
	if deadline, err := f.store.DrainDeadline(ctx, "nope"); err != nil || deadline != nil {
		t.Errorf("a project without quota has deadline %v (err %v), want none", deadline, err)
	}

	p := f.do(f.operator, "POST", "/v1/queues/vision/drain", `{"deadline":"tonight"}`).problem(400, api.TypeInvalidRequest)
	if p.Field != "deadline" {
		t.Errorf("field %q, want deadline", p.Field)
	}
	f.do(f.operator, "POST", "/v1/queues/nope/drain", nil).problem(404, api.TypeNotFound)
}

func TestQueueActionsAudited(t *testing.T) {
	f := setup(t)
	f.do(f.operator, "POST", "/v1/queues/vision/drain", nil).want(200)
	f.do(f.operator, "POST", "/v1/queues/vision/undrain", nil).want(200)
	f.do(f.operator, "POST", "/v1/queues/vision/undrain", nil).want(200)

	audit := f.projectAudit("vision")
	var actions []string
	for _, r := range audit.Records {
		actions = append(actions, r.Action+" by "+r.Actor)
	}
	if fmt.Sprint(actions) != "[queue.undrain by oncall queue.drain by oncall]" {
		t.Errorf("audit %v, want one drain and one undrain (the second undrain changed nothing)", actions)
	}
	var before, after map[string]any
	response{t: t, body: audit.Records[1].Before}.decode(&before)
	response{t: t, body: audit.Records[1].After}.decode(&after)
	if before["drained_at"] != nil || after["drained_at"] == nil || after["requeued_runs"] != 0.0 {
		t.Errorf("drain record before %v after %v, want drained_at set and 0 runs requeued", before, after)
	}
}

func TestReprioritizeQueue(t *testing.T) {
	f := setup(t)
	running := f.submit(f.submitter, "vision", 5)
	f.admit()
	low := f.submit(f.submitter, "vision", 5)
	mid := f.submit(f.submitter, "vision", 30)
	high := f.submit(f.operator, "vision", 98)
	other := f.submit(f.audioSubmitter, "audio", 5)

	var result api.ReprioritizeResult
	f.do(f.operator, "POST", "/v1/queues/vision/reprioritize", `{"delta": -5}`).want(200).decode(&result)

	got := map[uuid.UUID]string{}
	for _, c := range result.Changes {
		got[c.JobID] = fmt.Sprintf("%d->%d", c.Before, c.After)
	}
	want := map[uuid.UUID]string{low.ID: "5->0", mid.ID: "30->25", high.ID: "98->93"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	for id, priority := range map[uuid.UUID]int{running.ID: 5, low.ID: 0, high.ID: 93, other.ID: 5} {
		if p := f.job(id).Priority; p != priority {
			t.Errorf("job %s has priority %d, want %d", id, p, priority)
		}
	}
	if n := f.count(`SELECT priority FROM job_queue WHERE job_id = $1`, mid.ID); n != 25 {
		t.Errorf("job_queue priority %d, want 25", n)
	}

	for _, body := range []string{`{"delta": 0}`, `{"delta": 101}`, `{}`} {
		p := f.do(f.operator, "POST", "/v1/queues/vision/reprioritize", body).problem(400, api.TypeInvalidRequest)
		if p.Field != "delta" {
			t.Errorf("%s: field %q, want delta", body, p.Field)
		}
	}
}

// A delta that would move queued jobs past a priority bound is rejected and changes
// nothing, because capping them at the bound would lose their order. The detail names the
// jobs, furthest past the bound first, and the deltas that fit.
func TestReprioritizeRejectsOutOfRange(t *testing.T) {
	f := setup(t)
	low := f.submit(f.submitter, "vision", 3)
	high := f.submit(f.operator, "vision", 97)
	top := f.submit(f.operator, "vision", 99)

	cases := []struct {
		delta int
		want  string
	}{
		{5, fmt.Sprintf("delta 5 would move 2 queued jobs outside priorities 0 to 100, so no priority changed: "+
			"%s (99 to 104), %s (97 to 102). Give a delta from -3 to 1", top.ID, high.ID)},
		{-4, fmt.Sprintf("delta -4 would move 1 queued job outside priorities 0 to 100, so no priority changed: "+
			"%s (3 to -1). Give a delta from -3 to 1", low.ID)},
	}
	for _, c := range cases {
		body := fmt.Sprintf(`{"delta": %d}`, c.delta)
		p := f.do(f.operator, "POST", "/v1/queues/vision/reprioritize", body).problem(422, api.TypeUnprocessable)
		if p.Field != "delta" {
			t.Errorf("delta %d: field %q, want delta", c.delta, p.Field)
		}
		if p.Detail != c.want {
			t.Errorf("delta %d: detail %q, want %q", c.delta, p.Detail, c.want)
		}
	}
	for id, priority := range map[uuid.UUID]int{low.ID: 3, high.ID: 97, top.ID: 99} {
		if p := f.job(id).Priority; p != priority {
			t.Errorf("job %s has priority %d, want %d (unchanged)", id, p, priority)
		}
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE action = 'queue.reprioritize'`); n != 0 {
		t.Errorf("%d audit records, want none for rejected requests", n)
	}

	var result api.ReprioritizeResult
	f.do(f.operator, "POST", "/v1/queues/vision/reprioritize", `{"delta": 1}`).want(200).decode(&result)
	if len(result.Changes) != 3 {
		t.Errorf("%d changes, want 3 (a delta at the edge of the range fits)", len(result.Changes))
	}
}

// A rejection names at most ten jobs and counts the others.
func TestReprioritizeRejectionCountsRest(t *testing.T) {
	f := setup(t)
	for range 12 {
		f.submit(f.operator, "vision", 99)
	}
	p := f.do(f.operator, "POST", "/v1/queues/vision/reprioritize", `{"delta": 2}`).problem(422, api.TypeUnprocessable)
	if n := strings.Count(p.Detail, "(99 to 101)"); n != 10 {
		t.Errorf("detail names %d jobs, want 10: %s", n, p.Detail)
	}
	if !strings.Contains(p.Detail, "(99 to 101), and 2 more. Give a delta from -99 to 1") {
		t.Errorf("detail %q, want it to count the 2 jobs not named", p.Detail)
	}
}

// A queue without queued jobs changes nothing, and the response lists no changes as [].
func TestReprioritizeEmptyQueue(t *testing.T) {
	f := setup(t)
	resp := f.do(f.operator, "POST", "/v1/queues/audio/reprioritize", `{"delta": 5}`).want(200)
	var result struct {
		Changes json.RawMessage `json:"changes"`
	}
	resp.decode(&result)
	if string(result.Changes) != "[]" {
		t.Errorf("changes %s, want []", result.Changes)
	}
}

// sameIDs reports whether got holds exactly the ids of want, in any order.
func sameIDs(got []uuid.UUID, want ...uuid.UUID) bool {
	if len(got) != len(want) {
		return false
	}
	for _, id := range want {
		if !slices.Contains(got, id) {
			return false
		}
	}
	return true
}
