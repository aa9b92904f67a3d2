package api_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/api"
)

const newQuota = `{"gpu_hours_budget":250.5,"max_concurrent_jobs":8,"priority_tier":30,` +
	`"period_start":"2026-06-01","period_end":"2026-07-01"}`

func TestPutAndGetQuota(t *testing.T) {
	f := setup(t)
	var put, got api.Quota
	f.do(f.admin, "PUT", "/v1/projects/vision/quota", newQuota).want(200).decode(&put)
	f.do(f.submitter, "GET", "/v1/projects/vision/quota", nil).want(200).decode(&got)

	want := api.Quota{Project: "vision", GPUHoursBudget: 250.5, GPUHoursLeft: 250.5, MaxConcurrentJobs: 8,
		PriorityTier: 30, PeriodStart: "2026-06-01", PeriodEnd: "2026-07-01"}
	if put != want || got != want {
		t.Errorf("PUT returned %+v and GET %+v, want %+v", put, got, want)
	}

	audit := f.projectAudit("vision")
	if len(audit.Records) != 1 || audit.Records[0].Action != "quota.set" || audit.Records[0].Actor != "root" {
		t.Fatalf("audit %+v, want one quota.set by root", audit.Records)
	}
	wantJSON(t, "before", audit.Records[0].Before, `{"gpu_hours_budget":100,"max_concurrent_jobs":4,"priority_tier":50,`+
		`"period_start":"2026-01-01","period_end":"2100-01-01","drained_at":null,"drain_deadline":null}`)
	wantJSON(t, "after", audit.Records[0].After, `{"gpu_hours_budget":250.5,"max_concurrent_jobs":8,"priority_tier":30,`+
		`"period_start":"2026-06-01","period_end":"2026-07-01","drained_at":null,"drain_deadline":null}`)
}

func TestPutQuotaCreatesIt(t *testing.T) {
	f := setup(t)
	f.do(f.admin, "POST", "/v1/projects", `{"id":"speech","org":"acme"}`).want(201)
	p := f.do(f.admin, "GET", "/v1/projects/speech/quota", nil).problem(404, api.TypeNoQuota)
	if p.Detail != `project "speech" has no quota; an admin sets one with PUT /v1/projects/speech/quota` {
		t.Errorf("detail %q", p.Detail)
	}

	f.do(f.admin, "PUT", "/v1/projects/speech/quota", newQuota).want(200)
	audit := f.projectAudit("speech")
	if len(audit.Records) != 2 || string(audit.Records[0].Before) != "null" {
		t.Errorf("audit %+v, want project.save then quota.set with no before image", audit.Records)
	}
}

