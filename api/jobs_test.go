package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

func TestSubmitAndGet(t *testing.T) {
	f := setup(t)
	body := map[string]any{"job_type": "fine_tune", "priority": 7, "config": fineTune(2),
		"tags": map[string]string{"team": "vision", "run": "baseline"}}

	resp := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", body).want(201)
	var job api.Job
	resp.decode(&job)

	if got, want := resp.header.Get("Location"), "/v1/jobs/"+job.ID.String(); got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if job.Project != "vision" || job.Org != "acme" || job.Status != "queued" || job.Priority != 7 {
		t.Errorf("job %+v, want project vision, org acme, queued, priority 7", job)
	}
	if job.GPUMilli != 2000 || job.MaxRuntimeSeconds != 3600 || job.MaxAttempts != 3 {
		t.Errorf("gpu_milli %d, max_runtime_seconds %d, max_attempts %d; want 2000, 3600, 3",
			job.GPUMilli, job.MaxRuntimeSeconds, job.MaxAttempts)
	}
	var tags map[string]string
	if err := json.Unmarshal(job.Tags, &tags); err != nil || len(tags) != 2 || tags["team"] != "vision" || tags["run"] != "baseline" {
		t.Errorf("tags %s, want team vision and run baseline", job.Tags)
	}

	var got api.Job
	f.do(f.submitter, "GET", "/v1/jobs/"+job.ID.String(), nil).want(200).decode(&got)
	if got.ID != job.ID || got.Status != "queued" || string(got.Config) != string(job.Config) {
		t.Errorf("GET returned %+v, want the submitted job", got)
	}
}

func TestSubmitDefaults(t *testing.T) {
	f := setup(t)
	var job api.Job
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs",
		map[string]any{"job_type": "eval_only", "config": map[string]any{"image": "eval:1", "max_runtime_seconds": 600}}).
		want(201).decode(&job)

	if job.Priority != api.DefaultPriority || job.GPUMilli != 0 || string(job.Tags) != "{}" || len(job.GPUModels) != 0 {
		t.Errorf("job %+v, want priority 5, no GPU, tags {}, no models", job)
	}
}

// A job without max_preemptions gets 20, one with it keeps its value, and both show no
// preemption yet.
func TestSubmitMaxPreemptions(t *testing.T) {
	f := setup(t)
	var byDefault api.Job
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, fineTune(1))).want(201).decode(&byDefault)
	if byDefault.MaxPreemptions != 20 || byDefault.Preemptions != 0 {
		t.Errorf("job without max_preemptions: %d of %d preemptions, want 0 of 20",
			byDefault.Preemptions, byDefault.MaxPreemptions)
	}

	config := fineTune(1)
	config["max_preemptions"] = 1
	var set api.Job
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, config)).want(201).decode(&set)
	if set.MaxPreemptions != 1 || set.Preemptions != 0 {
		t.Errorf("job with max_preemptions 1: %d of %d preemptions, want 0 of 1", set.Preemptions, set.MaxPreemptions)
	}
}

// An invalid max_preemptions is rejected with the range, the value sent and what 1 and
// leaving it out mean.
func TestSubmitMaxPreemptionsDetail(t *testing.T) {
	f := setup(t)
	config := fineTune(1)
	config["max_preemptions"] = 0
	p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, config)).problem(400, api.TypeInvalidRequest)
	if p.Field != "config.max_preemptions" {
		t.Errorf("field %q, want config.max_preemptions", p.Field)
	}
	want := "must be between 1 and 1000, got 0 (1 fails the job at its first preemption, and leaving it out means 20)"
	if p.Detail != want {
		t.Errorf("detail %q, want %q", p.Detail, want)
	}
}

