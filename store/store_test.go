package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// setup returns a store on a fresh database with the project "vision" and a quota of
// 10 GPU-hours.
func setup(t *testing.T) *store.Store {
	t.Helper()
	return withVision(t, store.New(pgtest.NewPool(t)))
}

// setupAt is setup on a database whose clock reads at (pgtest.NewPoolAt).
func setupAt(t *testing.T, at time.Time) *store.Store {
	t.Helper()
	return withVision(t, store.New(pgtest.NewPoolAt(t, at)))
}

func withVision(t *testing.T, s *store.Store) *store.Store {
	t.Helper()
	ctx := context.Background()

	if _, err := s.UpsertProject(ctx, store.Project{ID: "vision", OrgID: "acme", K8sNamespace: "team-vision"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpsertQuota(ctx, store.Quota{
		ProjectID: "vision", GPUHoursBudget: 10, MaxConcurrentJobs: 4, PriorityTier: 5,
		PeriodStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		PeriodEnd:   time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func submission(key string) store.Submission {
	return store.Submission{
		ProjectID: "vision", IdempotencyKey: key, JobType: "fine_tune", Priority: 7,
		Config:   json.RawMessage(`{"epochs": 3, "lr": 0.001}`),
		GPUMilli: 2000, GPUModels: []string{"A10"}, MaxRuntimeSeconds: 3600, MaxAttempts: 3,
		MaxPreemptions: 20,
	}
}

func TestSubmitAndGet(t *testing.T) {
	s := setup(t)
	ctx := context.Background()

	job, err := s.SubmitJob(ctx, submission("k1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.JobQueued || got.OrgID != "acme" || got.Priority != 7 || got.GPUMilli != 2000 {
		t.Errorf("got %+v, want queued, org acme, priority 7, 2000 gpu milli", got)
	}
	if got.ID.Version() != 7 {
		t.Errorf("id %s is version %d, want a UUIDv7", got.ID, got.ID.Version())
	}
	if !got.CreatedAt.Equal(job.CreatedAt) {
		t.Errorf("created_at %v, want %v", got.CreatedAt, job.CreatedAt)
	}
}

func TestGetMissingJob(t *testing.T) {
	s := setup(t)
	_, err := s.GetJob(context.Background(), uuid.Must(uuid.NewV7()))
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("error %v, want ErrNotFound", err)
	}
}

func TestSubmitUnknownProject(t *testing.T) {
	s := setup(t)
	sub := submission("")
	sub.ProjectID = "nope"
	_, err := s.SubmitJob(context.Background(), sub)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("error %v, want ErrNotFound", err)
	}
}

func TestDuplicateKeySameRequest(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	first, err := s.SubmitJob(ctx, submission("k1"))
	if err != nil {
		t.Fatal(err)
	}

	retry := submission("k1")
	retry.Config = json.RawMessage(`{"lr": 0.001,   "epochs": 3}`)
	_, err = s.SubmitJob(ctx, retry)
	var dup *store.DuplicateKeyError
	if !errors.As(err, &dup) {
		t.Fatalf("error %v, want *DuplicateKeyError", err)
	}
	if dup.JobID != first.ID || !dup.SameRequest {
		t.Errorf("duplicate %+v, want job %s and same request", dup, first.ID)
	}
}

func TestDuplicateKeyDifferentRequest(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	first, err := s.SubmitJob(ctx, submission("k1"))
	if err != nil {
		t.Fatal(err)
	}

	other := submission("k1")
	other.Priority = 8
	_, err = s.SubmitJob(ctx, other)
	var dup *store.DuplicateKeyError
	if !errors.As(err, &dup) {
		t.Fatalf("error %v, want *DuplicateKeyError", err)
	}
	if dup.JobID != first.ID || dup.SameRequest {
		t.Errorf("duplicate %+v, want job %s and a different request", dup, first.ID)
	}
}

func TestConcurrentSubmitsOneKey(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	const submitters = 64

	ids := make([]uuid.UUID, submitters)
	errs := make([]error, submitters)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			job, err := s.SubmitJob(ctx, submission("same-key"))
			var dup *store.DuplicateKeyError
			switch {
			case err == nil:
				ids[i] = job.ID
			case errors.As(err, &dup):
				ids[i] = dup.JobID
			default:
				errs[i] = err
			}
		}()
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("submitter %d: %v", i, err)
		}
	}
	for i, id := range ids {
		if id != ids[0] {
			t.Errorf("submitter %d got job %s, submitter 0 got %s", i, id, ids[0])
		}
	}
	var jobs int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	if jobs != 1 {
		t.Errorf("%d jobs stored, want 1", jobs)
	}
}

func TestTransitionGuards(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	job, err := s.SubmitJob(ctx, submission(""))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := s.TransitionJob(ctx, job.Ref(), store.JobQueued, store.JobRunning, ""); err != nil {
		t.Fatal(err)
	}
	_, err = s.TransitionJob(ctx, job.Ref(), store.JobQueued, store.JobCancelled, "")
	if !errors.Is(err, store.ErrStaleStatus) {
		t.Errorf("second move from queued: %v, want ErrStaleStatus", err)
	}
	done, err := s.TransitionJob(ctx, job.Ref(), store.JobRunning, store.JobCompleted, "")
	if err != nil {
		t.Fatal(err)
	}
	if done.CompletedAt == nil {
		t.Error("completed job has no completed_at")
	}
	_, err = s.TransitionJob(ctx, job.Ref(), store.JobCompleted, store.JobRunning, "")
	if !errors.Is(err, store.ErrIllegalTransition) {
		t.Errorf("completed -> running: %v, want ErrIllegalTransition", err)
	}
}

func TestDebitBudget(t *testing.T) {
	s := setup(t)
	ctx := context.Background()

	used, err := s.DebitBudget(ctx, "vision", 9.5)
	if err != nil || used != 9.5 {
		t.Fatalf("debit 9.5: used %v, err %v; want 9.5, nil", used, err)
	}
	_, err = s.DebitBudget(ctx, "vision", 0.6)
	if !errors.Is(err, store.ErrBudgetExceeded) {
		t.Errorf("debit past budget: %v, want ErrBudgetExceeded", err)
	}
	used, err = s.DebitBudget(ctx, "vision", 0.5)
	if err != nil || used != 10 {
		t.Errorf("debit to the budget exactly: used %v, err %v; want 10, nil", used, err)
	}
	_, err = s.DebitBudget(ctx, "nope", 1)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("debit of unknown project: %v, want ErrNotFound", err)
	}
}

