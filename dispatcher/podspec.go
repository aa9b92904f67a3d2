package dispatcher

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/jobspec"
)

// Labels and annotations that link a pod to its job and run. Selectors use the labels;
// the annotations carry what a person reading the pod wants to know.
const (
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	ManagedByValue  = "schedulerd"
	LabelJobID      = "schedulerd.io/job-id"
	LabelRunID      = "schedulerd.io/run-id"
	LabelRunNumber  = "schedulerd.io/run"
	LabelProject    = "schedulerd.io/project"
	AnnotationJobAt = "schedulerd.io/job-created-at"
	// AnnotationGPUMilli records the GPU request in thousandths. For a shared GPU (less
	// than 1000) it is the fraction accounting charges; the pod requests the same amount of
	// the GPUMilliResource extended resource instead of whole nvidia.com/gpu.
	AnnotationGPUMilli = "schedulerd.io/gpu-milli"
	// AnnotationResumeFrom is the checkpoint a run resumes from; the container also gets
	// it as the environment variable SCHEDULERD_RESUME_FROM.
	AnnotationResumeFrom = "schedulerd.io/resume-from"

	// Simulation annotations, read by the KWOK stages of the demo and tests only.
	AnnotationSimRunSeconds = "sim.schedulerd.io/run-seconds"
	AnnotationSimExitCode   = "sim.schedulerd.io/exit-code"
	AnnotationSimReason     = "sim.schedulerd.io/reason"
)

// Kubernetes names of GPU resources and labels.
const (
	// GPUResource is the whole-GPU resource of NVIDIA's device plugin.
	GPUResource corev1.ResourceName = "nvidia.com/gpu"
	// GPUMilliResource counts thousandths of a GPU. Nodes advertise 1000 per GPU and every
	// GPU pod requests it too, so whole and shared GPU pods share one count per node.
	GPUMilliResource corev1.ResourceName = "schedulerd.io/gpu-milli"
	// GPUModelLabel is the node label that NVIDIA's GPU feature discovery sets.
	GPUModelLabel = "nvidia.com/gpu.product"
)

// TrainContainer is the name of the container that runs the job's program. The pod may get
// other containers from admission webhooks (a service mesh proxy, say), whose starts and
// exits do not tell how the run went.
const TrainContainer = "train"

// PodInput is everything one run's pod is built from.
type PodInput struct {
	JobID        uuid.UUID
	JobCreatedAt time.Time
	RunID        uuid.UUID
	RunNumber    int
	ProjectID    string
	Namespace    string
	PodName      string
	Priority     int
	GPUMilli     int
	GPUModel     string
	ResumeFrom   string
	Spec         jobspec.Spec
	// Tolerations are the daemon's extra pod tolerations (Config.PodTolerations), which
	// every pod gets, GPU or not, besides those of the GPU resources.
	Tolerations []corev1.Toleration
}

// BuildPod returns the pod of one run. It never restarts on its own: schedulerd decides
// whether a failed run is retried, as a new run with a new pod.
func BuildPod(in PodInput) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        in.PodName,
			Namespace:   in.Namespace,
			Labels:      podLabels(in),
			Annotations: podAnnotations(in),
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			PriorityClassName:             PriorityClassFor(in.Priority).Name,
			ActiveDeadlineSeconds:         ptr(int64(in.Spec.MaxRuntimeSeconds)),
			TerminationGracePeriodSeconds: ptr(int64(30)),
			Containers: []corev1.Container{{
				Name:      TrainContainer,
				Image:     in.Spec.Image,
				Command:   in.Spec.Command,
				Env:       podEnv(in),
				Resources: podResources(in),
			}},
		},
	}
	if in.GPUModel != "" {
		pod.Spec.Affinity = modelAffinity(in.GPUModel)
	}
	pod.Spec.Tolerations = podTolerations(in.GPUMilli > 0, in.Tolerations)
	return pod
}

func podLabels(in PodInput) map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedByValue,
		LabelJobID:     in.JobID.String(),
		LabelRunID:     in.RunID.String(),
		LabelRunNumber: strconv.Itoa(in.RunNumber),
		LabelProject:   in.ProjectID,
	}
}

