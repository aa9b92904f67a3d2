package api_test

import (
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/api"
)

// TestProjectOrgRejectsControlCharacters checks that an org with a tab, a newline or only
// spaces is rejected, since it would break the columns of project list and report.
func TestProjectOrgRejectsControlCharacters(t *testing.T) {
	f := setup(t)
	for _, org := range []string{"ac\tme", "a\nb", " ", "x\u007f"} {
		p := f.do(f.admin, "POST", "/v1/projects", map[string]any{"id": "ctl", "org": org}).
			problem(400, api.TypeInvalidRequest)
		if p.Field != "org" {
			t.Errorf("org %q: field %q, want org", org, p.Field)
		}
	}
	f.do(f.admin, "GET", "/v1/projects/ctl", nil).want(404)
}

// TestProjectOrgCountsCharacters checks that the 63-character limit of an org counts
// characters, as the varchar(63) column does, not UTF-8 bytes.
func TestProjectOrgCountsCharacters(t *testing.T) {
	f := setup(t)
	org := strings.Repeat("α", 63)
	f.do(f.admin, "POST", "/v1/projects", map[string]any{"id": "greek", "org": org}).want(201)
	var got api.Project
	f.do(f.admin, "GET", "/v1/projects/greek", nil).want(200).decode(&got)
	if got.Org != org {
		t.Errorf("org %q, want %q", got.Org, org)
	}
	p := f.do(f.admin, "POST", "/v1/projects", map[string]any{"id": "greek2", "org": org + "α"}).
		problem(400, api.TypeInvalidRequest)
	if p.Field != "org" {
		t.Errorf("field %q, want org", p.Field)
	}
}
