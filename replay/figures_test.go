package replay

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/replay/report"
	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/store"
)

// submitLowTask submits a one-GPU BE task (tier low) as the replay does, creating its
// project first.
func submitLowTask(t *testing.T, s *store.Store, name string) store.Job {
	t.Helper()
	task := trace.Task{Source: "tasks.csv", Name: name, CPUMilli: 1000, MemoryMiB: 1024, NumGPU: 1,
		GPUShareMilli: 1000, QoS: trace.QoSBestEffort, Phase: trace.PhaseSucceeded, Scheduled: true,
		DeletionTime: 100}
	daemontest.CreateProject(t, s, string(trace.Project(task)), 1000, 10)
	sub, _, err := Submission(trace.Entry{Task: task, Run: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	job, err := s.SubmitJob(context.Background(), sub)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// admitJob admits the queued job on T4 and returns its new run.
func admitJob(t *testing.T, s *store.Store, job store.Job) store.Admission {
	t.Helper()
	admissions, err := s.Dequeue(context.Background(), store.CandidateWindow{Limit: 10}, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		for _, c := range snap.Candidates {
			if c.JobID == job.ID {
				hours := float64(c.GPUMilli) / 1000 * float64(c.MaxRuntimeSeconds) / 3600
				return []store.Decision{{Candidate: c, GPUModel: "T4", GPUHoursReserved: hours}}, nil
			}
		}
		return nil, nil
	})
	if err != nil {
		t.Fatalf("admit job %s: %v", job.ID, err)
	}
	if len(admissions) != 1 {
		t.Fatalf("admit job %s: %d admissions, want 1", job.ID, len(admissions))
	}
	return admissions[0]
}

// runJob starts the run's container at start and completes it 10 seconds later.
func runJob(t *testing.T, s *store.Store, a store.Admission, start time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := s.StartRun(ctx, a.RunID, start, "t4-node-0"); err != nil {
		t.Fatal(err)
	}
	end := store.RunEnd{RunID: a.RunID, Status: store.RunCompleted, EndedAt: start.Add(10 * time.Second)}
	if _, err := s.EndRun(ctx, end); err != nil {
		t.Fatal(err)
	}
}

// newT4Store is a fresh database with one T4 node's capacity.
func newT4Store(t *testing.T) *store.Store {
	t.Helper()
	s := store.New(pgtest.NewPool(t))
	capacity := store.ModelCapacity{Model: "T4", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000,
		LargestNodeCPUMilli: 96000, LargestNodeMemoryMiB: 393216}
	if err := s.SyncGPUCapacity(context.Background(), []store.ModelCapacity{capacity}); err != nil {
		t.Fatal(err)
	}
	return s
}

// lowTierWaits returns the report's queue waits, which must be one row, for the low tier.
func lowTierWaits(t *testing.T, s *store.Store) report.TierWait {
	t.Helper()
	r := &Replayer{store: s}
	waits, err := r.tierWaits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(waits) != 1 {
		t.Fatalf("waits %+v, want one row, for tier low", waits)
	}
	return waits[0]
}

// TestTierWaitsCountLaterRunStart checks the queue-wait figures of four low-tier jobs.
// The first ran on its first run. The second's first pod was preempted before its container
// started, so its wait ends at its second run's start. The third's first run started and
// was evicted, so its wait ends at that first start. The fourth is still queued.
func TestTierWaitsCountLaterRunStart(t *testing.T) {
	ctx := context.Background()
	s := newT4Store(t)

	firstTry := submitLowTask(t, s, "task-first-try")
	runJob(t, s, admitJob(t, s, firstTry), firstTry.CreatedAt.Add(5*time.Second))

	retried := submitLowTask(t, s, "task-retried")
	first := admitJob(t, s, retried)
	preempted := store.RunEnd{RunID: first.RunID, Status: store.RunPreempted, EndedAt: time.Now(),
		Reason: "unschedulable for 5m0s: 0/1 nodes are available"}
	if _, err := s.EndRun(ctx, preempted); err != nil {
		t.Fatal(err)
	}
	second := admitJob(t, s, retried)
	if second.RunNumber != 2 {
		t.Fatalf("second admission has run number %d, want 2", second.RunNumber)
	}
	runJob(t, s, second, retried.CreatedAt.Add(40*time.Second))

	restarted := submitLowTask(t, s, "task-restarted")
	firstRun := admitJob(t, s, restarted)
	if err := s.StartRun(ctx, firstRun.RunID, restarted.CreatedAt.Add(8*time.Second), "t4-node-0"); err != nil {
		t.Fatal(err)
	}
	evicted := store.RunEnd{RunID: firstRun.RunID, Status: store.RunPreempted,
		EndedAt: restarted.CreatedAt.Add(20 * time.Second), Reason: "Evicted"}
	if _, err := s.EndRun(ctx, evicted); err != nil {
		t.Fatal(err)
	}
	runJob(t, s, admitJob(t, s, restarted), restarted.CreatedAt.Add(60*time.Second))

	submitLowTask(t, s, "task-never-started")

	low := lowTierWaits(t, s)
	if low.Tier != string(trace.TierLow) {
		t.Errorf("tier %q, want %q", low.Tier, trace.TierLow)
	}
	if low.Jobs != 4 {
		t.Errorf("jobs %d, want 4 (every job of the tier)", low.Jobs)
	}
	if low.Started != 3 {
		t.Errorf("started %d, want 3 (the retried job counts by its second run)", low.Started)
	}
	if low.Max != 40*time.Second {
		t.Errorf("max wait %s, want 40s (the retried job's wait to its second run's start; "+
			"the restarted job's wait ends at its first start, 8s, not its second, 60s)", low.Max)
	}
	if low.P50 != 8*time.Second {
		t.Errorf("p50 %s, want 8s (the middle of the waits of 5s, 8s and 40s)", low.P50)
	}
}

// TestTierWaitsClampEarlyStart gives one job a container start 400 ms before its
// submission, as a start time truncated to whole seconds can be, and leaves a second job
// queued. The first job's wait is 0, not negative, and the queued job's wait stays absent.
func TestTierWaitsClampEarlyStart(t *testing.T) {
	s := newT4Store(t)

	early := submitLowTask(t, s, "task-early-start")
	runJob(t, s, admitJob(t, s, early), early.CreatedAt.Add(-400*time.Millisecond))
	submitLowTask(t, s, "task-never-started")

	low := lowTierWaits(t, s)
	if low.Jobs != 2 {
		t.Errorf("jobs %d, want 2", low.Jobs)
	}
	if low.Started != 1 {
		t.Errorf("started %d, want 1 (the queued job has no wait, not a wait of 0)", low.Started)
	}
	if low.P50 != 0 {
		t.Errorf("p50 %s, want 0 (the early start clamped)", low.P50)
	}
	if low.Max != 0 {
		t.Errorf("max wait %s, want 0 (the early start clamped)", low.Max)
	}
}

// TestRunLengthsAtDefaultSpeedup paces tasks of chosen trace run lengths at a speedup of
// 20,000, where pods of 0 s are trace runs under 10,000 s and pods of 1 s are runs from
// 10,000 s to under 30,000 s.
func TestRunLengthsAtDefaultSpeedup(t *testing.T) {
	var tasks []trace.Task
	for i, runSeconds := range []int64{0, 1, 9_999, 9_999, 10_000, 29_999, 30_000, 1_000_000} {
		tasks = append(tasks, trace.Task{Name: fmt.Sprintf("task-%d", i), NumGPU: 1, GPUShareMilli: 1000,
			Scheduled: true, DeletionTime: runSeconds})
	}
	schedule, err := trace.Pace(tasks, 20_000, 20)
	if err != nil {
		t.Fatal(err)
	}

	got := runLengths(schedule.Entries)
	if got.Runs != 8 {
		t.Errorf("runs %d, want 8", got.Runs)
	}
	if got.ZeroInTrace != 1 {
		t.Errorf("runs of 0 s in the trace %d, want 1", got.ZeroInTrace)
	}
	if got.ShortenedToZero != 3 {
		t.Errorf("runs shortened to 0 s %d, want 3 (1 s and twice 9,999 s)", got.ShortenedToZero)
	}
	if got.ShortenedToOne != 2 {
		t.Errorf("runs shortened to 1 s %d, want 2 (10,000 s and 29,999 s)", got.ShortenedToOne)
	}
}

// TestRunLengthsInFillMode counts no run, because fill-mode pods never end.
func TestRunLengthsInFillMode(t *testing.T) {
	task := trace.Task{Name: "task", NumGPU: 1, GPUShareMilli: 1000, Scheduled: true, DeletionTime: 5}
	schedule, err := trace.Fill([]trace.Task{task})
	if err != nil {
		t.Fatal(err)
	}
	if got := runLengths(schedule.Entries); got != (report.RunLengths{}) {
		t.Errorf("run lengths %+v, want none counted", got)
	}
}

// TestProjectUsageSplitsFigures replays by hand two tasks of one project at a speedup of 10.
// The first runs 104 trace seconds: 10.4 s at this speedup, a pod of 10 s. Its first run
// is preempted 5 s after its container starts, and its second completes. The second task
// stays queued. The project's row gives the simulated 10 s and the unrounded 10.4 s of the
// ended job only, and counts the preempted run with its 5 s.
func TestProjectUsageSplitsFigures(t *testing.T) {
	ctx := context.Background()
	s := newT4Store(t)
	ended := trace.Task{Source: "tasks.csv", Name: "usage-task-0", CPUMilli: 1000, MemoryMiB: 1024, NumGPU: 1,
		GPUShareMilli: 1000, QoS: trace.QoSBestEffort, Phase: trace.PhaseSucceeded, Scheduled: true,
		DeletionTime: 104}
	queued := ended
	for i := 1; queued.Name == ended.Name || trace.Project(queued) != trace.Project(ended); i++ {
		queued.Name = fmt.Sprintf("usage-task-%d", i)
	}
	project := string(trace.Project(ended))
	daemontest.CreateProject(t, s, project, 1000, 10)
	schedule, err := trace.Pace([]trace.Task{ended, queued}, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	var jobs []store.Job
	for _, e := range schedule.Entries {
		sub, _, err := Submission(e)
		if err != nil {
			t.Fatal(err)
		}
		job, err := s.SubmitJob(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, job)
	}

	first := admitJob(t, s, jobs[0])
	start := time.Now().Add(-time.Minute)
	if err := s.StartRun(ctx, first.RunID, start, "t4-node-0"); err != nil {
		t.Fatal(err)
	}
	preempted := store.RunEnd{RunID: first.RunID, Status: store.RunPreempted, EndedAt: start.Add(5 * time.Second),
		Reason: "Evicted"}
	if _, err := s.EndRun(ctx, preempted); err != nil {
		t.Fatal(err)
	}
	runJob(t, s, admitJob(t, s, jobs[0]), start.Add(20*time.Second))

	r := &Replayer{store: s, cfg: Config{Speedup: 10}, plan: &plan{schedule: schedule}}
	usage, err := r.projectUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(usage) != 1 {
		t.Fatalf("usage %+v, want one row, for %s", usage, project)
	}
	got := usage[0]
	if got.Jobs != 2 {
		t.Errorf("jobs %d, want 2", got.Jobs)
	}
	if want := 10.0 / 3600; math.Abs(got.SimulatedGPUHours-want) > 1e-9 {
		t.Errorf("simulated GPU-hours %v, want %v (one GPU for the rounded 10 s)", got.SimulatedGPUHours, want)
	}
	if want := 10.4 / 3600; math.Abs(got.TraceGPUHours-want) > 1e-9 {
		t.Errorf("trace GPU-hours %v, want %v (one GPU for 104 trace seconds / 10)", got.TraceGPUHours, want)
	}
	if got.PreemptedRuns != 1 {
		t.Errorf("preempted runs %d, want 1", got.PreemptedRuns)
	}
	if want := 5.0 / 3600; math.Abs(got.PreemptedGPUHours-want) > 1e-6 {
		t.Errorf("GPU-hours of preempted runs %v, want %v (5 s, stored to 6 decimals)", got.PreemptedGPUHours, want)
	}
	// The quota keeps 4 decimals, and each of the two debits may round by 0.00005.
	if want := 15.0 / 3600; math.Abs(got.GPUHours-want) > 1e-4 {
		t.Errorf("used GPU-hours %v, want %v (the preempted 5 s and the completed 10 s)", got.GPUHours, want)
	}
}

// TestFillSharesCountStartedRuns: the fill's allocated share counts the GPUs of runs whose
// container started. A job admitted because its model has enough free GPUs in total, whose
// pod no node can take, is where a fill stops, and its GPUs are not in use on any node.
func TestFillSharesCountStartedRuns(t *testing.T) {
	s := newT4Store(t)
	placed := admitJob(t, s, submitLowTask(t, s, "openb-pod-0001"))
	if err := s.StartRun(context.Background(), placed.RunID, time.Now(), "t4-node-0"); err != nil {
		t.Fatal(err)
	}
	admitJob(t, s, submitLowTask(t, s, "openb-pod-0002")) // its pod stays Pending

	r := &Replayer{store: s}
	capacity, shares, err := r.capacity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if capacity["T4"] != 8000 {
		t.Errorf("T4 capacity %d thousandths, want 8000", capacity["T4"])
	}
	want := []report.ModelShare{{Model: "T4", AllocatedMilli: 1000, CapacityMilli: 8000}}
	if !slices.Equal(shares, want) {
		t.Errorf("fill shares %+v, want %+v: the admitted job whose container never started holds no GPU", shares, want)
	}
}
