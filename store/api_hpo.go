package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrTrialsEnded: an hpo parent whose trials have all ended has nothing left to pause. Its
// workflow scores the trials and ends it.
var ErrTrialsEnded = errors.New("every trial of the hpo job has ended")

// TrialRunLiveError is returned by the resume of an hpo parent when a trial that the
// parent's pause paused still has a live run, whose pod the dispatcher is stopping. The
// trial cannot be queued again before that run ends, so the parent stays paused.
type TrialRunLiveError struct {
	Trial uuid.UUID
}

func (e *TrialRunLiveError) Error() string {
	return fmt.Sprintf("trial %s: %v", e.Trial, ErrRunLive)
}

func (e *TrialRunLiveError) Unwrap() error { return ErrRunLive }

// ParentMove is an hpo parent after MoveHPOParent, with the trials that the move changed,
// oldest first.
type ParentMove struct {
	Parent Job
	Trials []Job
}

// trialMove is the change that a move of an hpo parent makes to its trials: the trials in
// one of the statuses from, and with paused_by_parent set when byParent is true, move to
// status to.
type trialMove struct {
	from     []JobStatus
	to       JobStatus
	byParent bool
}

// trialMoves lists the moves of an hpo parent that move its trials, by the parent's target
// status. A paused parent goes back to running, never to the queue.
var trialMoves = map[JobStatus]trialMove{
	JobPaused:    {from: []JobStatus{JobQueued, JobRunning}, to: JobPaused},
	JobRunning:   {from: []JobStatus{JobPaused}, to: JobQueued, byParent: true},
	JobCancelled: {from: []JobStatus{JobSubmitted, JobQueued, JobRunning, JobPaused}, to: JobCancelled},
}

// MoveHPOParent moves the hpo parent ref from the status the caller saw to another, with
// its trials, in one transaction, and records each change when audit is not nil:
//
//   - to paused, from running: the queued and running trials are paused and marked
//     paused_by_parent. The dispatcher stops the pods of the running ones, as for any
//     paused job, and each keeps its checkpoints to resume from.
//   - to running, from paused (a resume): the trials marked paused_by_parent are queued
//     again. A trial paused on its own stays paused.
//   - to cancelled: every trial that has not ended is cancelled.
//
// The parent's own move is that of SetJobStatus: its pause records the actor of audit, and
// an operator's or admin's pause holds the parent, so that a submitter's resume returns a
// *PauseHeldError. It returns ErrStaleStatus when the parent is no longer in status from,
// ErrTrialsEnded when a pause finds no trial that has not ended, and a *TrialRunLiveError
// when a resume finds a trial still stopping its last run. ErrIllegalTransition means a
// move that no parent makes, or a job that is no hpo parent. Nothing is written in any of
// these cases.
func (s *Store) MoveHPOParent(ctx context.Context, ref JobRef, from, to JobStatus, at time.Time, audit *Audit) (ParentMove, error) {
	doing := fmt.Sprintf("move hpo job %s from %s to %s", ref.ID, from, to)
	trials, ok := trialMoves[to]
	if !ok || (to == JobRunning && from != JobPaused) {
		return ParentMove{}, fmt.Errorf("%s: %w", doing, ErrIllegalTransition)
	}
	var move ParentMove
	err := s.inTxRetry(ctx, func(tx pgx.Tx) error {
		var err error
		move, err = moveParentInTx(ctx, tx, ref, from, to, trials, at, audit)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		if err := s.heldPauseError(ctx, ref, from, to, audit); err != nil {
			return ParentMove{}, wrap(err, doing)
		}
		return ParentMove{}, s.staleOrMissing(ctx, ref, doing)
	}
	return move, wrap(err, doing)
}

// moveParentInTx is MoveHPOParent inside its transaction. The parent's row is changed and
// so locked first. A trial's own resume locks it too (migration 24), so that resume waits
// for the move and then reads the parent's new status.
func moveParentInTx(ctx context.Context, tx pgx.Tx, ref JobRef, from, to JobStatus, trials trialMove,
	at time.Time, audit *Audit) (ParentMove, error) {
	parentBefore, err := lockPausedJob(ctx, tx, ref)
	if err != nil {
		return ParentMove{}, err
	}
	rows, err := tx.Query(ctx, sqlSetJobStatus, setJobStatusArgs(ref, from, to, at, audit)...)
	if err != nil {
		return ParentMove{}, err
	}
	parent, err := collectOne[Job](rows)
	if err != nil {
		return ParentMove{}, err
	}
	if parent.JobType != "hpo" {
		return ParentMove{}, fmt.Errorf("job %s is %s, not an hpo parent: %w", parent.ID, parent.JobType,
			ErrIllegalTransition)
	}

	if err := checkTrialsMovable(ctx, tx, parent, to); err != nil {
		return ParentMove{}, err
	}
	before, err := lockTrials(ctx, tx, ref, trials)
	if err != nil {
		return ParentMove{}, err
	}
	moved, err := moveTrials(ctx, tx, ref, trials, before, at)
	if err != nil {
		return ParentMove{}, err
	}

	if err := auditTrials(ctx, tx, audit, parent.ProjectID, before, moved); err != nil {
		return ParentMove{}, err
	}
	parentAfter := jobImage(parent)
	parentAfter["trials_moved"] = len(moved)
	return ParentMove{Parent: parent, Trials: moved},
		writeAudit(ctx, tx, audit, parent.ProjectID, &parent.ID, parentBefore.image(), parentAfter)
}

// checkTrialsMovable rejects a pause of a parent whose trials have all ended, and a resume
// while a trial that the pause paused still has a live run.
func checkTrialsMovable(ctx context.Context, tx pgx.Tx, parent Job, to JobStatus) error {
	switch to {
	case JobPaused:
		var open bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM jobs WHERE parent_job_id = $1
			AND parent_created_at = $2 AND status NOT IN ('completed', 'failed', 'cancelled', 'eval_failed'))`,
			parent.ID, parent.CreatedAt).Scan(&open)
		if err == nil && !open {
			err = ErrTrialsEnded
		}
		return err
	case JobRunning:
		// A paused trial gets no new run, so the set of trials with a live run can only
		// shrink after this read.
		var trial uuid.UUID
		err := tx.QueryRow(ctx, `SELECT j.id FROM jobs j WHERE j.parent_job_id = $1
			AND j.parent_created_at = $2 AND j.status = 'paused' AND j.paused_by_parent
			AND EXISTS (SELECT 1 FROM runs r WHERE r.job_id = j.id AND r.job_created_at = j.created_at
			    AND r.status IN ('pending', 'running'))
			ORDER BY j.id LIMIT 1`, parent.ID, parent.CreatedAt).Scan(&trial)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err == nil {
			err = &TrialRunLiveError{Trial: trial}
		}
		return err
	}
	return nil
}

// lockedTrial is a trial as lockTrials read it, before the move.
type lockedTrial struct {
	ID uuid.UUID `db:"id"`
	pausedJob
}

// lockTrials locks the parent's trials that the move changes and returns them as they are
// then. The job_queue rows of queued trials are locked first, in the order a dequeue takes
// them (see lockQueueRow): a dequeue that holds such a row commits first, and the trial is
// then read as running. A deadlock that remains possible, with a trial requeued between
// the two locks, say, ends in a retry of the whole transaction (inTxRetry).
func lockTrials(ctx context.Context, tx pgx.Tx, parent JobRef, move trialMove) ([]lockedTrial, error) {
	_, err := tx.Exec(ctx, `SELECT 1 FROM job_queue WHERE job_id IN (SELECT id FROM jobs
		    WHERE parent_job_id = $1 AND parent_created_at = $2 AND status = 'queued')
		ORDER BY job_id FOR UPDATE`, parent.ID, parent.CreatedAt)
	if err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT id, status::text AS status, priority, paused_by_parent,
		    paused_by_role::text AS paused_by_role FROM jobs
		WHERE parent_job_id = $1 AND parent_created_at = $2 AND status = ANY($3::job_status[])
		  AND (paused_by_parent OR NOT $4)
		ORDER BY id FOR UPDATE`, parent.ID, parent.CreatedAt, statusStrings(move.from), move.byParent)
	if err != nil {
		return nil, err
	}
	return collectAll[lockedTrial](rows)
}