// badSubmissions are bodies that must be rejected with 400 naming field.
var badSubmissions = []struct {
	name  string
	body  string
	field string
}{
	{"unknown field", `{"job_type":"fine_tune","config":{},"colour":"red"}`, "colour"},
	{"priority wrong type", `{"job_type":"fine_tune","priority":"high","config":{}}`, "priority"},
	{"priority fraction", `{"job_type":"fine_tune","priority":5.5,"config":{}}`, "priority"},
	{"priority too high", `{"job_type":"fine_tune","priority":101,"config":` + validConfig + `}`, "priority"},
	{"priority negative", `{"job_type":"fine_tune","priority":-1,"config":` + validConfig + `}`, "priority"},
	{"missing job type", `{"config":` + validConfig + `}`, "job_type"},
	{"unknown job type", `{"job_type":"pretrain","config":` + validConfig + `}`, "job_type"},
	{"missing config", `{"job_type":"fine_tune"}`, "config"},
	{"config not an object", `{"job_type":"fine_tune","config":"big"}`, "config"},
	{"config unknown field", `{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":1,"gpus":1}}`, "config.gpus"},
	{"config wrong type", `{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":"1h"}}`, "config.max_runtime_seconds"},
	{"config missing image", `{"job_type":"fine_tune","config":{"max_runtime_seconds":60,"resources":{"gpus":1}}}`, "config.image"},
	{"image of spaces", `{"job_type":"fine_tune","config":{"image":"   ","max_runtime_seconds":60,"resources":{"gpus":1}}}`, "config.image"},
	{"image with a space", `{"job_type":"fine_tune","config":{"image":"trainer :1","max_runtime_seconds":60,"resources":{"gpus":1}}}`, "config.image"},
	{"training without GPU", `{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":60}}`, "config.resources"},
	{"rlhf on a GPU share", `{"job_type":"rlhf","config":{"image":"x","max_runtime_seconds":60,"resources":{"gpu_share_milli":500}}}`, "config.resources.gpus"},
	{"config key in two cases", `{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":2592000,` +
		`"MAX_RUNTIME_SECONDS":60,"resources":{"gpus":1,"gpu_models":["A10"]}}}`, "config.MAX_RUNTIME_SECONDS"},
	{"config key repeated", `{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":60,` +
		`"resources":{"gpus":8,"gpu_models":["A10"]},"resources":{"gpus":1}}}`, "config.resources"},
	{"max_preemptions zero", `{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":60,` +
		`"max_preemptions":0,"resources":{"gpus":1}}}`, "config.max_preemptions"},
	{"max_preemptions above 1000", `{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":60,` +
		`"max_preemptions":1001,"resources":{"gpus":1}}}`, "config.max_preemptions"},
	{"max_preemptions wrong type", `{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":60,` +
		`"max_preemptions":"5","resources":{"gpus":1}}}`, "config.max_preemptions"},
	{"model listed twice", `{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":60,"resources":{"gpus":1,"gpu_models":["A10","T4","A10"]}}}`, "config.resources.gpu_models[2]"},
	{"reserved env name", `{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":60,` +
		`"resources":{"gpus":1},"env":{"SCHEDULERD_RUN_ID":"x"}}}`, "config.env"},
	{"invalid Secret name", `{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":60,` +
		`"resources":{"gpus":1},"secret_env":{"TOKEN":{"name":"S3_Creds","key":"k"}}}}`, `config.secret_env["TOKEN"].name`},
	{"tags wrong type", `{"job_type":"fine_tune","config":` + validConfig + `,"tags":{"a":1}}`, "tags.a"},
	{"tag key invalid", `{"job_type":"fine_tune","config":` + validConfig + `,"tags":{"a b":"c"}}`, "tags"},
	{"parent not a uuid", `{"job_type":"fine_tune","config":` + validConfig + `,"parent_job_id":"42"}`, "parent_job_id"},
	{"key with space", `{"job_type":"fine_tune","config":` + validConfig + `,"idempotency_key":"a b"}`, "idempotency_key"},
	{"key repeated", `{"job_type":"fine_tune","priority":5,"priority":6,"config":` + validConfig + `}`, "priority"},
	{"key in another case", `{"job_type":"fine_tune","Priority":45,"config":` + validConfig + `}`, "Priority"},
	{"trailing data", `{"job_type":"fine_tune","config":` + validConfig + `} {}`, "body"},
	{"array body", `[1,2]`, "body"},
	{"truncated", `{"job_type":"fine_tune","config":{`, "body"},
	{"syntax error", `{"job_type" "fine_tune"}`, "body"},
	{"empty body", ``, "body"},
	{"invalid UTF-8", "{\"job_type\":\"fine_tune\",\"config\":" + validConfig + ",\"tags\":{\"a\":\"\xff\"}}", "body"},
}

const validConfig = `{"image":"trainer:1","max_runtime_seconds":3600,"resources":{"gpus":1,"gpu_models":["A10"]}}`

func TestSubmitRejectsBadRequests(t *testing.T) {
	f := setup(t)
	for _, c := range badSubmissions {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", c.body).problem(400, api.TypeInvalidRequest)
			if p.Field != c.field {
				t.Errorf("field %q, want %q (detail %q)", p.Field, c.field, p.Detail)
			}
			if p.Detail == "" || p.RequestID == "" {
				t.Errorf("problem %+v lacks a detail or a request id", p)
			}
		})
	}
	f.t = t
	if n := f.count(`SELECT count(*) FROM jobs`); n != 0 {
		t.Errorf("%d jobs stored, want 0", n)
	}
}

