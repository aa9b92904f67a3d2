package api

import (
	"errors"
	"net/http"

	"github.com/schedulerd/schedulerd/store"
)

// maxModelNameLength is the length of the model_name column.
const maxModelNameLength = 200

// listModelVersions serves GET /v1/projects/{project}/models/{model}/versions: newest first.
func (s *Server) listModelVersions(w http.ResponseWriter, r *http.Request, caller *principal) error {
	project, model := r.PathValue("project"), r.PathValue("model")
	if !projectID.MatchString(project) {
		return invalid("project", "%q is not a project id", project)
	}
	if len(model) > maxModelNameLength {
		return invalid("model", "longer than %d characters", maxModelNameLength)
	}
	if err := caller.requireProject(project); err != nil {
		return err
	}

	versions, err := s.store.ListModelVersions(r.Context(), project, model)
	if err != nil {
		return err
	}
	// A model is created with its first version, so a model without versions does not exist.
	if len(versions) == 0 {
		return notFound("project %q has no model %q", project, model)
	}
	list := ModelVersionList{Versions: make([]ModelVersion, 0, len(versions))}
	for _, v := range versions {
		list.Versions = append(list.Versions, modelVersionView(v))
	}
	writeJSON(w, http.StatusOK, "application/json", list)
	return nil
}

func (s *Server) getModelVersion(w http.ResponseWriter, r *http.Request, caller *principal) error {
	version, err := s.versionForCaller(r, caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", modelVersionView(version))
	return nil
}

// getLineage serves GET /v1/model-versions/{id}/lineage: the version with the job that
// trained it, that job's runs and artifacts, and the version's approvals.
func (s *Server) getLineage(w http.ResponseWriter, r *http.Request, caller *principal) error {
	version, err := s.versionForCaller(r, caller)
	if err != nil {
		return err
	}
	ctx := r.Context()
	job, err := s.store.GetJob(ctx, version.JobID)
	if err != nil {
		return err
	}
	runs, err := s.store.JobRuns(ctx, version.Job())
	if err != nil {
		return err
	}
	artifacts, err := s.store.JobArtifacts(ctx, version.Job())
	if err != nil {
		return err
	}
	approvals, err := s.store.ListApprovalsOfVersion(ctx, version.ID)
	if err != nil {
		return err
	}

	lineage := Lineage{Version: modelVersionView(version), Job: jobView(job),
		Runs: make([]LineageRun, 0, len(runs)), Artifacts: artifactViews(artifacts),
		Checkpoints: []Artifact{}, Approvals: approvalViews(approvals)}
	for _, run := range runs {
		lineage.Runs = append(lineage.Runs, lineageRunView(run))
	}
	for _, a := range lineage.Artifacts {
		if a.ArtifactType == "checkpoint" {
			lineage.Checkpoints = append(lineage.Checkpoints, a)
		}
	}
	writeJSON(w, http.StatusOK, "application/json", lineage)
	return nil
}

// versionForCaller reads the model version of the path. A version of a project the caller
// may not act on is not found.
func (s *Server) versionForCaller(r *http.Request, caller *principal) (store.ModelVersion, error) {
	id, err := pathUUID(r, "id", "model version")
	if err != nil {
		return store.ModelVersion{}, err
	}
	version, err := s.store.GetModelVersion(r.Context(), id)
	err = caller.hideOtherProject(err, version.ProjectID)
	if errors.Is(err, store.ErrNotFound) {
		return store.ModelVersion{}, notFound("model version %s does not exist", id)
	}
	return version, err
}
