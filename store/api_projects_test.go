package store_test

import (
	"context"
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
				store.Project{ID: "speech", OrgID: "acme", K8sNamespace: "second"}, nil)
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
