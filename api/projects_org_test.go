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

// TestProjectLabelsRejectControlCharacters checks display_name and owner as the org is
// checked: a newline or tab would break the columns of project list.
func TestProjectLabelsRejectControlCharacters(t *testing.T) {
	f := setup(t)
	for _, field := range []string{"display_name", "owner"} {
		for _, value := range []string{"x\ny", "o\tz", "x\u007f"} {
			body := map[string]any{"id": "ctl", "org": "acme", field: value}
			p := f.do(f.admin, "POST", "/v1/projects", body).problem(400, api.TypeInvalidRequest)
			if p.Field != field {
				t.Errorf("%s %q: field %q, want %s", field, value, p.Field, field)
			}
		}
	}
	f.do(f.admin, "GET", "/v1/projects/ctl", nil).want(404)
}

// TestProjectLabelsCountCharacters checks that the 200-character limit of display_name and
// owner counts characters, as their varchar(200) columns do, not UTF-8 bytes.
func TestProjectLabelsCountCharacters(t *testing.T) {
	f := setup(t)
	name := strings.Repeat("α", 200)
	f.do(f.admin, "POST", "/v1/projects",
		map[string]any{"id": "greek", "org": "acme", "display_name": name, "owner": name}).want(201)
	var got api.Project
	f.do(f.admin, "GET", "/v1/projects/greek", nil).want(200).decode(&got)
	if got.DisplayName != name {
		t.Errorf("display name %q, want %q", got.DisplayName, name)
	}
	if got.Owner != name {
		t.Errorf("owner %q, want %q", got.Owner, name)
	}
	p := f.do(f.admin, "POST", "/v1/projects", map[string]any{"id": "greek", "owner": name + "α"}).
		problem(400, api.TypeInvalidRequest)
	if p.Field != "owner" {
		t.Errorf("field %q, want owner", p.Field)
	}
}