func TestPutQuotaRejects(t *testing.T) {
	f := setup(t)
	f.submit(f.submitter, "vision", 5)
	f.submit(f.submitter, "vision", 5)
	f.admit() // two jobs of 1 GPU for 1 hour: 2 admitted, 2 GPU-hours reserved

	cases := []struct {
		name, project, body string
		status              int
		field               string
	}{
		{"missing field", "vision", `{"gpu_hours_budget":1}`, 400, "max_concurrent_jobs"},
		{"negative budget", "vision", `{"gpu_hours_budget":-1,"max_concurrent_jobs":1,"priority_tier":5,"period_start":"2026-01-01","period_end":"2027-01-01"}`, 400, "gpu_hours_budget"},
		{"tier out of range", "vision", `{"gpu_hours_budget":1,"max_concurrent_jobs":1,"priority_tier":101,"period_start":"2026-01-01","period_end":"2027-01-01"}`, 400, "priority_tier"},
		{"bad date", "vision", `{"gpu_hours_budget":1,"max_concurrent_jobs":1,"priority_tier":5,"period_start":"01/01/2026","period_end":"2027-01-01"}`, 400, "period_start"},
		{"period backwards", "vision", `{"gpu_hours_budget":1,"max_concurrent_jobs":1,"priority_tier":5,"period_start":"2027-01-01","period_end":"2026-01-01"}`, 400, "period_end"},
		{"budget below reserved", "vision", `{"gpu_hours_budget":1.5,"max_concurrent_jobs":4,"priority_tier":5,"period_start":"2026-01-01","period_end":"2027-01-01"}`, 422, "gpu_hours_budget"},
		{"limit below admitted", "vision", `{"gpu_hours_budget":100,"max_concurrent_jobs":1,"priority_tier":5,"period_start":"2026-01-01","period_end":"2027-01-01"}`, 422, "max_concurrent_jobs"},
		{"missing project", "nope", newQuota, 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			var p api.Problem
			f.do(f.admin, "PUT", "/v1/projects/"+c.project+"/quota", c.body).want(c.status).decode(&p)
			if p.Field != c.field {
				t.Errorf("field %q, want %q (%s)", p.Field, c.field, p.Detail)
			}
		})
	}
	f.t = t

	var got api.Quota
	f.do(f.admin, "GET", "/v1/projects/vision/quota", nil).want(200).decode(&got)
	if got.GPUHoursBudget != 100 || got.GPUHoursReserved != 2 || got.CurrentConcurrent != 2 {
		t.Errorf("quota %+v, want the old budget 100 with 2 GPU-hours reserved by 2 jobs", got)
	}
}

// PATCH changes only the fields it gives and records the change in the audit log.
func TestPatchQuota(t *testing.T) {
	f := setup(t)
	var patched api.Quota
	f.do(f.admin, "PATCH", "/v1/projects/vision/quota", `{"priority_tier":20}`).want(200).decode(&patched)
	f.do(f.admin, "PATCH", "/v1/projects/vision/quota", `{"gpu_hours_budget":80}`).want(200).decode(&patched)

	want := api.Quota{Project: "vision", GPUHoursBudget: 80, GPUHoursLeft: 80, MaxConcurrentJobs: 4,
		PriorityTier: 20, PeriodStart: "2026-01-01", PeriodEnd: "2100-01-01"}
	if patched != want {
		t.Errorf("after two changes %+v, want %+v", patched, want)
	}
	audit := f.projectAudit("vision")
	if len(audit.Records) != 2 || audit.Records[0].Action != "quota.change" {
		t.Fatalf("audit %+v, want two quota.change records", audit.Records)
	}
	wantJSON(t, "after", audit.Records[0].After, `{"gpu_hours_budget":80,"max_concurrent_jobs":4,"priority_tier":20,`+
		`"period_start":"2026-01-01","period_end":"2100-01-01","drained_at":null,"drain_deadline":null}`)
}

func TestPatchQuotaRejects(t *testing.T) {
	f := setup(t)
	f.do(f.admin, "POST", "/v1/projects", `{"id":"speech","org":"acme"}`).want(201)
	f.submit(f.submitter, "vision", 5)
	f.admit() // one job of 1 GPU for 1 hour: 1 GPU-hour reserved

	cases := []struct {
		name, project, body string
		status              int
		typ, field          string
	}{
		{"no field", "vision", `{}`, 400, api.TypeInvalidRequest, ""},
		{"tier out of range", "vision", `{"priority_tier":101}`, 400, api.TypeInvalidRequest, "priority_tier"},
		{"end before the kept start", "vision", `{"period_end":"2025-12-01"}`, 400, api.TypeInvalidRequest, "period_end"},
		{"start after the kept end", "vision", `{"period_start":"2100-01-01"}`, 400, api.TypeInvalidRequest, "period_start"},
		{"budget below reserved", "vision", `{"gpu_hours_budget":0.5}`, 422, api.TypeUnprocessable, "gpu_hours_budget"},
		{"no quota yet", "speech", `{"gpu_hours_budget":5}`, 404, api.TypeNoQuota, ""},
		{"missing project", "nope", `{"gpu_hours_budget":5}`, 404, api.TypeNotFound, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			p := f.do(f.admin, "PATCH", "/v1/projects/"+c.project+"/quota", c.body).problem(c.status, c.typ)
			if p.Field != c.field {
				t.Errorf("field %q, want %q (%s)", p.Field, c.field, p.Detail)
			}
		})
	}

	var got api.Quota
	f.do(f.admin, "GET", "/v1/projects/vision/quota", nil).want(200).decode(&got)
	if got.GPUHoursBudget != 100 || got.PriorityTier != 50 || got.PeriodEnd != "2100-01-01" {
		t.Errorf("quota %+v after rejected changes, want it as set up", got)
	}
}