// Unknown fields and values of the wrong type are reported alike in the body and in the
// config: the field's JSON path from the top of the body, and one wording of the reason.
func TestSubmitFieldErrorDetails(t *testing.T) {
	f := setup(t)
	cases := []struct{ body, field, detail string }{
		{`{"job_type":"fine_tune","config":{},"colour":"red"}`, "colour", "unknown field"},
		{`{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":60,"resources":{"gpus":1,"foo":1}}}`,
			"config.resources.foo", "unknown field"},
		{`{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":60,"bar":1}}`,
			"config.bar", "unknown field"},
		{`{"job_type":"fine_tune","priority":"high","config":{}}`, "priority", "expected an integer, got JSON string"},
		{`{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":"600"}}`,
			"config.max_runtime_seconds", "expected an integer, got JSON string"},
		{`{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":60,"resources":{"gpus":"1"}}}`,
			"config.resources.gpus", "expected an integer, got JSON string"},
		{`{"job_type":"fine_tune","tags":{"team":"cv","sprint":12},"config":{}}`, "tags.sprint",
			"expected a string, got JSON number"},
		{`{"job_type":"fine_tune","config":{"image":"x","max_runtime_seconds":60,"env":{"EPOCHS":3}}}`,
			"config.env.EPOCHS", "expected a string, got JSON number"},
		{`{"job_type":"fine_tune","priority":99999999999999999999,"config":{}}`, "priority",
			"the integer 99999999999999999999 is out of range"},
	}
	for _, c := range cases {
		p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", c.body).problem(400, api.TypeInvalidRequest)
		if p.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.body, p.Field, c.field)
		}
		if p.Detail != c.detail {
			t.Errorf("%s: detail %q, want %q", c.body, p.Detail, c.detail)
		}
	}
}

func TestSubmitOversizedBody(t *testing.T) {
	f := setup(t)
	body := `{"job_type":"fine_tune","config":` + validConfig + `,"idempotency_key":"` +
		strings.Repeat("k", api.DefaultMaxBodyBytes) + `"}`

	p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", body).problem(413, api.TypeBodyTooLarge)
	if p.Field != "body" {
		t.Errorf("field %q, want body", p.Field)
	}
	if !strings.Contains(p.Detail, "larger than 1048576 bytes") {
		t.Errorf("detail %q, want the size limit", p.Detail)
	}
}

func TestSubmitWrongContentType(t *testing.T) {
	f := setup(t)
	p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", `job_type=fine_tune`,
		"Content-Type", "application/x-www-form-urlencoded").problem(415, api.TypeUnsupportedMediaType)
	if p.Field != "Content-Type" {
		t.Errorf("field %q, want Content-Type", p.Field)
	}
}

// TestSubmitUnknownGPUModel: H100 lost its only node, so its row stays with 0 nodes, and
// B200 never had one.
func TestSubmitUnknownGPUModel(t *testing.T) {
	f := setup(t)
	a10 := store.ModelCapacity{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000, LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 524288}
	h100 := store.ModelCapacity{Model: "H100", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000, LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 524288}
	f.capacity(a10, h100)
	f.capacity(a10)
	submit := func(models ...string) response {
		config := fineTune(1)
		config["resources"].(map[string]any)["gpu_models"] = models
		return f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, config))
	}

	p := submit("A10", "B200").problem(422, api.TypeUnknownGPUModel)
	if p.Field != "config.resources.gpu_models[1]" ||
		!strings.Contains(p.Detail, `no node of the cluster has had GPU model "B200"; models with ready, uncordoned nodes: A10`) {
		t.Errorf("problem %+v, want field config.resources.gpu_models[1] naming B200", p)
	}
	p = submit("H100").problem(422, api.TypeUnknownGPUModel)
	if p.Field != "config.resources.gpu_models" ||
		!strings.Contains(p.Detail, "no ready, uncordoned node has GPU model H100; models with such nodes: A10") {
		t.Errorf("problem %+v, want field config.resources.gpu_models naming H100", p)
	}
	if n := f.count(`SELECT count(*) FROM jobs`); n != 0 {
		t.Errorf("%d jobs stored, want 0", n)
	}

	// A10 has nodes, so a job that may also use H100 runs on A10 meanwhile.
	submit("A10", "H100").want(201)
}

