package api_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

func TestRetryWithSameKey(t *testing.T) {
	f := setup(t)
	body := submitBody(5, fineTune(1))
	var first api.Job
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", body, "Idempotency-Key", "nightly-42").want(201).decode(&first)

	// The same key in the body, with the config's keys in another order, is the same request.
	retry := `{"config":{"resources":{"memory_mib":16384,"cpu_milli":4000,"gpu_models":["A10"],"gpus":1},` +
		`"max_runtime_seconds":3600,"image":"registry.example/trainer:1"},"priority":5,"job_type":"fine_tune",` +
		`"idempotency_key":"nightly-42"}`
	resp := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", retry)
	p := resp.problem(409, api.TypeDuplicateSubmission)

	if p.JobID != first.ID.String() {
		t.Errorf("job_id %q, want %s", p.JobID, first.ID)
	}
	if got, want := resp.header.Get("Location"), "/v1/jobs/"+first.ID.String(); got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if n := f.count(`SELECT count(*) FROM jobs`); n != 1 {
		t.Errorf("%d jobs, want 1", n)
	}
}

func TestReusedKeyDifferentRequest(t *testing.T) {
	f := setup(t)
	var first api.Job
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, fineTune(1)), "Idempotency-Key", "k1").
		want(201).decode(&first)

	p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(6, fineTune(1)), "Idempotency-Key", "k1").
		problem(422, api.TypeIdempotencyKeyReused)
	if p.Field != "idempotency_key" || p.JobID != first.ID.String() {
		t.Errorf("problem %+v, want field idempotency_key and job %s", p, first.ID)
	}
}

func TestSameKeyOtherProject(t *testing.T) {
	f := setup(t)
	var vision, audio api.Job
	f.do(f.operator, "POST", "/v1/projects/vision/jobs", submitBody(5, fineTune(1)), "Idempotency-Key", "k1").
		want(201).decode(&vision)
	f.do(f.operator, "POST", "/v1/projects/audio/jobs", submitBody(5, fineTune(1)), "Idempotency-Key", "k1").
		want(201).decode(&audio)

	if vision.ID == audio.ID {
		t.Errorf("both projects got job %s, want two jobs", vision.ID)
	}
}

func TestKeyHeaderAndBodyDiffer(t *testing.T) {
	f := setup(t)
	body := submitBody(5, fineTune(1))
	body["idempotency_key"] = "body-key"
	p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", body, "Idempotency-Key", "header-key").
		problem(400, api.TypeInvalidRequest)
	if p.Field != "Idempotency-Key" {
		t.Errorf("field %q, want Idempotency-Key", p.Field)
	}
}

// Concurrent submissions with one key store one job; every caller learns its id, and none
// gets a 5xx.
func TestConcurrentSubmitsOneKey(t *testing.T) {
	f := setup(t)
	const callers = 64
	responses := make([]response, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			responses[i], errs[i] = f.send(f.submitter, "POST", "/v1/projects/vision/jobs",
				submitBody(5, fineTune(1)), "Idempotency-Key", "one-key")
		})
	}
	close(start)
	wg.Wait()

	created, duplicates := 0, 0
	ids := map[string]int{}
	for i, r := range responses {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		r.t = t
		switch r.status {
		case http.StatusCreated:
			created++
			var job api.Job
			r.decode(&job)
			ids[job.ID.String()]++
		case http.StatusConflict:
			duplicates++
			var p api.Problem
			r.decode(&p)
			ids[p.JobID]++
		default:
			t.Errorf("status %d: %s", r.status, r.body)
		}
	}

	if created != 1 || duplicates != callers-1 {
		t.Errorf("%d created and %d duplicates, want 1 and %d", created, duplicates, callers-1)
	}
	if len(ids) != 1 {
		t.Errorf("callers saw %d job ids, want 1: %v", len(ids), ids)
	}
	if n := f.count(`SELECT count(*) FROM jobs`); n != 1 {
		t.Errorf("%d jobs stored, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM job_idempotency_keys`); n != 1 {
		t.Errorf("%d idempotency keys stored, want 1", n)
	}
}

// TestRetryAfterClusterOrQuotaChanged: a retry gets its first job (409) even when a check
// that reads the cluster or the quota would now reject the request.
func TestRetryAfterClusterOrQuotaChanged(t *testing.T) {
	cases := []struct {
		name   string
		change func(f *fixture)
	}{
		{"GPU model lost its nodes", func(f *fixture) {
			f.capacity(store.ModelCapacity{Model: "T4", CapacityMilli: 4000, Nodes: 1, LargestNodeMilli: 4000,
				LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 524288})
		}},
		{"priority tier lowered", func(f *fixture) { f.quota("vision", 100, 10) }},
		{"budget below the reservation", func(f *fixture) { f.quota("vision", 0.5, 50) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			body := submitBody(50, fineTune(1))
			var first api.Job
			f.do(f.submitter, "POST", "/v1/projects/vision/jobs", body, "Idempotency-Key", "k1").
				want(201).decode(&first)

			c.change(f)
			resp := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", body, "Idempotency-Key", "k1")
			p := resp.problem(409, api.TypeDuplicateSubmission)
			if p.JobID != first.ID.String() {
				t.Errorf("job_id %q, want %s", p.JobID, first.ID)
			}
			if got, want := resp.header.Get("Location"), "/v1/jobs/"+first.ID.String(); got != want {
				t.Errorf("Location %q, want %q", got, want)
			}
		})
	}
}

// TestRetryWithParent: a retry of a child job gets 409 and a reuse of its key with another
// parent or none gets 422, although only a new job's parent is read from the database.
func TestRetryWithParent(t *testing.T) {
	f := setup(t)
	parent := f.submit(f.submitter, "vision", 5)
	other := f.submit(f.submitter, "vision", 5)
	withParent := func(id uuid.UUID) map[string]any {
		body := submitBody(5, fineTune(1))
		body["parent_job_id"] = id.String()
		return body
	}
	var child api.Job
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", withParent(parent.ID), "Idempotency-Key", "child").
		want(201).decode(&child)

	p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", withParent(parent.ID), "Idempotency-Key", "child").
		problem(409, api.TypeDuplicateSubmission)
	if p.JobID != child.ID.String() {
		t.Errorf("retry: job_id %q, want %s", p.JobID, child.ID)
	}
	p = f.do(f.submitter, "POST", "/v1/projects/vision/jobs", withParent(other.ID), "Idempotency-Key", "child").
		problem(422, api.TypeIdempotencyKeyReused)
	if p.JobID != child.ID.String() {
		t.Errorf("other parent: job_id %q, want %s", p.JobID, child.ID)
	}
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, fineTune(1)), "Idempotency-Key", "child").
		problem(422, api.TypeIdempotencyKeyReused)
}

// quota sets a project's budget and priority tier, keeping the fixture's other limits.
func (f *fixture) quota(project string, budget float64, tier int) {
	f.t.Helper()
	_, err := f.store.UpsertQuota(context.Background(), store.Quota{ProjectID: project, GPUHoursBudget: budget,
		MaxConcurrentJobs: 4, PriorityTier: tier, PeriodStart: date(2026, 1, 1), PeriodEnd: date(2100, 1, 1)})
	if err != nil {
		f.t.Fatal(err)
	}
}