// The move of the trials that lockTrials locked. A trial leaves the queue and gets a fresh
// wait reason when it comes back, as in sqlSetJobStatus.
const sqlMoveTrials = `
UPDATE jobs SET status = $4,
    paused_by_parent = ($4::job_status = 'paused'),
    completed_at = CASE WHEN $4::job_status = 'cancelled' THEN $5 ELSE completed_at END,
    error_message = CASE WHEN $4::job_status = 'cancelled' THEN NULL ELSE error_message END,
    wait_reason = NULL
WHERE parent_job_id = $1 AND parent_created_at = $2 AND id = ANY($3)
RETURNING ` + jobColumns

// moveTrials moves the locked trials to the move's status and returns them, oldest first.
func moveTrials(ctx context.Context, tx pgx.Tx, parent JobRef, move trialMove, locked []lockedTrial,
	at time.Time) ([]Job, error) {
	if len(locked) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(locked))
	for i, t := range locked {
		ids[i] = t.ID
	}
	rows, err := tx.Query(ctx, sqlMoveTrials, parent.ID, parent.CreatedAt, uuidArray(ids), move.to, at)
	if err != nil {
		return nil, err
	}
	moved, err := collectAll[Job](rows)
	slices.SortFunc(moved, func(a, b Job) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), bytes.Compare(a.ID[:], b.ID[:]))
	})
	return moved, err
}

// auditTrials records the move of each trial in one statement, under the audit's action.
func auditTrials(ctx context.Context, tx pgx.Tx, audit *Audit, project string, before []lockedTrial,
	moved []Job) error {
	if audit == nil || len(moved) == 0 {
		return nil
	}
	images := make(map[uuid.UUID]lockedTrial, len(before))
	for _, t := range before {
		images[t.ID] = t
	}
	ids := make([]uuid.UUID, len(moved))
	befores, afters := make([]string, len(moved)), make([]string, len(moved))
	for i, j := range moved {
		beforeJSON, err := json.Marshal(images[j.ID].image())
		if err != nil {
			return err
		}
		afterJSON, err := json.Marshal(jobImage(j))
		if err != nil {
			return err
		}
		ids[i], befores[i], afters[i] = j.ID, string(beforeJSON), string(afterJSON)
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO audit_log (at, token_id, actor, role, action, project_id, job_id, before_json, after_json)
		SELECT $1, $2, $3, $4, $5, $6, t.job_id, t.before::jsonb, t.after::jsonb
		FROM unnest($7::uuid[], $8::text[], $9::text[]) AS t(job_id, before, after)`,
		audit.At, audit.Actor.TokenID, audit.Actor.Name, audit.Actor.Role, audit.Action, project,
		uuidArray(ids), befores, afters)
	if err != nil {
		return fmt.Errorf("record %s of %d trials in the audit log: %w", audit.Action, len(moved), err)
	}
	return nil
}

func statusStrings(statuses []JobStatus) []string {
	out := make([]string, len(statuses))
	for i, s := range statuses {
		out[i] = string(s)
	}
	return out
}
