package api_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/jobspec"
)

// openAPIDoc is the part of the document the tests read.
type openAPIDoc struct {
	OpenAPI    string                                     `json:"openapi"`
	Paths      map[string]map[string]openAPIOp            `json:"paths"`
	Components struct{ Schemas map[string]openAPISchema } `json:"components"`
}

type openAPIOp struct {
	OperationID string `json:"operationId"`
	Role        string `json:"x-schedulerd-role"`
}

type openAPISchema struct {
	Properties map[string]json.RawMessage `json:"properties"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q, want 3.x", doc.OpenAPI)
	}
	return doc
}

// Every route on the mux is in the document with its role, every operation of the
// document is a route, and the server serves each of them.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := setup(t)
	doc := loadOpenAPI(t)

	registered := map[string]bool{}
	for _, r := range f.api.Routes() {
		key := r.Method + " " + r.Pattern
		registered[key] = true
		op, ok := doc.Paths[r.Pattern][strings.ToLower(r.Method)]
		if !ok {
			t.Errorf("route %s is not in openapi.json", key)
			continue
		}
		if op.Role != string(r.Role) {
			t.Errorf("%s: x-schedulerd-role %q, want %q", key, op.Role, r.Role)
		}
	}

	for path, ops := range doc.Paths {
		for method, op := range ops {
			key := strings.ToUpper(method) + " " + path
			if !registered[key] {
				t.Errorf("openapi.json has %s (%s), which no route serves", key, op.OperationID)
				continue
			}
			concrete := strings.NewReplacer("{id}", "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d",
				"{run}", "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d", "{project}", "vision", "{model}", "llama").Replace(path)
			resp := f.do("", strings.ToUpper(method), concrete, nil)
			want := http.StatusUnauthorized
			if op.Role == "" {
				want = http.StatusOK
			}
			if resp.status != want {
				t.Errorf("%s %s without a token: status %d, want %d", strings.ToUpper(method), concrete, resp.status, want)
			}
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	f := setup(t)
	resp := f.do("", "GET", "/openapi.json", nil).want(200)
	if resp.header.Get("Content-Type") != "application/json" || string(resp.body) != string(api.OpenAPI()) {
		t.Errorf("GET /openapi.json served %q with %d bytes, want the embedded document", resp.header.Get("Content-Type"), len(resp.body))
	}
}

// The schemas list exactly the JSON fields of the Go types the API sends and reads.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	types := map[string]any{
		"Problem": api.Problem{}, "SubmitRequest": api.SubmitRequest{}, "Job": api.Job{}, "JobList": api.JobList{},
		"PriorityRequest": api.PriorityRequest{}, "Quota": api.Quota{}, "QuotaRequest": api.QuotaRequest{},
		"QuotaChange": api.QuotaRequest{}, "Queue": api.Queue{}, "QueueList": api.QueueList{},
		"DrainRequest": api.DrainRequest{}, "DrainResult": api.DrainResult{}, "PriorityChange": api.PriorityChange{},
		"ReprioritizeRequest": api.ReprioritizeRequest{}, "ReprioritizeResult": api.ReprioritizeResult{},
		"ProjectRequest": api.ProjectRequest{}, "Project": api.Project{}, "ProjectList": api.ProjectList{},
		"Position":    api.Position{},
		"BudgetState": api.BudgetState{}, "ConcurrencyState": api.ConcurrencyState{}, "ModelState": api.ModelState{},
		"Explanation": api.Explanation{}, "AuditRecord": api.AuditRecord{}, "AuditList": api.AuditList{},
		"ArtifactRequest": api.ArtifactRequest{}, "Artifact": api.Artifact{}, "ModelVersion": api.ModelVersion{},
		"ModelVersionList": api.ModelVersionList{}, "LineageRun": api.LineageRun{}, "Lineage": api.Lineage{},
		"Approval": api.Approval{}, "ApprovalList": api.ApprovalList{}, "DecisionRequest": api.DecisionRequest{},
		"PromotionRequest": api.PromotionRequest{}, "JobConfig": jobspec.Spec{},
	}
	for name, value := range types {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		var documented []string
		for field := range schema.Properties {
			documented = append(documented, field)
		}
		slices.Sort(documented)
		if got, want := documented, jsonFields(reflect.TypeOf(value)); !slices.Equal(got, want) {
			t.Errorf("schema %s has %v, the Go type %v", name, got, want)
		}
	}
}

// jsonFields returns the sorted JSON names of a struct's exported fields.
func jsonFields(t reflect.Type) []string {
	var names []string
	for field := range t.Fields() {
		if !field.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(field.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = field.Name
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
