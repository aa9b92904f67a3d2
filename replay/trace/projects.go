package trace

import "hash/fnv"

// ProjectName names a schedulerd project that replayed jobs are billed to.
// The trace has no projects, so Project invents a stable assignment.
type ProjectName string

// Projects of DefaultProjects, in hash order: a name whose hash is 0
// modulo 5 goes to vision.
const (
	ProjectVision   ProjectName = "vision"
	ProjectSpeech   ProjectName = "speech"
	ProjectNLP      ProjectName = "nlp"
	ProjectRecSys   ProjectName = "recsys"
	ProjectResearch ProjectName = "research"
)

// ProjectQuota is a project with the limits that schedulerd enforces on it.
type ProjectQuota struct {
	Name ProjectName

	// BudgetGPUHours is the GPU-hours the project may use in total.
	BudgetGPUHours float64

	// MaxConcurrentJobs is the number of the project's jobs that may run
	// at once.
	MaxConcurrentJobs int
}

// DefaultProjects returns the projects that Project assigns tasks to, in
// hash order. Budgets are in trace GPU-hours (GPUHours). A full replay of
// openb_pod_list_default.csv, Pending tasks included, uses:
//
//	project   used GPU-hours  budget  trace peak of running GPU jobs
//	vision          13,427.6   9,000  14
//	speech           6,902.4  10,000  12
//	nlp              7,272.3  10,000  13
//	recsys          11,337.1  15,000  15
//	research        12,559.3  15,000  13
//
// vision exceeds its budget both in the full replay and in the first 300
// GPU tasks (9,710.7 GPU-hours), so replay tests exercise budget
// enforcement. recsys may run 12 jobs at once, fewer than its trace peak,
// so the concurrency limit is exercised too.
//
// NOTE: a replay with speedup S holds GPUs for RunSeconds/S of wall time,
// so a scheduler that meters wall-clock GPU time must divide the budgets
// by S.
func DefaultProjects() []ProjectQuota {
	return []ProjectQuota{
		{Name: ProjectVision, BudgetGPUHours: 9_000, MaxConcurrentJobs: 16},
		{Name: ProjectSpeech, BudgetGPUHours: 10_000, MaxConcurrentJobs: 16},
		{Name: ProjectNLP, BudgetGPUHours: 10_000, MaxConcurrentJobs: 16},
		{Name: ProjectRecSys, BudgetGPUHours: 15_000, MaxConcurrentJobs: 12},
		{Name: ProjectResearch, BudgetGPUHours: 15_000, MaxConcurrentJobs: 16},
	}
}

// Project returns the project of the task: the FNV-1a 64-bit hash of the
// task name, modulo the number of DefaultProjects, indexes the list. The
// name alone decides, so the same task lands in the same project in every
// run and in every sample.
func Project(t Task) ProjectName {
	projects := DefaultProjects()

	return projects[projectIndex(t.Name, len(projects))].Name
}

func projectIndex(name string, count int) int {
	hash := fnv.New64a()
	hash.Write([]byte(name))

	return int(hash.Sum64() % uint64(count))
}