// TestSubmitAnyModelWithoutNodes: A10 and T4 lost every node, so a GPU job that allows any
// model is rejected like one that names a model without nodes. A job without a GPU needs
// no GPU node.
func TestSubmitAnyModelWithoutNodes(t *testing.T) {
	f := setup(t)
	f.capacity()
	want := "the job allows any GPU model, but no GPU model has a ready, uncordoned node; " +
		"submit it again once one has. GPU models the cluster has had: A10, T4"
	for _, models := range [][]string{{}, nil} {
		config := fineTune(1)
		config["resources"].(map[string]any)["gpu_models"] = models
		p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, config)).
			problem(422, api.TypeUnknownGPUModel)
		if p.Field != "config.resources.gpu_models" {
			t.Errorf("gpu_models %#v: field %q, want config.resources.gpu_models", models, p.Field)
		}
		if p.Detail != want {
			t.Errorf("gpu_models %#v: detail %q, want %q", models, p.Detail, want)
		}
	}
	if n := f.count(`SELECT count(*) FROM jobs`); n != 0 {
		t.Errorf("%d jobs stored, want 0", n)
	}

	f.do(f.submitter, "POST", "/v1/projects/vision/jobs",
		map[string]any{"job_type": "eval_only", "config": map[string]any{"image": "eval:1", "max_runtime_seconds": 600}}).
		want(201)
}

func TestSubmitLargerThanAnyNode(t *testing.T) {
	cases := []struct {
		name      string
		resources map[string]any
		want      string // in the detail; "" when the job fits
	}{
		{"fits the largest A10 node", map[string]any{"gpus": 8, "gpu_models": []string{"A10"}}, ""},
		{"more GPUs than an A10 node", map[string]any{"gpus": 9, "gpu_models": []string{"A10"}},
			"no node is large enough: the job asks for 9 GPUs, 4 cores, 16384 MiB per pod; " +
				"A10 nodes offer 8 GPUs, 64 cores, 524288 MiB"},
		{"any model, more GPUs than every node", map[string]any{"gpus": 9},
			"A10 nodes offer 8 GPUs, 64 cores, 524288 MiB; T4 nodes offer 4 GPUs, 64 cores, 524288 MiB"},
		{"any model, fits only A10", map[string]any{"gpus": 6}, ""},
		{"more memory than any node", map[string]any{"gpus": 1, "memory_mib": 524289},
			"asks for 1 GPU, 4 cores, 524289 MiB per pod"},
		{"a share, more CPU than any node", map[string]any{"gpu_share_milli": 500, "cpu_milli": 64500},
			"asks for 0.5 GPU, 64.5 cores"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			config := fineTune(1)
			resources := map[string]any{"cpu_milli": 4000, "memory_mib": 16384}
			maps.Copy(resources, c.resources)
			config["resources"] = resources

			if c.want == "" {
				f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, config)).want(201)
				return
			}
			p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, config)).
				problem(422, api.TypeUnprocessable)
			if p.Field != "config.resources" || !strings.Contains(p.Detail, c.want) {
				t.Errorf("problem %+v, want field config.resources and a detail with %q", p, c.want)
			}
			if n := f.count(`SELECT count(*) FROM jobs`); n != 0 {
				t.Errorf("%d jobs stored, want 0", n)
			}
		})
	}
}

// TestSubmitFitsOneRealNode: A10 has a node with many cores and a node with many GPUs, and
// a job that needs both fits neither, though it fits each resource's maximum.
func TestSubmitFitsOneRealNode(t *testing.T) {
	f := setup(t)
	wide := store.NodeShape{GPUMilli: 8000, CPUMilli: 64000, MemoryMiB: 262144}
	tall := store.NodeShape{GPUMilli: 16000, CPUMilli: 16000, MemoryMiB: 262144}
	f.capacity(store.ModelCapacity{Model: "A10", CapacityMilli: 24000, Nodes: 2, LargestNodeMilli: 16000,
		LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 262144, NodeShapes: []store.NodeShape{tall, wide}})
	submit := func(gpus, cpuMilli int) response {
		config := fineTune(gpus)
		config["resources"] = map[string]any{"gpus": gpus, "cpu_milli": cpuMilli, "gpu_models": []string{"A10"}}
		return f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, config))
	}

	p := submit(16, 64000).problem(422, api.TypeUnprocessable)
	want := "the job asks for 16 GPUs, 64 cores per pod; " +
		"A10 nodes offer 16 GPUs, 16 cores, 262144 MiB or 8 GPUs, 64 cores, 262144 MiB"
	if !strings.Contains(p.Detail, want) {
		t.Errorf("detail %q, want it to contain %q", p.Detail, want)
	}
	var job api.Job
	submit(16, 16000).want(201).decode(&job)
	submit(8, 64000).want(201)

	e := f.explain(f.submitter, job)
	want2 := []api.NodeSize{{GPUMilli: 16000, CPUMilli: 16000, MemoryMiB: 262144}, {GPUMilli: 8000, CPUMilli: 64000, MemoryMiB: 262144}}
	if len(e.GPUModels) != 1 || !slices.Equal(e.GPUModels[0].NodeSizes, want2) {
		t.Errorf("explain's models %+v, want A10 with node sizes %v", e.GPUModels, want2)
	}
}