func podAnnotations(in PodInput) map[string]string {
	a := map[string]string{
		AnnotationJobAt:    in.JobCreatedAt.UTC().Format(time.RFC3339Nano),
		AnnotationGPUMilli: strconv.Itoa(in.GPUMilli),
	}
	if in.ResumeFrom != "" {
		a[AnnotationResumeFrom] = in.ResumeFrom
	}
	if sim := in.Spec.Simulation; sim != nil {
		// The KWOK stages take whole seconds.
		a[AnnotationSimRunSeconds] = strconv.FormatInt(int64(sim.RunSeconds+0.5), 10)
		if sim.ExitCode != 0 {
			a[AnnotationSimExitCode] = strconv.Itoa(sim.ExitCode)
			if sim.Reason != "" {
				a[AnnotationSimReason] = sim.Reason
			}
		}
	}
	return a
}

func podEnv(in PodInput) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: "SCHEDULERD_JOB_ID", Value: in.JobID.String()},
		{Name: "SCHEDULERD_RUN", Value: strconv.Itoa(in.RunNumber)},
		// The training program reports its artifacts to POST /v1/runs/{run id}/artifacts.
		{Name: "SCHEDULERD_RUN_ID", Value: in.RunID.String()},
	}
	if in.ResumeFrom != "" {
		env = append(env, corev1.EnvVar{Name: "SCHEDULERD_RESUME_FROM", Value: in.ResumeFrom})
	}
	if len(in.Spec.Hyperparameters) > 0 {
		// An hpo trial's point. A map of numbers always encodes.
		encoded, _ := json.Marshal(in.Spec.Hyperparameters)
		env = append(env, corev1.EnvVar{Name: "SCHEDULERD_HYPERPARAMETERS", Value: string(encoded)})
	}
	for _, name := range in.Spec.SortedEnv() {
		env = append(env, corev1.EnvVar{Name: name, Value: in.Spec.Env[name]})
	}
	for _, name := range in.Spec.SortedSecretEnv() {
		ref := in.Spec.SecretEnv[name]
		env = append(env, corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name},
				Key: ref.Key}}})
	}
	return env
}

// podResources sets requests equal to limits. Whole GPUs are requested as nvidia.com/gpu;
// a shared GPU only as thousandths. Every GPU pod requests the thousandths too, so that a
// node's shared and whole GPU pods never add up to more than its GPUs.
func podResources(in PodInput) corev1.ResourceRequirements {
	r := in.Spec.Resources
	list := corev1.ResourceList{}
	if r.CPUMilli > 0 {
		list[corev1.ResourceCPU] = *resource.NewMilliQuantity(r.CPUMilli, resource.DecimalSI)
	}
	if r.MemoryMiB > 0 {
		list[corev1.ResourceMemory] = *resource.NewQuantity(r.MemoryMiB<<20, resource.BinarySI)
	}
	if in.GPUMilli > 0 {
		list[GPUMilliResource] = *resource.NewQuantity(int64(in.GPUMilli), resource.DecimalSI)
	}
	if r.GPUs > 0 {
		list[GPUResource] = *resource.NewQuantity(int64(r.GPUs), resource.DecimalSI)
	}
	return corev1.ResourceRequirements{Requests: list, Limits: list.DeepCopy()}
}

// gpuTolerations returns the tolerations of every GPU pod: NoSchedule taints on either GPU
// resource, such as the nvidia.com/gpu:NoSchedule that clusters put on GPU nodes to keep
// other pods off. Kubernetes' ExtendedResourceToleration admission plugin adds the same ones
// to pods that request these resources, but kube-apiserver leaves it off by default. A shared
// GPU pod requests only GPUMilliResource and tolerates nvidia.com/gpu too, because it uses the
// same GPUs.
func gpuTolerations() []corev1.Toleration {
	return []corev1.Toleration{
		{Key: string(GPUResource), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: string(GPUMilliResource), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	}
}

// podTolerations returns the tolerations of a pod: gpuTolerations for a GPU pod, then extra,
// the daemon's setting, for every pod. BuildPod and CountCapacity both call it, so that
// admission counts a node exactly when a GPU pod built here tolerates its taints. The
// returned slice is new, so no two pods share one; it is nil when it would be empty.
// NOTE: pods without GPUs get extra too, so they may use CPU and memory on GPU nodes tainted
// for it, which GPU pods there then lack.
func podTolerations(gpu bool, extra []corev1.Toleration) []corev1.Toleration {
	var tolerations []corev1.Toleration
	if gpu {
		tolerations = gpuTolerations()
	}
	return append(tolerations, extra...)
}

func modelAffinity(model string) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: GPUModelLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{model},
				}},
			}},
		},
	}}
}

func ptr[T any](v T) *T { return &v }
