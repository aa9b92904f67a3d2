package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/store"
)

// Of two saves of a new project at the same time, the second waits for the first and
// reports an update of what the first created.
func TestSaveProjectCreatesOnce(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `INSERT INTO projects (id, org_id, k8s_namespace) VALUES ('speech', 'acme', 'first')`); err != nil {
		t.Fatal(err)
	}

	type result struct {
		saved   store.Project
		created bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.saved, r.created, r.err = s.SaveProject(ctx, store.Project{ID: "speech", OrgID: "acme", K8sNamespace: "second"}, nil)
		done <- r
	}()
	select {
	case r := <-done:
		t.Fatalf("SaveProject returned (created %v, %v) while the other insert was open, want it to wait", r.created, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done

	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.created {
		t.Error("the second save reports a creation, want an update")
	}
	if r.saved.K8sNamespace != "second" {
		t.Errorf("namespace %q, want the second save's", r.saved.K8sNamespace)
	}
}