// TestSubmitReservationAboveWholeBudget: vision's budget is 100 GPU-hours for the period.
func TestSubmitReservationAboveWholeBudget(t *testing.T) {
	f := setup(t)
	config := fineTune(8)
	config["max_runtime_seconds"] = 13 * 3600 // 104 GPU-hours

	p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, config)).problem(422, api.TypeUnprocessable)
	want := `the job reserves 104 GPU-hours (8 GPUs for 46800 s), more than project "vision"'s whole budget ` +
		"of 100 GPU-hours for its period; shorten max_runtime_seconds or raise the budget"
	if p.Field != "config.max_runtime_seconds" || p.Detail != want {
		t.Errorf("problem %+v, want field config.max_runtime_seconds and detail %q", p, want)
	}
	if n := f.count(`SELECT count(*) FROM jobs`); n != 0 {
		t.Errorf("%d jobs stored, want 0", n)
	}

	config["max_runtime_seconds"] = 12*3600 + 1800 // 100 GPU-hours: the whole budget
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, config)).want(201)
}

func TestSubmitUnknownProject(t *testing.T) {
	f := setup(t)
	f.do(f.operator, "POST", "/v1/projects/nope/jobs", submitBody(5, fineTune(1))).problem(404, api.TypeNotFound)
}

func TestSubmitPriorityTier(t *testing.T) {
	f := setup(t)
	p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(51, fineTune(1))).
		problem(422, api.TypeUnprocessable)
	if p.Field != "priority" {
		t.Errorf("field %q, want priority", p.Field)
	}

	var job api.Job
	f.do(f.operator, "POST", "/v1/projects/vision/jobs", submitBody(90, fineTune(1))).want(201).decode(&job)
	if job.Priority != 90 {
		t.Errorf("priority %d, want 90", job.Priority)
	}
}

// A project without a quota holds a submitter to the tier a new quota gets by default, for
// submissions and priority changes alike.
func TestPriorityTierWithoutQuota(t *testing.T) {
	f := setup(t)
	f.do(f.admin, "POST", "/v1/projects", `{"id":"speech","org":"acme"}`).want(201)
	speech := f.token("speech-ci", store.RoleSubmitter, "speech")

	p := f.do(speech, "POST", "/v1/projects/speech/jobs", submitBody(6, fineTune(1))).
		problem(422, api.TypeUnprocessable)
	if p.Field != "priority" {
		t.Errorf("field %q, want priority", p.Field)
	}
	want := `6 is above the default priority tier 5 of project "speech", which has no quota yet`
	if !strings.Contains(p.Detail, want) {
		t.Errorf("detail %q, want it to contain %q", p.Detail, want)
	}

	job := f.submit(speech, "speech", 5)
	path := "/v1/jobs/" + job.ID.String() + "/priority"
	p = f.do(speech, "PATCH", path, `{"priority": 6}`).problem(422, api.TypeUnprocessable)
	if !strings.Contains(p.Detail, "default priority tier 5") {
		t.Errorf("priority change detail %q, want it to name the default priority tier 5", p.Detail)
	}
	if got := f.job(job.ID).Priority; got != 5 {
		t.Errorf("priority %d after the rejected change, want 5", got)
	}

	if got := f.submit(f.operator, "speech", 90).Priority; got != 90 {
		t.Errorf("operator's job priority %d, want 90", got)
	}
}

// DefaultPriorityTier is the default of quotas.priority_tier in the schema.
func TestDefaultPriorityTierMatchesSchema(t *testing.T) {
	f := setup(t)
	var columnDefault string
	err := f.store.Pool().QueryRow(context.Background(), `SELECT column_default FROM information_schema.columns
		WHERE table_name = 'quotas' AND column_name = 'priority_tier'`).Scan(&columnDefault)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(api.DefaultPriorityTier); columnDefault != want {
		t.Errorf("quotas.priority_tier defaults to %s in the schema, want %s", columnDefault, want)
	}
}

func TestSubmitParent(t *testing.T) {
	f := setup(t)
	parent := f.submit(f.submitter, "vision", 5)
	other := f.submit(f.audioSubmitter, "audio", 5)
	withParent := func(id string) map[string]any {
		body := submitBody(5, fineTune(1))
		body["parent_job_id"] = id
		return body
	}

	var child api.Job
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", withParent(parent.ID.String())).want(201).decode(&child)
	if child.ParentJobID == nil || *child.ParentJobID != parent.ID {
		t.Errorf("parent %v, want %s", child.ParentJobID, parent.ID)
	}

	// A parent in another project gets the same field and message as a missing one.
	for name, id := range map[string]string{"parent in another project": other.ID.String(),
		"missing parent": "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d"} {
		p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", withParent(id)).problem(422, api.TypeUnprocessable)
		if p.Field != "parent_job_id" {
			t.Errorf("%s: field %q, want parent_job_id", name, p.Field)
		}
		if want := "no job " + id + " exists in project vision"; p.Detail != want {
			t.Errorf("%s: detail %q, want %q", name, p.Detail, want)
		}
	}
}

