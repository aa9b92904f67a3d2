package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
)

// runApproval is `schedulerd approval list|get|request|approve|reject`: the requests to
// promote a model version, made by a job's workflow or with `request`, which an operator or
// admin decides.
func runApproval(ctx context.Context, env *environment, args []string) error {
	action, rest, err := subcommand(args, "approval", "list", "get", "request", "approve", "reject")
	if err != nil {
		return err
	}
	client := newAPIClient(env)
	switch action {
	case "list":
		return listApprovals(ctx, env, client, rest)
	case "get":
		return getApproval(ctx, env, client, rest)
	case "request":
		return requestPromotion(ctx, env, client, rest)
	}
	return decideApproval(ctx, env, client, action, rest)
}

func listApprovals(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "approval list")
	query := url.Values{}
	fs.Func("status", "pending, approved or rejected; unset lists all", func(v string) error {
		query.Set("status", v)
		return nil
	})
	fs.Func("project", "filter by project; repeat it for several", func(v string) error {
		query.Add("project", v)
		return nil
	})
	fs.Func("page-token", "next page, as the previous page's output names it", func(v string) error {
		query.Set("page_token", v)
		return nil
	})
	limit := fs.Int("limit", 50, fmt.Sprintf("approvals per page, at most %d", api.MaxPageSize))
	out := output{w: env.stdout}
	if _, err := parseCommand(fs, args, &out, 0, "approval list [-status S] [-project P] [-limit N]"); err != nil {
		return err
	}
	if *limit < 1 || *limit > api.MaxPageSize {
		return usageError{fmt.Sprintf("invalid -limit %d: want 1 to %d approvals per page", *limit, api.MaxPageSize)}
	}
	query.Set("limit", fmt.Sprint(*limit))

	raw, err := client.call(ctx, "GET", "/v1/approvals?"+query.Encode(), nil)
	if err != nil {
		return err
	}
	var page api.ApprovalList
	if err := out.print(raw, &page, printApprovalList); err != nil {
		return err
	}
	if out.format == "table" && page.NextPage != "" {
		fmt.Fprintf(env.stdout, "more approvals: repeat the command with -page-token %s\n", page.NextPage)
	}
	return nil
}

func getApproval(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "approval get")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "approval get APPROVAL_ID")
	if err != nil {
		return err
	}
	path, err := approvalPath(positional[0])
	if err != nil {
		return err
	}
	raw, err := client.call(ctx, "GET", path, nil)
	if err != nil {
		return err
	}
	return out.print(raw, &api.Approval{}, printApproval)
}

// requestPromotion is `approval request MODEL_VERSION_ID -stage STAGE`. The id and the stage
// are checked here, so that a mistyped one exits 2 before the API is called.
func requestPromotion(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "approval request")
	stage := fs.String("stage", "", "the stage to promote the version to: staging or prod (required)")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "approval request MODEL_VERSION_ID -stage staging|prod")
	if err != nil {
		return err
	}
	if *stage != "staging" && *stage != "prod" {
		return usageError{fmt.Sprintf("invalid -stage %q: want staging or prod", *stage)}
	}
	id, err := uuid.Parse(positional[0])
	if err != nil || len(positional[0]) != 36 {
		return usageError{fmt.Sprintf("invalid model version id %q: want a UUID such as "+
			"0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d", positional[0])}
	}
	raw, err := client.call(ctx, "POST", "/v1/approvals",
		api.PromotionRequest{ModelVersionID: id.String(), TargetStage: *stage})
	if err != nil {
		return err
	}
	return out.print(raw, &api.Approval{}, printApproval)
}

// decideApproval is `approval approve|reject APPROVAL_ID -reason TEXT`. The reason is
// required, as the API requires it, and checked here so that a missing one exits 2.
func decideApproval(ctx context.Context, env *environment, client *apiClient, action string, args []string) error {
	fs := newFlagSet(env, "approval "+action)
	reason := fs.String("reason", "", "why, for the requester and the audit log (required)")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "approval "+action+" APPROVAL_ID -reason TEXT")
	if err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usageError{"missing -reason: say why, for the requester and the audit log"}
	}
	path, err := approvalPath(positional[0])
	if err != nil {
		return err
	}
	raw, err := client.call(ctx, "POST", path+"/"+action, api.DecisionRequest{Reason: *reason})
	if err != nil {
		return err
	}
	return out.print(raw, &api.Approval{}, printApproval)
}

// approvalPath is the API path of the approval with id, once id is checked to be a UUID.
func approvalPath(id string) (string, error) {
	parsed, err := uuid.Parse(id)
	if err != nil {
		return "", usageError{fmt.Sprintf("invalid approval id %q: want a UUID such as 0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d", id)}
	}
	return "/v1/approvals/" + parsed.String(), nil
}

func printApprovalList(tw *tabwriter.Writer, v any) {
	fmt.Fprintln(tw, "ID\tPROJECT\tMODEL\tVERSION\tSTAGE\tSTATUS\tREQUESTED BY\tREQUESTED")
	for _, a := range v.(*api.ApprovalList).Approvals {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", a.ID, a.Project, a.Model, a.VersionNumber,
			a.TargetStage, a.Status, a.RequestedBy, showTime(a.RequestedAt))
	}
}

func printApproval(tw *tabwriter.Writer, v any) {
	a := v.(*api.Approval)
	fmt.Fprintf(tw, "id\t%s\n", a.ID)
	fmt.Fprintf(tw, "model version\t%s version %d of project %s (%s)\n", a.Model, a.VersionNumber, a.Project,
		a.ModelVersionID)
	fmt.Fprintf(tw, "to stage\t%s\n", a.TargetStage)
	fmt.Fprintf(tw, "status\t%s\n", a.Status)
	fmt.Fprintf(tw, "requested\t%s by %s\n", showTime(a.RequestedAt), withOwner(a.RequestedBy, &a.RequesterOwner))
	fmt.Fprintf(tw, "evaluation\t%s\n", compactJSON(a.EvalSnapshot))
	decided := "-"
	if a.DecidedAt != nil {
		decided = showTime(*a.DecidedAt) + " by " + withOwner(orDash(a.DecidedBy, plain), a.DeciderOwner)
	}
	fmt.Fprintf(tw, "decided\t%s\n", decided)
	fmt.Fprintf(tw, "reason\t%s\n", orDash(a.Reason, plain))
	// Without a workflow, the approval promotes the version itself.
	fmt.Fprintf(tw, "workflow\t%s\n", orDash(a.WorkflowID, plain))
}

// compactJSON returns raw on one line, so that a table row holds it: the API indents the
// JSON it sends.
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// withOwner returns a token name with its owner when the two differ, such as
// "alice-ci (owner alice)".
func withOwner(name string, owner *string) string {
	if owner == nil || *owner == "" || *owner == name {
		return name
	}
	return fmt.Sprintf("%s (owner %s)", name, *owner)
}
