package dispatcher

import (
	"strconv"

	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PriorityClass is one tier of job priority as a Kubernetes PriorityClass, so that
// kube-scheduler orders and, when it must, preempts pods the way schedulerd orders jobs.
type PriorityClass struct {
	Name        string
	MinPriority int // lowest job priority (0 to 100) in this tier
	Value       int32
}

// PriorityClasses lists the tiers from the highest. The job priorities the trace replay
// uses (90, 70, 50, 10) fall one in each tier.
var PriorityClasses = []PriorityClass{
	{Name: "schedulerd-critical", MinPriority: 90, Value: 100000},
	{Name: "schedulerd-high", MinPriority: 70, Value: 10000},
	{Name: "schedulerd-normal", MinPriority: 30, Value: 1000},
	{Name: "schedulerd-low", MinPriority: 0, Value: 100},
}

// PriorityClassFor returns the tier of a job priority.
func PriorityClassFor(priority int) PriorityClass {
	for _, c := range PriorityClasses {
		if priority >= c.MinPriority {
			return c
		}
	}
	return PriorityClasses[len(PriorityClasses)-1]
}

func (c PriorityClass) object() *schedulingv1.PriorityClass {
	return &schedulingv1.PriorityClass{
		ObjectMeta:  metav1.ObjectMeta{Name: c.Name, Labels: map[string]string{LabelManagedBy: ManagedByValue}},
		Value:       c.Value,
		Description: "schedulerd jobs with priority " + strconv.Itoa(c.MinPriority) + " and above",
	}
}