func TestGetJobErrors(t *testing.T) {
	f := setup(t)
	p := f.do(f.submitter, "GET", "/v1/jobs/not-a-uuid", nil).problem(400, api.TypeInvalidRequest)
	if p.Field != "id" {
		t.Errorf("field %q, want id", p.Field)
	}
	f.do(f.submitter, "GET", "/v1/jobs/0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d", nil).problem(404, api.TypeNotFound)
}

// A job's own endpoints take no query parameters, so one is a 400 that names it, as on
// the list endpoints, rather than being ignored.
func TestJobEndpointsRejectQuery(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)
	for _, path := range []string{"/v1/jobs/" + job.ID.String(), "/v1/jobs/" + job.ID.String() + "/explain"} {
		p := f.do(f.submitter, "GET", path+"?verbose=1", nil).problem(400, api.TypeInvalidRequest)
		if p.Field != "verbose" {
			t.Errorf("%s: field %q, want verbose", path, p.Field)
		}
		if want := "unknown query parameter; this endpoint takes none"; p.Detail != want {
			t.Errorf("%s: detail %q, want %q", path, p.Detail, want)
		}
		f.do(f.submitter, "GET", path+"?", nil).want(200)
	}
}

// No endpoint ignores a query parameter it does not know: each one is a 400 that names it,
// before the handler reads the path or body, so nothing changes.
func TestEveryRouteRejectsUnknownQuery(t *testing.T) {
	f := setup(t)
	auditBefore := f.auditCount()
	fill := strings.NewReplacer("{project}", "vision", "{model}", "resnet",
		"{id}", "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d", "{run}", "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6e")
	for _, rt := range f.api.Routes() {
		path := fill.Replace(rt.Pattern) + "?bogus=1"
		p := f.do(f.admin, rt.Method, path, "{}").problem(400, api.TypeInvalidRequest)
		if p.Field != "bogus" || !strings.HasPrefix(p.Detail, "unknown query parameter") {
			t.Errorf("%s %s: field %q, detail %q; want the unknown parameter bogus", rt.Method, path, p.Field, p.Detail)
		}
	}
	if n := f.auditCount(); n != auditBefore {
		t.Errorf("%d audit records after the rejected calls, want the %d from before", n, auditBefore)
	}
}

