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

// createProjects creates the trace's projects and quotas. Budgets are divided by the
// speedup, because the replay's jobs hold GPUs for 1/speedup of their trace time. A replay
// that continues on a database with a higher -speedup or a lower -budget-scale than before
// may find a budget below what the earlier jobs hold. SetQuota rejects that, because the
// end of a run could never be recorded under such a budget.
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

// budget is a project's wall-clock GPU-hour budget, rounded to the 4 decimals kept.
func (r *Replayer) budget(p trace.ProjectQuota) float64 {
	return math.Round(p.BudgetGPUHours/r.cfg.Speedup*r.cfg.BudgetScale*1e4) / 1e4
}
