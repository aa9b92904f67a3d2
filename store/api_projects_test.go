package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/schedulerd/schedulerd/store"
)

// Of two saves of a new project at the same time, the second waits for the first and
// reports an update of what the first created.
func TestSaveProjectCreatesOnce(t *testing.T) {
	s := setup(t)
	var saved store.Project
	var created bool
	err := waitsForCommit(t, s, `INSERT INTO projects (id, org_id, k8s_namespace) VALUES ('speech', 'acme', 'first')`,
		func() (err error) {
			saved, created, err = s.SaveProject(context.Background(),
				store.ProjectChange{ID: "speech", OrgID: ptr("acme"), K8sNamespace: ptr("second")}, nil)
			return err
		})

	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("the second save reports a creation, want an update")
	}
	if saved.K8sNamespace != "second" {
		t.Errorf("namespace %q, want the second save's", saved.K8sNamespace)
	}
}

// An update sets the fields it gives and keeps the others.
func TestSaveProjectKeepsFieldsNotGiven(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	first := store.ProjectChange{ID: "speech", OrgID: ptr("acme"), DisplayName: ptr("Speech"),
		K8sNamespace: ptr("team-speech"), Owner: ptr("ana")}
	if _, _, err := s.SaveProject(ctx, first, nil); err != nil {
		t.Fatal(err)
	}

	saved, created, err := s.SaveProject(ctx, store.ProjectChange{ID: "speech", Owner: ptr("")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("the update reports a creation")
	}
	want := store.Project{ID: "speech", OrgID: "acme", DisplayName: "Speech", K8sNamespace: "team-speech",
		CreatedAt: saved.CreatedAt}
	if saved != want {
		t.Errorf("project %+v, want %+v", saved, want)
	}
}

// A change without an org creates nothing.
func TestSaveProjectWithoutOrgUpdatesOnly(t *testing.T) {
	s := setup(t)
	_, _, err := s.SaveProject(context.Background(), store.ProjectChange{ID: "speech", Owner: ptr("ana")}, nil)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("error %v, want store.ErrNotFound", err)
	}
	if _, err := s.GetProject(context.Background(), "speech"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("reading the project: %v, want store.ErrNotFound", err)
	}
}

func ptr[T any](v T) *T { return &v }