// A rejected change of the period names the dates that conflict and the dates that would
// be accepted.
func TestPatchQuotaPeriodDetail(t *testing.T) {
	f := setup(t)
	cases := []struct{ body, field, detail string }{
		{`{"period_start":"2100-01-01"}`, "period_start", "the new period_start 2100-01-01 is not before " +
			"the quota's period_end 2100-01-01; give a period_start before 2100-01-01, or also a period_end after 2100-01-01"},
		{`{"period_end":"2025-12-01"}`, "period_end", "the new period_end 2025-12-01 is not after " +
			"the quota's period_start 2026-01-01; give a period_end after 2026-01-01, or also a period_start before 2025-12-01"},
		{`{"period_start":"2027-01-01","period_end":"2026-06-01"}`, "period_end",
			"2026-06-01 is not after period_start 2027-01-01; give a period_end after 2027-01-01"},
	}
	for _, c := range cases {
		p := f.do(f.admin, "PATCH", "/v1/projects/vision/quota", c.body).problem(400, api.TypeInvalidRequest)
		if p.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.body, p.Field, c.field)
		}
		if p.Detail != c.detail {
			t.Errorf("%s: detail\n%q, want\n%q", c.body, p.Detail, c.detail)
		}
	}
}

// A budget below the hours used and reserved gets advice that can work: waiting for jobs
// helps only when the budget covers the used hours, which only the period's renewal resets.
func TestPatchQuotaBudgetDetail(t *testing.T) {
	f := setup(t)
	f.submit(f.submitter, "vision", 5)
	f.admit() // one job of 1 GPU for 1 hour: 1 GPU-hour reserved
	if _, err := f.store.Pool().Exec(context.Background(),
		`UPDATE quotas SET gpu_hours_used = 2 WHERE project_id = 'vision'`); err != nil {
		t.Fatal(err)
	}

	cases := []struct{ body, detail string }{
		{`{"gpu_hours_budget":2.5}`, "the budget 2.5000 is below the 3.0000 GPU-hours the project has " +
			"used (2.0000) and reserved (1.0000); reservations return as admitted jobs end, so wait for " +
			"jobs to end or drain the queue first, or give a budget of at least 3.0000"},
		{`{"gpu_hours_budget":1.5}`, "the budget 1.5000 is below the 2.0000 GPU-hours the project has " +
			"already used this period, which return only when the period renews on 2100-01-01; wait for " +
			"the renewal or give a budget of at least 3.0000 (used plus the 1.0000 reserved)"},
	}
	for _, c := range cases {
		p := f.do(f.admin, "PATCH", "/v1/projects/vision/quota", c.body).problem(422, api.TypeUnprocessable)
		if p.Field != "gpu_hours_budget" {
			t.Errorf("%s: field %q, want gpu_hours_budget", c.body, p.Field)
		}
		if p.Detail != c.detail {
			t.Errorf("%s: detail\n%q, want\n%q", c.body, p.Detail, c.detail)
		}
	}
}

