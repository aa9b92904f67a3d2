package replay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/sim"
	"github.com/schedulerd/schedulerd/store"
)

// replayLabel marks the nodes a replay created, so that waiting for them ignores others.
const replayLabel = "sim.schedulerd.io/replay"

// createNodes creates the trace's nodes as KWOK nodes, 16 at a time, and waits until they
// are all Ready. Nodes left by an interrupted run of the same replay are kept.
func (r *Replayer) createNodes(ctx context.Context) error {
	nodes := r.plan.nodes
	work := make(chan trace.Node)
	errs := make(chan error, len(nodes))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for n := range work {
				errs <- r.createNode(ctx, n)
			}
		})
	}
	for _, n := range nodes {
		work <- n
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(r.cfg.Progress, "created %d nodes; waiting until they are Ready\n", len(nodes))
	return sim.WaitReady(ctx, r.kube, replayLabel+"=true", len(nodes))
}

func (r *Replayer) createNode(ctx context.Context, n trace.Node) error {
	name := strings.ToLower(n.SerialNumber)
	node := sim.GPUNode(name, n.Model, n.GPUs, n.CPUMilli, n.MemoryMiB, map[string]string{replayLabel: "true"})
	_, err := r.kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	return nil
}

// createProjects creates the trace's projects and their quotas. A replay that continues on
// a database with a higher -speedup or a lower -budget-scale than before may find a budget
// below what the earlier jobs hold. SetQuota rejects that, because the end of a run could
// never be recorded under such a budget.
func (r *Replayer) createProjects(ctx context.Context) error {
	now := time.Now().UTC()
	for _, p := range trace.DefaultProjects() {
		id := string(p.Name)
		if _, err := r.store.UpsertProject(ctx, store.Project{ID: id, OrgID: "alibaba-trace",
			DisplayName: "trace project " + id, K8sNamespace: "trace-" + id}); err != nil {
			return err
		}
		concurrent := p.MaxConcurrentJobs
		if r.cfg.MaxConcurrent > 0 {
			concurrent = r.cfg.MaxConcurrent
		}
		_, err := r.store.SetQuota(ctx, store.Quota{ProjectID: id, GPUHoursBudget: r.budget(p),
			MaxConcurrentJobs: concurrent, PriorityTier: 50,
			PeriodStart: now.AddDate(0, 0, -1), PeriodEnd: now.AddDate(1, 0, 0)}, nil)
		var conflict *store.QuotaConflictError
		if errors.As(err, &conflict) {
			return fmt.Errorf("%w; this database contains jobs of an earlier replay: continue it with the same "+
				"-speedup, -budget-scale and -max-concurrent, or replay into a fresh database", err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// budget computes a project's GPU-hour budget, rounded to the 4 decimals kept. In paced
// mode it is the trace budget divided by the speedup, because the replay's jobs hold GPUs
// for 1/speedup of their trace time, and multiplied by -budget-scale. Fill mode measures
// how many tasks the cluster holds, so its budget never limits: see fillBudget.
func (r *Replayer) budget(p trace.ProjectQuota) float64 {
	if r.cfg.Mode == trace.ModeFill {
		return r.fillBudget()
	}
	return math.Round(p.BudgetGPUHours/r.cfg.Speedup*r.cfg.BudgetScale*1e4) / 1e4
}

// fillBudget computes a budget that no project can exhaust in fill mode, whatever the
// speedup and -budget-scale. Each fill-mode job reserves its GPUs for
// jobspec.MaxRuntimeLimit (30 days), so a project whose jobs take every GPU of the trace's
// nodes reserves at most their count times 720 hours. Each reservation rounds up by at most
// half of the 0.0001 GPU-hours kept, so 0.0001 per task covers the rounding.
func (r *Replayer) fillBudget() float64 {
	var gpus int64
	for _, n := range r.plan.nodes {
		gpus += int64(n.GPUs)
	}
	hours := float64(gpus) * jobspec.MaxRuntimeLimit / 3600
	return math.Ceil((hours+1e-4*float64(len(r.plan.schedule.Entries)))*1e4) / 1e4
}
