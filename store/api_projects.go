package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// The insert of SaveProject. When another transaction inserts the same project at the same
// time, this one waits for it to commit and then inserts nothing.
const sqlInsertProject = `
INSERT INTO projects (id, org_id, display_name, k8s_namespace, owner)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO NOTHING
RETURNING id, org_id, display_name, k8s_namespace, owner, created_at`

// SaveProject is UpsertProject with an audit record in the same transaction. created is
// true when the project did not exist before. It inserts first, so that of two saves of a
// new project at the same time exactly one creates it, and the other updates it with the
// first one's values as its audit record's before image.
func (s *Store) SaveProject(ctx context.Context, p Project, audit *Audit) (saved Project, created bool, err error) {
	doing := "save project " + p.ID
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlInsertProject, p.ID, p.OrgID, p.DisplayName, p.K8sNamespace, p.Owner)
		if err != nil {
			return err
		}
		saved, err = collectOne[Project](rows)
		created = err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}

		var beforeImage any
		if !created {
			var before Project
			if before, saved, err = updateProject(ctx, tx, p); err != nil {
				return err
			}
			beforeImage = projectImage(before)
		}
		return writeAudit(ctx, tx, audit, p.ID, nil, beforeImage, projectImage(saved))
	})
	return saved, created, wrap(err, doing)
}

// updateProject locks an existing project and writes p over it. It returns the project as
// it was and as it is now.
func updateProject(ctx context.Context, tx pgx.Tx, p Project) (before, after Project, err error) {
	rows, err := tx.Query(ctx, sqlGetProject+` FOR UPDATE`, p.ID)
	if err != nil {
		return before, after, err
	}
	if before, err = collectOne[Project](rows); err != nil {
		return before, after, err
	}

	rows, err = tx.Query(ctx, sqlUpsertProject, p.ID, p.OrgID, p.DisplayName, p.K8sNamespace, p.Owner)
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