func (f *fixture) auditCount() int {
	f.t.Helper()
	records, err := f.store.ListAudit(context.Background(), store.AuditFilter{Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(records)
}

func TestListJobsPages(t *testing.T) {
	f := setup(t)
	var submitted []string
	for range 7 {
		submitted = append(submitted, f.submit(f.submitter, "vision", 5).ID.String())
	}

	var got []string
	path := "/v1/jobs?project=vision&limit=3"
	var pageSizes []int
	for path != "" {
		var page api.JobList
		f.do(f.submitter, "GET", path, nil).want(200).decode(&page)
		pageSizes = append(pageSizes, len(page.Jobs))
		for _, j := range page.Jobs {
			got = append(got, j.ID.String())
		}
		path = ""
		if page.NextPage != "" {
			path = "/v1/jobs?project=vision&limit=3&page_token=" + page.NextPage
		}
	}

	if fmt.Sprint(pageSizes) != "[3 3 1]" {
		t.Errorf("page sizes %v, want [3 3 1]", pageSizes)
	}
	for i := range submitted {
		if got[i] != submitted[len(submitted)-1-i] {
			t.Fatalf("jobs %v, want newest first: %v", got, submitted)
		}
	}
}

// A page token continues only the listing that issued it: the same filters, in any order or
// spelling of several values, and any limit. With other filters it is a 400, because the
// pages would not add up to either listing.
func TestPageTokenKeepsItsFilters(t *testing.T) {
	f := setup(t)
	for range 3 {
		f.submit(f.submitter, "vision", 5)
		f.submit(f.audioSubmitter, "audio", 5)
	}
	var first api.JobList
	f.do(f.operator, "GET", "/v1/jobs?project=vision,audio&status=queued&limit=2", nil).want(200).decode(&first)
	if first.NextPage == "" {
		t.Fatal("no next page after 2 of 6 jobs")
	}

	same := []struct {
		query string
		jobs  int
	}{{"project=vision,audio&status=queued&limit=2", 2}, {"status=queued&project=audio&project=vision&limit=4", 4}}
	for _, c := range same {
		var next api.JobList
		f.do(f.operator, "GET", "/v1/jobs?"+c.query+"&page_token="+first.NextPage, nil).want(200).decode(&next)
		if len(next.Jobs) != c.jobs || next.Jobs[0].CreatedAt.After(first.Jobs[1].CreatedAt) || next.Jobs[0].ID == first.Jobs[1].ID {
			t.Errorf("%s: next page %v, want the %d jobs after the first page", c.query, next.Jobs, c.jobs)
		}
	}
	for _, other := range []string{"project=vision&limit=2", "project=vision,audio&limit=2", "project=vision,audio&status=queued&job_type=hpo"} {
		p := f.do(f.operator, "GET", "/v1/jobs?"+other+"&page_token="+first.NextPage, nil).problem(400, api.TypeInvalidRequest)
		if p.Field != "page_token" || !strings.Contains(p.Detail, "other filters") {
			t.Errorf("%s: field %q, detail %q; want the token rejected for its filters", other, p.Field, p.Detail)
		}
	}
	p := f.do(f.operator, "GET", "/v1/approvals?page_token="+first.NextPage, nil).problem(400, api.TypeInvalidRequest)
	if p.Field != "page_token" {
		t.Errorf("a job listing's token on approvals: field %q, want page_token", p.Field)
	}
}

func TestListJobsFilters(t *testing.T) {
	f := setup(t)
	jobs := []api.Job{f.submit(f.submitter, "vision", 5), f.submit(f.submitter, "vision", 5),
		f.submit(f.audioSubmitter, "audio", 5)}
	f.do(f.submitter, "POST", "/v1/jobs/"+jobs[0].ID.String()+"/cancel", nil).want(200)
	// Ids carry milliseconds, so two jobs may share a created_at: count from the jobs.
	pivot := jobs[1].CreatedAt
	atOrAfter := 0
	for _, j := range jobs {
		if !j.CreatedAt.Before(pivot) {
			atOrAfter++
		}
	}
	between := pivot.Format(time.RFC3339Nano)

	cases := []struct {
		name, query string
		want        int
	}{
		{"everything", "", 3},
		{"one project", "project=audio", 1},
		{"two projects", "project=audio,vision", 3},
		{"status", "status=cancelled", 1},
		{"two statuses", "status=cancelled&status=queued", 3},
		{"job type", "job_type=eval_only", 0},
		{"created after", "created_after=" + between, atOrAfter},
		{"created before", "created_before=" + between, 3 - atOrAfter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			var page api.JobList
			f.do(f.operator, "GET", "/v1/jobs?"+c.query, nil).want(200).decode(&page)
			if len(page.Jobs) != c.want {
				t.Errorf("%d jobs, want %d", len(page.Jobs), c.want)
			}
		})
	}
}

// An unknown status is rejected with the statuses there are.
func TestListJobsUnknownStatus(t *testing.T) {
	f := setup(t)
	p := f.do(f.operator, "GET", "/v1/jobs?status=done", nil).problem(400, api.TypeInvalidRequest)
	want := `"done" is not a job status; want submitted or queued or running or paused or completed ` +
		`or failed or cancelled or eval_failed`
	if p.Detail != want {
		t.Errorf("detail %q, want %q", p.Detail, want)
	}
}

func TestListJobsRejectsBadQueries(t *testing.T) {
	f := setup(t)
	cases := []struct{ query, field string }{
		{"limit=501", "limit"},
		{"limit=0", "limit"},
		{"limit=ten", "limit"},
		{"status=done", "status"},
		{"job_type=pretrain", "job_type"},
		{"created_after=yesterday", "created_after"},
		{"page_token=xyz", "page_token"},
		{"sort=priority", "sort"},
		{"project=Bad_Name", "project"},
		{"project=%zz", "query"},
		{"status=", "status"},
		{"status=cancelled,,completed", "status"},
		{"project=vision&project=", "project"},
		{"job_type=", "job_type"},
		{"created_after=", "created_after"},
		{"created_before=", "created_before"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			f.t = t
			p := f.do(f.operator, "GET", "/v1/jobs?"+c.query, nil).problem(400, api.TypeInvalidRequest)
			if p.Field != c.field {
				t.Errorf("field %q, want %q", p.Field, c.field)
			}
		})
	}
}

// TestListApprovalsRejectsEmptyFilter: an empty status or project is a 400 naming it, not a
// list of every approval.
func TestListApprovalsRejectsEmptyFilter(t *testing.T) {
	f := setup(t)
	for _, c := range []struct{ query, field string }{{"status=", "status"}, {"project=", "project"}} {
		t.Run(c.query, func(t *testing.T) {
			f.t = t
			p := f.do(f.operator, "GET", "/v1/approvals?"+c.query, nil).problem(400, api.TypeInvalidRequest)
			if p.Field != c.field {
				t.Errorf("field %q, want %q", p.Field, c.field)
			}
		})
	}
}

