package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// ProjectChange holds the fields of one save of a project. A nil field keeps the project's
// value when the save updates it, and takes its default when the save creates it: no
// display name or owner, and the project id as namespace. OrgID is required to create a
// project.
type ProjectChange struct {
	ID                                      string
	OrgID, DisplayName, K8sNamespace, Owner *string
}

// The insert of SaveProject. When another transaction inserts the same project at the same
// time, this one waits for it to commit and then inserts nothing.
const sqlInsertProject = `
INSERT INTO projects (id, org_id, display_name, k8s_namespace, owner)
VALUES ($1::text, $2, COALESCE($3, ''), COALESCE($4, $1::text), COALESCE($5, ''))
ON CONFLICT (id) DO NOTHING
RETURNING id, org_id, display_name, k8s_namespace, owner, created_at`

// The update of SaveProject: the fields the change gives, the others as they are.
const sqlUpdateProject = `
UPDATE projects
SET org_id = COALESCE($2, org_id), display_name = COALESCE($3, display_name),
    k8s_namespace = COALESCE($4, k8s_namespace), owner = COALESCE($5, owner)
WHERE id = $1
RETURNING id, org_id, display_name, k8s_namespace, owner, created_at`

// SaveProject creates a project, or updates the fields the change gives, with an audit
// record in the same transaction. created is true when the project did not exist before.
// A change without an org updates only: ErrNotFound when there is no such project.
//
// It inserts first, so that of two saves of a new project at the same time exactly one
// creates it, and the other updates it with the first one's values as its audit record's
// before image. Jobs and runs keep the org and namespace they were given, so a change
// reaches only jobs submitted and runs admitted after it.
func (s *Store) SaveProject(ctx context.Context, c ProjectChange, audit *Audit) (saved Project, created bool, err error) {
	doing := "save project " + c.ID
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if c.OrgID != nil {
			if saved, created, err = insertProject(ctx, tx, c); err != nil {
				return err
			}
		}

		var beforeImage any
		if !created {
			var before Project
			if before, saved, err = updateProject(ctx, tx, c); err != nil {
				return err
			}
			beforeImage = projectImage(before)
		}
		return writeAudit(ctx, tx, audit, c.ID, nil, beforeImage, projectImage(saved))
	})
	return saved, created, wrap(err, doing)
}

// insertProject creates the project unless it exists. created is false when it exists.
func insertProject(ctx context.Context, tx pgx.Tx, c ProjectChange) (saved Project, created bool, err error) {
	rows, err := tx.Query(ctx, sqlInsertProject, c.ID, c.OrgID, c.DisplayName, c.K8sNamespace, c.Owner)
	if err != nil {
		return saved, false, err
	}
	saved, err = collectOne[Project](rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return saved, false, nil
	}
	return saved, err == nil, err
}

// updateProject locks an existing project and applies the change. It returns the project
// as it was and as it is now.
func updateProject(ctx context.Context, tx pgx.Tx, c ProjectChange) (before, after Project, err error) {
	rows, err := tx.Query(ctx, sqlGetProject+` FOR UPDATE`, c.ID)
	if err != nil {
		return before, after, err
	}
	if before, err = collectOne[Project](rows); err != nil {
		return before, after, err
	}

	rows, err = tx.Query(ctx, sqlUpdateProject, c.ID, c.OrgID, c.DisplayName, c.K8sNamespace, c.Owner)
	if err != nil {
		return before, after, err
	}
	after, err = collectOne[Project](rows)
	return before, after, err
}

func projectImage(p Project) map[string]any {
	return map[string]any{"org": p.OrgID, "display_name": p.DisplayName, "namespace": p.K8sNamespace,
		"owner": p.Owner}
}
