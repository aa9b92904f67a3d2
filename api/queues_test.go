package api_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// A drain requeues the runs that were admitted but have not started, whether or not their
// pod exists yet, and leaves running runs alone.
func TestDrainRequeuesPendingRuns(t *testing.T) {
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
		if run.Status != store.RunPreempted || run.EndReason == nil || *run.EndReason != "queue drained" {
			t.Errorf("run %s is %s (%v), want preempted by the drain", a.RunID, run.Status, run.EndReason)
		}
		if job := f.job(a.Job.ID); job.Status != store.JobQueued || job.Attempts != 0 {
			t.Errorf("job %s is %s after %d attempts, want queued with none used", job.ID, job.Status, job.Attempts)
		}
	}
	if job := f.job(running.Job.ID); job.Status != store.JobRunning {
		t.Errorf("the running job is %s, want running", job.Status)
	}
	if q := result.Quota; q.CurrentConcurrent != 1 || q.GPUHoursReserved != 1 {
		t.Errorf("quota %+v, want only the running job's slot and hour", q)
	}
}

// The guarantee of a drain: once it returned 200, no job of the queue starts, even one
// that a dequeue in flight was admitting. The dequeue here holds its locks until the drain
// is found waiting for them.
func TestDrainWaitsForDequeueInFlight(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	var visionJobs []uuid.UUID
	for range 3 {
		visionJobs = append(visionJobs, f.submit(f.submitter, "vision", 5).ID)
	}
	audio := f.submit(f.audioSubmitter, "audio", 5)

	locked, release := make(chan struct{}), make(chan struct{})
	type dequeued struct {
		admissions []store.Admission
		err        error
	}
	dequeueDone := make(chan dequeued, 1)
	go func() {
		policy := scheduler.Policy{StarvationBound: time.Hour}
		admissions, err := f.store.Dequeue(ctx, 100, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
			close(locked)
			<-release
			return policy.Decide(snap)
		})
		dequeueDone <- dequeued{admissions, err}
	}()
	<-locked

	type drained struct {
		resp response
		err  error
	}
	drainDone := make(chan drained, 1)
	go func() {
		resp, err := f.send(f.operator, "POST", "/v1/queues/vision/drain", nil)
		drainDone <- drained{resp, err}
	}()
	f.waitForLockWaiter()
	select {
	case d := <-drainDone:
		t.Fatalf("the drain answered %d while the dequeue held the quota lock", d.resp.status)
	default:
	}

	close(release)
	dq := <-dequeueDone
	if dq.err != nil || len(dq.admissions) != 4 {
		t.Fatalf("dequeue admitted %d jobs (err %v), want all 4", len(dq.admissions), dq.err)
	}
	d := <-drainDone
	if d.err != nil {
		t.Fatal(d.err)
	}
	d.resp.t = t
	var result api.DrainResult
	d.resp.want(200).decode(&result)
	if !sameIDs(result.RequeuedJobs, visionJobs...) {
		t.Errorf("requeued %v, want the 3 vision jobs the dequeue admitted %v", result.RequeuedJobs, visionJobs)
	}

	// The dispatcher may have read those runs as pending before the drain: creating their
	// pods and starting them now changes nothing, so its next reconcile deletes the pods.
	for _, a := range dq.admissions {
		if a.ProjectID != "vision" {
			continue
		}
		if err := f.store.MarkPodCreated(ctx, a.RunID); err != nil {
			t.Fatal(err)
		}
		err := f.store.StartRun(ctx, a.RunID, time.Now(), "node-1")
		if !errors.Is(err, store.ErrStaleStatus) {
			t.Errorf("StartRun of drained run %s: %v, want ErrStaleStatus", a.RunID, err)
		}
		run, err := f.store.GetRun(ctx, a.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if run.Status != store.RunPreempted || run.PodCreatedAt != nil || run.StartedAt != nil {
			t.Errorf("run %s: %s, pod created %v, started %v; want preempted, never started",
				a.RunID, run.Status, run.PodCreatedAt, run.StartedAt)
		}
	}
	if n := f.count(`SELECT count(*) FROM runs WHERE status = 'running'`); n != 0 {
		t.Errorf("%d runs running, want 0", n)
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
		t.Errorf("vision quota %+v, want every slot and reservation released", quota)
	}
	models, err := f.store.ListGPUModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if allocated := models[0].AllocatedMilli + models[1].AllocatedMilli; allocated != 1000 {
		t.Errorf("%d GPU milli allocated, want 1000 (the audio job's)", allocated)
	}
}

// waitForLockWaiter returns once a session of the test database waits for a row lock.
func (f *fixture) waitForLockWaiter() {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n := f.count(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`)
		if n > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.t.Fatal("no session waited for a lock within 10 s")
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

	var audit api.AuditList
	f.do(f.admin, "GET", "/v1/audit?project=vision", nil).want(200).decode(&audit)
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
	atTop := f.submit(f.operator, "vision", 100)
	other := f.submit(f.audioSubmitter, "audio", 5)

	var result api.ReprioritizeResult
	f.do(f.operator, "POST", "/v1/queues/vision/reprioritize", `{"delta": 5}`).want(200).decode(&result)

	got := map[uuid.UUID]string{}
	for _, c := range result.Changes {
		got[c.JobID] = fmt.Sprintf("%d->%d", c.Before, c.After)
	}
	want := map[uuid.UUID]string{low.ID: "5->10", mid.ID: "30->35", high.ID: "98->100"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	for id, priority := range map[uuid.UUID]int{running.ID: 5, low.ID: 10, high.ID: 100, atTop.ID: 100, other.ID: 5} {
		if p := f.job(id).Priority; p != priority {
			t.Errorf("job %s has priority %d, want %d", id, p, priority)
		}
	}
	if n := f.count(`SELECT priority FROM job_queue WHERE job_id = $1`, mid.ID); n != 35 {
		t.Errorf("job_queue priority %d, want 35", n)
	}

	var down api.ReprioritizeResult
	f.do(f.operator, "POST", "/v1/queues/vision/reprioritize", `{"delta": -100}`).want(200).decode(&down)
	if len(down.Changes) != 4 {
		t.Errorf("%d changes, want 4 (every queued vision job to 0)", len(down.Changes))
	}
	for _, body := range []string{`{"delta": 0}`, `{"delta": 101}`, `{}`} {
		p := f.do(f.operator, "POST", "/v1/queues/vision/reprioritize", body).problem(400, api.TypeInvalidRequest)
		if p.Field != "delta" {
			t.Errorf("%s: field %q, want delta", body, p.Field)
		}
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