// TestListAuditRejectsEmptyProject: project= is a 400 naming it, not every project's
// records, as it is on GET /v1/jobs and /v1/approvals.
func TestListAuditRejectsEmptyProject(t *testing.T) {
	f := setup(t)
	p := f.do(f.admin, "GET", "/v1/audit?project=", nil).problem(400, api.TypeInvalidRequest)
	if p.Field != "project" {
		t.Errorf("field %q, want project", p.Field)
	}
	if want := "empty value; leave project out to list every project's records"; p.Detail != want {
		t.Errorf("detail %q, want %q", p.Detail, want)
	}
}

// TestListRejectsRepeatedParameter: a single-valued query parameter given twice is a 400
// naming it, also with equal values, while the list parameters accept repeats.
func TestListRejectsRepeatedParameter(t *testing.T) {
	f := setup(t)
	at := "2026-05-01T00:00:00Z"
	rejected := []struct{ path, field string }{
		{"/v1/jobs?limit=5&limit=500", "limit"},
		{"/v1/jobs?limit=5&project=vision&limit=5", "limit"},
		{"/v1/jobs?page_token=a&page_token=b", "page_token"},
		{"/v1/jobs?created_after=" + at + "&created_after=" + at, "created_after"},
		{"/v1/jobs?created_before=" + at + "&created_before=" + at, "created_before"},
		{"/v1/approvals?status=pending&status=approved", "status"},
		{"/v1/approvals?limit=1&limit=2", "limit"},
		{"/v1/approvals?page_token=a&page_token=b", "page_token"},
		{"/v1/audit?project=vision&project=audio", "project"},
		{"/v1/audit?before_id=1&before_id=2", "before_id"},
		{"/v1/audit?limit=1&limit=2&limit=3", "limit"},
	}
	for _, c := range rejected {
		t.Run(c.path, func(t *testing.T) {
			f.t = t
			p := f.do(f.admin, "GET", c.path, nil).problem(400, api.TypeInvalidRequest)
			if p.Field != c.field {
				t.Errorf("field %q, want %q", p.Field, c.field)
			}
			times := strings.Count(c.path, c.field+"=")
			want := fmt.Sprintf("query parameter given %d times; it takes one value", times)
			if p.Detail != want {
				t.Errorf("detail %q, want %q", p.Detail, want)
			}
		})
	}

	accepted := []string{
		"/v1/jobs?project=vision&project=audio&status=queued&status=running&job_type=fine_tune&job_type=hpo",
		"/v1/approvals?project=vision&project=audio",
	}
	for _, path := range accepted {
		t.Run(path, func(t *testing.T) {
			f.t = t
			f.do(f.admin, "GET", path, nil).want(200)
		})
	}
}

func TestListJobsSubmitterScope(t *testing.T) {
	f := setup(t)
	mine := f.submit(f.submitter, "vision", 5)
	f.submit(f.audioSubmitter, "audio", 5)

	var page api.JobList
	f.do(f.submitter, "GET", "/v1/jobs", nil).want(200).decode(&page)
	if len(page.Jobs) != 1 || page.Jobs[0].ID != mine.ID {
		t.Errorf("a vision submitter listed %d jobs, want only its own", len(page.Jobs))
	}
	f.do(f.submitter, "GET", "/v1/jobs?project=audio", nil).problem(403, api.TypeForbidden)
}

// TestSubmitRefusalListsFourSizes: a model whose nodes come in six sizes, none with more
// than 8 GPUs, refuses a 9-GPU job with the first four sizes and a count of the rest.
func TestSubmitRefusalListsFourSizes(t *testing.T) {
	f := setup(t)
	var shapes []store.NodeShape
	for i := range 6 {
		shapes = append(shapes, store.NodeShape{GPUMilli: 8000, CPUMilli: int64(64000 - 1000*i), MemoryMiB: int64(1024 * (i + 1))})
	}
	f.capacity(store.ModelCapacity{Model: "A10", CapacityMilli: 48000, Nodes: 6, LargestNodeMilli: 8000,
		LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 6144, NodeShapes: shapes})
	config := fineTune(9)
	config["resources"] = map[string]any{"gpus": 9, "gpu_models": []string{"A10"}}

	p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", submitBody(5, config)).problem(422, api.TypeUnprocessable)
	want := "A10 nodes offer 8 GPUs, 64 cores, 1024 MiB or 8 GPUs, 63 cores, 2048 MiB or " +
		"8 GPUs, 62 cores, 3072 MiB or 8 GPUs, 61 cores, 4096 MiB (and 2 more sizes)"
	if !strings.HasSuffix(p.Detail, want) {
		t.Errorf("detail %q, want it to end with %q", p.Detail, want)
	}
}