func TestUpsertProject(t *testing.T) {
	f := setup(t)
	var created, updated api.Project
	resp := f.do(f.admin, "POST", "/v1/projects", `{"id":"speech","org":"acme","owner":"ana"}`).want(201)
	resp.decode(&created)
	if created.Namespace != "speech" || created.Owner != "ana" {
		t.Errorf("project %+v, want namespace speech, owner ana", created)
	}
	if got := resp.header.Get("Location"); got != "/v1/projects/speech" {
		t.Errorf("Location %q, want /v1/projects/speech", got)
	}

	f.do(f.admin, "POST", "/v1/projects", `{"id":"speech","namespace":"team-speech"}`).want(200).decode(&updated)
	want := api.Project{ID: "speech", Org: "acme", Namespace: "team-speech", Owner: "ana", CreatedAt: created.CreatedAt}
	if !updated.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("created_at %v after the update, want %v", updated.CreatedAt, created.CreatedAt)
	}
	updated.CreatedAt = created.CreatedAt
	if updated != want {
		t.Errorf("project %+v after the update, want %+v", updated, want)
	}

	var read api.Project
	f.do(f.admin, "GET", "/v1/projects/speech", nil).want(200).decode(&read)
	if read.Namespace != "team-speech" || read.Owner != "ana" {
		t.Errorf("GET gives %+v, want the updated project", read)
	}
}

func TestUpsertProjectRejects(t *testing.T) {
	f := setup(t)
	cases := []struct{ body, field string }{
		{`{"id":"Speech","org":"acme"}`, "id"},
		{`{"id":"speech"}`, "org"},
		{`{"id":"speech","org":""}`, "org"},
		{`{"id":"speech","org":"acme","namespace":"a_b"}`, "namespace"},
		{`{"id":"speech","org":"acme","namespace":"kube-system"}`, "namespace"},
		{`{"id":"speech","org":"acme","namespace":""}`, "namespace"},
	}
	for _, c := range cases {
		p := f.do(f.admin, "POST", "/v1/projects", c.body).problem(400, api.TypeInvalidRequest)
		if p.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.body, p.Field, c.field)
		}
	}
	f.do(f.admin, "GET", "/v1/projects/speech", nil).problem(404, api.TypeNotFound)
}

// A rejected namespace's message states what a valid namespace is, not only that it is not one.
func TestUpsertProjectNamespaceRule(t *testing.T) {
	f := setup(t)
	for _, namespace := range []string{"a_b", "", "Team", "-team", strings.Repeat("a", 64)} {
		body := fmt.Sprintf(`{"id":"speech","org":"acme","namespace":%q}`, namespace)
		p := f.do(f.admin, "POST", "/v1/projects", body).problem(400, api.TypeInvalidRequest)
		want := fmt.Sprintf("%q is not a Kubernetes namespace name (a DNS label): 1 to 63 lowercase letters, "+
			"digits and '-', starting and ending with a letter or digit", namespace)
		if p.Detail != want {
			t.Errorf("namespace %q: detail %q, want %q", namespace, p.Detail, want)
		}
	}
}

// A submitter lists and reads only its own projects.
func TestListProjects(t *testing.T) {
	f := setup(t)
	f.do(f.admin, "POST", "/v1/projects", `{"id":"speech","org":"acme"}`).want(201)

	var all, own api.ProjectList
	f.do(f.admin, "GET", "/v1/projects", nil).want(200).decode(&all)
	if got := projectIDs(all); !slices.Equal(got, []string{"audio", "speech", "vision"}) {
		t.Errorf("admin lists %v, want audio, speech and vision", got)
	}
	f.do(f.submitter, "GET", "/v1/projects", nil).want(200).decode(&own)
	if got := projectIDs(own); !slices.Equal(got, []string{"vision"}) {
		t.Errorf("submitter lists %v, want vision", got)
	}
	f.do(f.submitter, "GET", "/v1/projects/speech", nil).problem(403, api.TypeForbidden)
}

func projectIDs(list api.ProjectList) []string {
	var ids []string
	for _, p := range list.Projects {
		ids = append(ids, p.ID)
	}
	return ids
}