func TestConcurrentDebitsNeverOverspend(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	const debits = 64 // of 0.25 GPU-hours each against a budget of 10: 40 fit

	var mu sync.Mutex
	applied, refused := 0, 0
	var wg sync.WaitGroup
	for range debits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.DebitBudget(ctx, "vision", 0.25)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				applied++
			case errors.Is(err, store.ErrBudgetExceeded):
				refused++
			default:
				t.Errorf("debit: %v", err)
			}
		}()
	}
	wg.Wait()

	if applied != 40 || refused != 24 {
		t.Errorf("applied %d, refused %d; want 40 and 24", applied, refused)
	}
	quota, err := s.GetQuota(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if quota.GPUHoursUsed != 10 {
		t.Errorf("used %v, want 10", quota.GPUHoursUsed)
	}
}

func TestSQLMetacharactersStoredVerbatim(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	hostile := `x'); DROP TABLE jobs; -- "\ %_ $1`

	sub := submission(hostile)
	sub.Config, _ = json.Marshal(map[string]string{"image": hostile})
	sub.Tags, _ = json.Marshal(map[string]string{"note": hostile})
	job, err := s.SubmitJob(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}

	got, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.IdempotencyKey == nil || *got.IdempotencyKey != hostile {
		t.Errorf("idempotency key %v, want %q", got.IdempotencyKey, hostile)
	}
	var tags map[string]string
	if err := json.Unmarshal(got.Tags, &tags); err != nil || tags["note"] != hostile {
		t.Errorf("tags %s (err %v), want note %q", got.Tags, err, hostile)
	}
	var jobs int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&jobs); err != nil || jobs != 1 {
		t.Errorf("jobs table has %d rows (err %v), want 1", jobs, err)
	}
}

func TestNULByteIsInvalid(t *testing.T) {
	s := setup(t)
	_, err := s.UpsertProject(context.Background(), store.Project{ID: "nul", OrgID: "ac\x00me", K8sNamespace: "nul"})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("error %v, want ErrInvalid", err)
	}
}

// waitsForCommit runs sql in a transaction that it keeps open, then runs op and checks that
// op waits for that transaction. It commits the transaction and returns op's error.
func waitsForCommit(t *testing.T, s *store.Store, sql string, op func() error) error {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		t.Fatalf("returned %v while another transaction held the row, want it to wait", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return <-done
}
