package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// SaveProject is UpsertProject with an audit record in the same transaction. created is
// true when the project did not exist before.
func (s *Store) SaveProject(ctx context.Context, p Project, audit *Audit) (saved Project, created bool, err error) {
	doing := "save project " + p.ID
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlGetProject+` FOR UPDATE`, p.ID)
		if err != nil {
			return err
		}
		before, err := collectOne[Project](rows)
		created = errors.Is(err, pgx.ErrNoRows)
		if err != nil && !created {
			return err
		}

		rows, err = tx.Query(ctx, sqlUpsertProject, p.ID, p.OrgID, p.DisplayName, p.K8sNamespace, p.Owner)
		if err != nil {
			return err
		}
		if saved, err = collectOne[Project](rows); err != nil {
			return err
		}

		var beforeImage any
		if !created {
			beforeImage = projectImage(before)
		}
		return writeAudit(ctx, tx, audit, p.ID, nil, beforeImage, projectImage(saved))
	})
	return saved, created, wrap(err, doing)
}

func projectImage(p Project) map[string]any {
	return map[string]any{"org": p.OrgID, "display_name": p.DisplayName, "namespace": p.K8sNamespace,
		"owner": p.Owner}
}
