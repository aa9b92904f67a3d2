package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

// The subcommands that call the HTTP API of a running schedulerd, as SCHEDULERD_TOKEN.

// runJob is `schedulerd job submit|get|list|cancel|pause|resume|priority|explain`.
func runJob(ctx context.Context, env *environment, args []string) error {
	action, rest, err := subcommand(args, "job", "submit", "get", "list", "cancel", "pause", "resume", "priority",
		"explain")
	if err != nil {
		return err
	}
	client := newAPIClient(env)
	switch action {
	case "submit":
		return submitJob(ctx, env, client, rest)
	case "list":
		return listJobs(ctx, env, client, rest)
	case "priority":
		return setJobPriority(ctx, env, client, rest)
	case "explain":
		return explainJob(ctx, env, client, rest)
	}
	return jobAction(ctx, env, client, action, rest)
}

// maxPriority is the highest job priority, as the API and the jobs table accept it.
const maxPriority = store.MaxPriority

func submitJob(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "job submit")
	project := fs.String("project", "", "project to submit to (required)")
	jobType := fs.String("type", "", "job type: fine_tune, hpo, retrain, rlhf or eval_only (required)")
	priority := fs.Int("priority", 0, fmt.Sprintf("priority from 0 to %d, higher first; unset means the server's default, %d",
		maxPriority, api.DefaultPriority))
	configPath := fs.String("config", "", "file holding the job config as JSON, or - for standard input (required)")
	key := fs.String("idempotency-key", "", "key that makes a repeated submission return the first job")
	parent := fs.String("parent", "", "id of a parent job in the same project; not an hpo job, whose trials only its workflow creates")
	tags := map[string]string{}
	fs.Func("tag", "tag KEY=VALUE; repeat for more", func(v string) error {
		k, value, ok := strings.Cut(v, "=")
		if !ok {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		if earlier, repeated := tags[k]; repeated {
			return fmt.Errorf("tag %q is given twice (%q and %q); give each key once", k, earlier, value)
		}
		tags[k] = value
		return nil
	})
	out := output{w: env.stdout}
	addOutputFlag(fs, &out)
	positional, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := out.check(); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ value, flag string }{{*project, "-project"}, {*jobType, "-type"}, {*configPath, "-config"}} {
		if f.value == "" {
			missing = append(missing, f.flag)
		}
	}
	if len(missing) > 0 || len(positional) > 0 {
		problem := "unexpected arguments " + strings.Join(positional, " ")
		if len(missing) > 0 {
			problem = "missing " + strings.Join(missing, ", ")
		}
		return usageError{problem + "; usage: schedulerd job submit -project P -type T -config FILE " +
			"[-priority N] [-tag K=V] [-idempotency-key K]"}
	}
	// 0, the flag's default, is a valid priority too, so whether the server's default
	// applies depends on whether the command line gave -priority, not on its value.
	prioritySet := isSet(fs, "priority")
	if prioritySet && (*priority < 0 || *priority > maxPriority) {
		return usageError{fmt.Sprintf("invalid -priority %d: want 0 to %d", *priority, maxPriority)}
	}

	if *parent != "" {
		// The API takes the 36-character form only; uuid.Parse also reads others.
		parsed, err := uuid.Parse(*parent)
		if err != nil {
			return usageError{fmt.Sprintf("-parent: invalid job id %q: want a UUID such as 0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d", *parent)}
		}
		*parent = parsed.String()
	}

	config, err := readConfig(*configPath)
	if err != nil {
		return err
	}
	req := api.SubmitRequest{JobType: *jobType, Config: config, Tags: tags, ParentJobID: *parent,
		IdempotencyKey: *key}
	if prioritySet {
		req.Priority = priority
	}

	raw, err := client.call(ctx, "POST", "/v1/projects/"+url.PathEscape(*project)+"/jobs", req)
	var problem *problemError
	if errors.As(err, &problem) && problem.problem.Type == api.TypeDuplicateSubmission {
		// A repeated submission is a success: show the job the key already made.
		fmt.Fprintf(env.stderr, "already submitted with idempotency key %q\n", *key)
		raw, err = client.call(ctx, "GET", "/v1/jobs/"+problem.problem.JobID, nil)
	}
	if err != nil {
		return err
	}
	return out.print(raw, &api.Job{}, printJob)
}

// utf8BOM is the UTF-8 encoding of U+FEFF, which some Windows editors write at the start
// of a file to mark it as UTF-8.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// readConfig reads a job config file and checks that it is valid UTF-8 and JSON, which the
// server would otherwise reject with a message that names no file. A leading UTF-8 byte
// order mark is dropped: it carries no content, RFC 8259 section 8.1 lets a parser ignore
// it, and an operator whose editor added it expects the file to work.
func readConfig(path string) (json.RawMessage, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read job config: %w", err)
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	if err := checkConfigEncoding(path, data); err != nil {
		return nil, err
	}
	var value any
	if err := json.Unmarshal(data, &value); err != nil {
		return nil, usageError{fmt.Sprintf("job config %s is not valid JSON: %s", path, jsonErrorPosition(data, err))}
	}
	return data, nil
}

// checkConfigEncoding rejects a config that is not UTF-8, as JSON must be. encoding/json
// would replace each invalid byte with U+FFFD and accept it, and the server then rejects the
// whole body.
func checkConfigEncoding(path string, data []byte) error {
	if bytes.HasPrefix(data, []byte{0xFE, 0xFF}) || bytes.HasPrefix(data, []byte{0xFF, 0xFE}) {
		return usageError{fmt.Sprintf("job config %s is UTF-16 (it starts with a UTF-16 byte order mark); "+
			"save it as UTF-8", path)}
	}
	if utf8.Valid(data) {
		return nil
	}
	at := invalidUTF8Offset(data)
	line, column := lineColumn(data, at)
	return usageError{fmt.Sprintf("job config %s is not valid UTF-8 (byte 0x%02X at line %d, column %d); "+
		"save it as UTF-8", path, data[at], line, column)}
}

// invalidUTF8Offset returns the offset of the first byte of data that starts no valid UTF-8
// character, or len(data) when there is none.
func invalidUTF8Offset(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(data)
}

// jsonErrorPosition describes a JSON syntax error at its line and column in data (see
// lineColumn). encoding/json gives only a byte offset, just past the byte at fault. Other
// errors are returned as text.
func jsonErrorPosition(data []byte, err error) string {
	var syntaxErr *json.SyntaxError
	if !errors.As(err, &syntaxErr) {
		return err.Error()
	}
	at := max(0, min(int(syntaxErr.Offset)-1, len(data)))
	line, column := lineColumn(data, at)
	return fmt.Sprintf("line %d, column %d: %s", line, column, strings.TrimPrefix(err.Error(), "json: "))
}

// lineColumn returns the line and column of the byte at offset in data, both counted from 1
// with the column in characters, as editors count them.
func lineColumn(data []byte, offset int) (line, column int) {
	lineStart := bytes.LastIndexByte(data[:offset], '\n') + 1
	line = bytes.Count(data[:lineStart], []byte("\n")) + 1
	column = utf8.RuneCount(data[lineStart:offset]) + 1
	return line, column
}

func listJobs(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "job list")
	query := url.Values{}
	for _, name := range []string{"project", "status", "job_type", "created_after", "created_before", "page_token"} {
		flagName := strings.ReplaceAll(name, "_", "-")
		usage := "filter by " + strings.ReplaceAll(name, "_", " ") + " (see GET /v1/jobs)"
		set := query.Set
		if name == "project" || name == "status" || name == "job_type" {
			usage, set = usage+"; repeat it for several", query.Add
		}
		fs.Func(flagName, usage, func(v string) error {
			set(name, v)
			return nil
		})
	}
	limit := fs.Int("limit", 50, fmt.Sprintf("jobs per page, at most %d", api.MaxPageSize))
	all := fs.Bool("all", false, "follow next pages to the end")
	out := output{w: env.stdout}
	if _, err := parseCommand(fs, args, &out, 0, "job list [-project P] [-status S] [-limit N] [-all]"); err != nil {
		return err
	}
	if *limit < 1 || *limit > api.MaxPageSize {
		return usageError{fmt.Sprintf("invalid -limit %d: want 1 to %d jobs per page", *limit, api.MaxPageSize)}
	}
	query.Set("limit", fmt.Sprint(*limit))

	if *all {
		list, err := allJobs(ctx, client, query)
		if err != nil {
			return err
		}
		return out.printValue(&list, printJobList)
	}
	raw, err := client.call(ctx, "GET", "/v1/jobs?"+query.Encode(), nil)
	if err != nil {
		return err
	}
	var page api.JobList
	if err := out.print(raw, &page, printJobList); err != nil {
		return err
	}
	if out.format == "table" && page.NextPage != "" {
		fmt.Fprintf(env.stdout, "more jobs: repeat the command with -page-token %s\n", page.NextPage)
	}
	return nil
}

// allJobs follows the next pages from query's page to the last and returns their jobs as
// one list without a next page, so that -all prints one JSON document or one table.
func allJobs(ctx context.Context, client *apiClient, query url.Values) (api.JobList, error) {
	list := api.JobList{Jobs: []api.Job{}} // so that JSON shows no jobs as [], not null
	for {
		raw, err := client.call(ctx, "GET", "/v1/jobs?"+query.Encode(), nil)
		if err != nil {
			return api.JobList{}, err
		}
		var page api.JobList
		if err := json.Unmarshal(raw, &page); err != nil {
			return api.JobList{}, fmt.Errorf("decode the API's response: %w", err)
		}
		list.Jobs = append(list.Jobs, page.Jobs...)
		if page.NextPage == "" {
			return list, nil
		}
		query.Set("page_token", page.NextPage)
	}
}

func explainJob(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "job explain")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "job explain JOB_ID")
	if err != nil {
		return err
	}
	path, err := jobPath(positional[0])
	if err != nil {
		return err
	}
	raw, err := client.call(ctx, "GET", path+"/explain", nil)
	if err != nil {
		return err
	}
	return out.print(raw, &api.Explanation{}, printExplanation)
}

// setJobPriority is `job priority JOB_ID -priority N`: it sets one job's priority
// (PATCH /v1/jobs/{id}/priority) and prints the job.
func setJobPriority(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "job priority")
	priority := fs.Int("priority", 0, fmt.Sprintf("the job's new priority, 0 to %d, higher first (required)", maxPriority))
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "job priority JOB_ID -priority N")
	if err != nil {
		return err
	}
	rule := fmt.Sprintf("an integer from 0 to %d", maxPriority)
	switch {
	case !isSet(fs, "priority"):
		return usageError{"missing -priority; job priority needs -priority N, " + rule}
	case *priority < 0 || *priority > maxPriority:
		return usageError{fmt.Sprintf("invalid -priority %d: want %s", *priority, rule)}
	}
	path, err := jobPath(positional[0])
	if err != nil {
		return err
	}

	raw, err := client.call(ctx, "PATCH", path+"/priority", api.PriorityRequest{Priority: priority})
	if err != nil {
		return err
	}
	return out.print(raw, &api.Job{}, printJob)
}

// jobAction is `job get|cancel|pause|resume JOB_ID`.
func jobAction(ctx context.Context, env *environment, client *apiClient, action string, args []string) error {
	fs := newFlagSet(env, "job "+action)
	out := output{w: env.stdout}
	addOutputFlag(fs, &out)
	positional, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := out.check(); err != nil {
		return err
	}
	if err := exactArgs(positional, 1, "job "+action+" JOB_ID"); err != nil {
		return err
	}

	path, err := jobPath(positional[0])
	if err != nil {
		return err
	}
	method := "GET"
	if action != "get" {
		method, path = "POST", path+"/"+action
	}
	raw, err := client.call(ctx, method, path, nil)
	if err != nil {
		return err
	}
	return out.print(raw, &api.Job{}, printJob)
}

// jobPath is the API path of the job with id, once id is checked to be a UUID, so that a
// mistyped id is a usage error here rather than a request the server refuses.
func jobPath(id string) (string, error) {
	parsed, err := uuid.Parse(id)
	if err != nil {
		return "", usageError{fmt.Sprintf("invalid job id %q: want a UUID such as 0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d", id)}
	}
	return "/v1/jobs/" + parsed.String(), nil
}

// runQueue is `schedulerd queue list|drain|undrain|reprioritize`. Each action registers
// only its own flags, so that a flag of another action is rejected rather than ignored.
func runQueue(ctx context.Context, env *environment, args []string) error {
	action, rest, err := subcommand(args, "queue", "list", "drain", "undrain", "reprioritize")
	if err != nil {
		return err
	}
	client := newAPIClient(env)
	switch action {
	case "list":
		return listQueues(ctx, env, client, rest)
	case "drain":
		return drainQueue(ctx, env, client, rest)
	case "undrain":
		return undrainQueue(ctx, env, client, rest)
	}
	return reprioritizeQueue(ctx, env, client, rest)
}

func listQueues(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "queue list")
	out := output{w: env.stdout}
	if _, err := parseCommand(fs, args, &out, 0, "queue list"); err != nil {
		return err
	}
	raw, err := client.call(ctx, "GET", "/v1/queues", nil)
	if err != nil {
		return err
	}
	return out.print(raw, &api.QueueList{}, printQueues)
}

func drainQueue(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "queue drain")
	deadline := fs.String("deadline", "",
		"when running jobs are preempted, as a duration from now (30m, 0 for at once) or an RFC 3339 time")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "queue drain PROJECT [-deadline D]")
	if err != nil {
		return err
	}
	body := api.DrainRequest{}
	if body.Deadline, err = absoluteTime(*deadline, time.Now()); err != nil {
		return err
	}
	raw, err := client.call(ctx, "POST", queuePath(positional[0], "drain"), body)
	if err != nil {
		return quotaSetHint(err, positional[0])
	}
	return out.print(raw, &api.DrainResult{}, printDrain)
}

func undrainQueue(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "queue undrain")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "queue undrain PROJECT")
	if err != nil {
		return err
	}
	raw, err := client.call(ctx, "POST", queuePath(positional[0], "undrain"), nil)
	if err != nil {
		return quotaSetHint(err, positional[0])
	}
	return out.print(raw, &api.Quota{}, printQuota)
}

func reprioritizeQueue(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "queue reprioritize")
	delta := fs.Int("delta", 0, "added to the priority of each queued job, -100 to 100; "+
		"rejected, changing nothing, if a job's priority would leave 0 to 100")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "queue reprioritize PROJECT -delta N")
	if err != nil {
		return err
	}
	if err := checkDelta(fs, *delta); err != nil {
		return err
	}
	raw, err := client.call(ctx, "POST", queuePath(positional[0], "reprioritize"), api.ReprioritizeRequest{Delta: delta})
	if err != nil {
		return err
	}
	return out.print(raw, &api.ReprioritizeResult{}, printReprioritize)
}

// checkDelta rejects a -delta that the API would reject. It separates a missing -delta from
// a given -delta 0, because both leave the flag at 0.
func checkDelta(fs *flag.FlagSet, delta int) error {
	if api.ValidDelta(delta) {
		return nil
	}
	rule := fmt.Sprintf("a non-zero integer from -%d to %d", api.MaxPriorityDelta, api.MaxPriorityDelta)
	if !isSet(fs, "delta") {
		return usageError{"missing -delta; queue reprioritize needs -delta N, " + rule}
	}
	return usageError{fmt.Sprintf("invalid -delta %d: want %s", delta, rule)}
}

func queuePath(project, action string) string {
	return "/v1/queues/" + url.PathEscape(project) + "/" + action
}

// absoluteTime reads a deadline given as a duration from now or as an RFC 3339 time.
func absoluteTime(v string, now time.Time) (string, error) {
	if v == "" {
		return "", nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		// A negative duration is most likely a typo, and 0 is the plain way to write "at once".
		if d < 0 {
			return "", usageError{fmt.Sprintf("invalid -deadline %q: a duration counts from now and "+
				"cannot be negative; 0 preempts the running jobs at once", v)}
		}
		return now.Add(d).UTC().Format(time.RFC3339), nil
	}
	if _, err := time.Parse(time.RFC3339, v); err != nil {
		return "", usageError{fmt.Sprintf("invalid -deadline %q: want a duration such as 30m or an RFC 3339 time", v)}
	}
	return v, nil
}

// runQuota is `schedulerd quota get|set PROJECT`.
func runQuota(ctx context.Context, env *environment, args []string) error {
	action, rest, err := subcommand(args, "quota", "get", "set")
	if err != nil {
		return err
	}
	client := newAPIClient(env)
	if action == "get" {
		return getQuota(ctx, env, client, rest)
	}
	return setQuota(ctx, env, client, rest)
}

func getQuota(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "quota get")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "quota get PROJECT")
	if err != nil {
		return err
	}
	raw, err := client.call(ctx, "GET", quotaPath(positional[0]), nil)
	if err != nil {
		return quotaSetHint(err, positional[0])
	}
	return out.print(raw, &api.Quota{}, printQuota)
}

// quotaSetHint replaces the API's no-quota error, whose hint names the HTTP call, with one
// that names the CLI command that creates a quota. Other errors pass unchanged.
func quotaSetHint(err error, project string) error {
	var problem *problemError
	if !errors.As(err, &problem) || problem.problem.Type != api.TypeNoQuota {
		return err
	}
	return fmt.Errorf("project %q has no quota; an admin sets one with 'schedulerd quota set %s -budget HOURS "+
		"-max-concurrent N -tier PRIORITY -period-start YYYY-MM-DD -period-end YYYY-MM-DD'", project, project)
}

// setQuota changes only the flags given, with PATCH, so that the server applies them to the
// quota as it is then: a change made by someone else, or the scheduler's renewal of the
// period, since this command started is kept. With every flag given it sends PUT, which
// also creates a quota; a project without a quota needs them all.
func setQuota(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "quota set")
	budget := fs.Float64("budget", 0, "GPU-hour budget of the period")
	maxConcurrent := fs.Int("max-concurrent", 0, "jobs admitted at once at most")
	tier := fs.Int("tier", 0, "highest priority a submitter may give the project's jobs, 0 to 100")
	periodStart := fs.String("period-start", "", "first day of the period, YYYY-MM-DD")
	periodEnd := fs.String("period-end", "", "day after the period, YYYY-MM-DD")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "quota set PROJECT [flags]")
	if err != nil {
		return err
	}
	path := quotaPath(positional[0])

	var req api.QuotaRequest
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "budget":
			req.GPUHoursBudget = budget
		case "max-concurrent":
			req.MaxConcurrentJobs = maxConcurrent
		case "tier":
			req.PriorityTier = tier
		case "period-start":
			req.PeriodStart = periodStart
		case "period-end":
			req.PeriodEnd = periodEnd
		}
	})
	if math.IsNaN(*budget) || math.IsInf(*budget, 0) {
		return usageError{fmt.Sprintf("invalid -budget %v: want a number of GPU-hours", *budget)}
	}
	missing := missingQuotaFlags(req)
	if len(missing) == 5 {
		return usageError{"quota set needs at least one of -budget, -max-concurrent, -tier, -period-start and -period-end"}
	}
	method := "PATCH"
	if len(missing) == 0 {
		method = "PUT"
	}

	raw, err := client.call(ctx, method, path, req)
	var problem *problemError
	if errors.As(err, &problem) && problem.problem.Type == api.TypeNoQuota {
		return usageError{fmt.Sprintf("project %q has no quota yet, so quota set needs every flag; missing %s",
			positional[0], strings.Join(missing, ", "))}
	}
	if err != nil {
		return err
	}
	return out.print(raw, &api.Quota{}, printQuota)
}

// missingQuotaFlags names the flags that req leaves out.
func missingQuotaFlags(req api.QuotaRequest) []string {
	var missing []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"-budget", req.GPUHoursBudget != nil}, {"-max-concurrent", req.MaxConcurrentJobs != nil},
		{"-tier", req.PriorityTier != nil}, {"-period-start", req.PeriodStart != nil},
		{"-period-end", req.PeriodEnd != nil},
	} {
		if !f.set {
			missing = append(missing, f.name)
		}
	}
	return missing
}

func quotaPath(project string) string { return projectPath(project) + "/quota" }

// runProject is `schedulerd project create|update|get|list`.
func runProject(ctx context.Context, env *environment, args []string) error {
	action, rest, err := subcommand(args, "project", "create", "update", "get", "list")
	if err != nil {
		return err
	}
	client := newAPIClient(env)
	switch action {
	case "get":
		return getProject(ctx, env, client, rest)
	case "list":
		return listProjects(ctx, env, client, rest)
	}
	return saveProject(ctx, env, client, action, rest)
}

// saveProject is `project create PROJECT -org ORG` and `project update PROJECT`. Both send
// only the flags given, so an update keeps the fields it does not name. Both read the
// project first: create rejects an existing one and update a missing one.
func saveProject(ctx context.Context, env *environment, client *apiClient, action string, args []string) error {
	fs := newFlagSet(env, "project "+action)
	req := api.ProjectRequest{}
	optionalString(fs, "org", "organisation the project belongs to (required to create it)", &req.Org)
	optionalString(fs, "namespace", "Kubernetes namespace of its pods; a new project's default is its id", &req.Namespace)
	optionalString(fs, "display-name", "name shown to people", &req.DisplayName)
	optionalString(fs, "owner", "who to ask about the project", &req.Owner)
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "project "+action+" PROJECT [flags]")
	if err != nil {
		return err
	}
	req.ID = positional[0]

	if action == "create" && req.Org == nil {
		return usageError{"project create needs -org ORG, the organisation the project belongs to"}
	}
	if action == "update" && req.Org == nil && req.Namespace == nil && req.DisplayName == nil && req.Owner == nil {
		return usageError{"project update needs at least one of -org, -namespace, -display-name and -owner"}
	}
	if err := checkProjectExists(ctx, client, req.ID, action == "update"); err != nil {
		return err
	}

	raw, err := client.call(ctx, "POST", "/v1/projects", req)
	if err != nil {
		return err
	}
	return out.print(raw, &api.Project{}, printProject)
}

// checkProjectExists reads the project first, so that create never changes an existing
// project (a runbook run twice, or a typo in its name, would otherwise move it to another
// org) and update never creates one.
func checkProjectExists(ctx context.Context, client *apiClient, project string, want bool) error {
	raw, err := client.call(ctx, "GET", projectPath(project), nil)
	var problem *problemError
	missing := errors.As(err, &problem) && problem.status == http.StatusNotFound
	switch {
	case missing && want:
		return fmt.Errorf("%w; create it with 'schedulerd project create %s -org ORG'", err, project)
	case missing:
		return nil
	case err != nil:
		return err
	case !want:
		var existing api.Project
		if err := json.Unmarshal(raw, &existing); err != nil {
			return fmt.Errorf("read project %s: %w", project, err)
		}
		return fmt.Errorf("project %q already exists, in org %s; change it with 'schedulerd project update %s'",
			project, existing.Org, project)
	}
	return nil
}

// optionalString defines a string flag that leaves target nil unless the flag is given.
func optionalString(fs *flag.FlagSet, name, usage string, target **string) {
	fs.Func(name, usage, func(v string) error {
		*target = &v
		return nil
	})
}

func getProject(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "project get")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "project get PROJECT")
	if err != nil {
		return err
	}
	raw, err := client.call(ctx, "GET", projectPath(positional[0]), nil)
	if err != nil {
		return err
	}
	return out.print(raw, &api.Project{}, printProject)
}

func listProjects(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "project list")
	out := output{w: env.stdout}
	if _, err := parseCommand(fs, args, &out, 0, "project list"); err != nil {
		return err
	}
	raw, err := client.call(ctx, "GET", "/v1/projects", nil)
	if err != nil {
		return err
	}
	return out.print(raw, &api.ProjectList{}, printProjects)
}

func projectPath(project string) string { return "/v1/projects/" + url.PathEscape(project) }

// The table printers: one per response type.

// runState describes where a live run is: waiting for its pod, its pod waiting to start,
// running on a node, or stopping.
func runState(r api.LiveRun) string {
	switch {
	case r.Stopping != nil:
		return "stopping its pod " + r.Pod + ", then " + *r.Stopping
	case r.Status == "running" && r.Node != nil:
		return "running on node " + *r.Node
	case r.Status == "running":
		return "running"
	case r.PodCreatedAt == nil:
		return "admitted; the pod " + r.Pod + " is not created yet"
	}
	return fmt.Sprintf("admitted; the pod %s was created %s ago and its container has not started "+
		"(it may wait for a node or an image)", r.Pod, time.Since(*r.PodCreatedAt).Round(time.Second))
}

// endedRun describes how a run ended for job explain: its number, status and end time, the
// container's exit code, and the dispatcher's reason, with "-" for what the run lacks.
func endedRun(r api.EndedRun) string {
	ended := fmt.Sprintf("%d, %s", r.Number, r.Status)
	if r.CompletedAt != nil {
		ended += " at " + showTime(*r.CompletedAt)
	}
	return fmt.Sprintf("%s; exit code %s; reason %s", ended, orDash(r.ExitCode, strconv.Itoa),
		orDash(r.EndReason, plain))
}

// nodeSizes describes a model's node sizes for job explain: each size's GPUs, cores and
// memory, or the largest node's GPUs while the sizes are not counted yet.
func nodeSizes(m api.ModelState) string {
	if len(m.NodeSizes) == 0 {
		return fmt.Sprintf("the largest node has %s in all", gpus(int(m.LargestNodeMilli)))
	}
	sizes := make([]string, len(m.NodeSizes))
	for i, s := range m.NodeSizes {
		sizes[i] = fmt.Sprintf("%s GPUs, %s cores, %d GiB", gpus(int(s.GPUMilli)),
			strconv.FormatFloat(float64(s.CPUMilli)/1000, 'f', -1, 64), s.MemoryMiB>>10)
	}
	return "node sizes " + strings.Join(sizes, " or ")
}

func printJob(tw *tabwriter.Writer, v any) {
	j := v.(*api.Job)
	fmt.Fprintf(tw, "id\t%s\n", j.ID)
	fmt.Fprintf(tw, "project\t%s\n", j.Project)
	fmt.Fprintf(tw, "type\t%s\n", j.JobType)
	fmt.Fprintf(tw, "status\t%s\n", jobStatus(j))
	fmt.Fprintf(tw, "priority\t%d\n", j.Priority)
	fmt.Fprintf(tw, "gpus\t%s on %s\n", gpus(j.GPUMilli), models(j.GPUModels))
	fmt.Fprintf(tw, "runs\t%d; %d of %d attempts used by failures; %d of %d preemptions\n",
		j.RunCount, j.Attempts, j.MaxAttempts, j.Preemptions, j.MaxPreemptions)
	fmt.Fprintf(tw, "created\t%s\n", showTime(j.CreatedAt))
	fmt.Fprintf(tw, "started\t%s\n", orDash(j.StartedAt, showTime))
	fmt.Fprintf(tw, "completed\t%s\n", orDash(j.CompletedAt, showTime))
	fmt.Fprintf(tw, "wait reason\t%s\n", orDash(j.WaitReason, plain))
	fmt.Fprintf(tw, "error\t%s\n", orDash(j.ErrorMessage, plain))
}

// jobStatus returns the job's status and, for a paused job, who paused it. A trial that its
// hpo parent's pause paused names the parent, whose resume queues it again. Any other job
// names the token whose pause paused it, and notes when only an operator or admin can
// resume it.
func jobStatus(j *api.Job) string {
	switch {
	case j.PausedByParent && j.ParentJobID != nil:
		return fmt.Sprintf("%s by its hpo parent %s", j.Status, j.ParentJobID)
	case j.PausedBy == api.PausedBySubmitter && j.PausedByToken != nil:
		return fmt.Sprintf("%s by submitter token %q", j.Status, *j.PausedByToken)
	case j.PausedBy != "" && j.PausedByToken != nil:
		return fmt.Sprintf("%s by %s token %q (only an operator or admin can resume it)", j.Status,
			j.PausedBy, *j.PausedByToken)
	}
	return j.Status
}

func printJobList(tw *tabwriter.Writer, v any) {
	fmt.Fprintln(tw, "ID\tPROJECT\tTYPE\tSTATUS\tPRIORITY\tGPUS\tCREATED\tWAIT REASON")
	for _, j := range v.(*api.JobList).Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", j.ID, j.Project, j.JobType, j.Status, j.Priority,
			gpus(j.GPUMilli), showTime(j.CreatedAt), orDash(j.WaitReason, plain))
	}
}

// reservationNote describes the GPU-hours that the explained job's run holds, or that its
// admission would hold. An ended job, and an hpo parent, which runs no pod, hold none. A
// paused parent is known by its blocker, because its resume queues its trials, not itself.
func reservationNote(e *api.Explanation) string {
	hours := e.Budget.JobReservation
	switch {
	case e.Run != nil:
		return fmt.Sprintf("; its run reserves %.2f", hours)
	case slices.Contains(e.Blockers, api.BlockerPausedSearch):
		return ""
	case e.Status == string(store.JobQueued) || e.Status == string(store.JobPaused):
		return fmt.Sprintf("; admission would reserve %.2f", hours)
	}
	return ""
}

func printExplanation(tw *tabwriter.Writer, v any) {
	e := v.(*api.Explanation)
	fmt.Fprintf(tw, "job\t%s (%s)\n", e.JobID, e.Status)
	if r := e.Run; r != nil {
		fmt.Fprintf(tw, "run\t%d, %s\n", r.Number, runState(*r))
	}
	if r := e.LastRun; r != nil {
		fmt.Fprintf(tw, "last run\t%s\n", endedRun(*r))
	}
	if p := e.Position; p != nil {
		fmt.Fprintf(tw, "position\t%d jobs ahead (%d of project %s), %d queued\n",
			p.Ahead, p.AheadInProject, e.Project, p.Queued)
	}
	if b := e.Budget; b != nil {
		fmt.Fprintf(tw, "budget\t%.2f of %.2f GPU-hours left%s\n", b.GPUHoursLeft, b.GPUHoursBudget,
			reservationNote(e))
	}
	if c := e.Concurrency; c != nil {
		fmt.Fprintf(tw, "slots\t%d of %d free\n", c.FreeSlots, c.MaxConcurrentJobs)
	}
	fmt.Fprintf(tw, "drained\t%s\n", yesNo(e.Drained))
	for _, m := range e.GPUModels {
		nodes := "nodes"
		if m.Nodes == 1 {
			nodes = "node"
		}
		fmt.Fprintf(tw, "model %s\t%s of %s GPUs free on %d %s; %s\n", m.Model,
			gpus(int(m.FreeMilli)), gpus(int(m.CapacityMilli)), m.Nodes, nodes, nodeSizes(m))
	}
	fmt.Fprintf(tw, "wait reason\t%s\n", orDash(e.WaitReason, plain))
	blockers := "none"
	if len(e.Blockers) > 0 {
		blockers = strings.Join(e.Blockers, "; ")
	}
	fmt.Fprintf(tw, "blockers\t%s\n", blockers)
}

func printQueues(tw *tabwriter.Writer, v any) {
	fmt.Fprintln(tw, "PROJECT\tQUEUED\tRUNNING\tPAUSED\tDRAINED\tGPU-HOURS LEFT\tFREE SLOTS")
	for _, q := range v.(*api.QueueList).Queues {
		drained, left, slots := "-", "-", "-"
		if quota := q.Quota; quota != nil {
			drained = yesNo(quota.Drained)
			left = fmt.Sprintf("%.2f", quota.GPUHoursLeft)
			slots = fmt.Sprint(max(0, quota.MaxConcurrentJobs-quota.CurrentConcurrent))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\n", q.Project, q.Depth["queued"], q.Depth["running"],
			q.Depth["paused"], drained, left, slots)
	}
}

func printDrain(tw *tabwriter.Writer, v any) {
	d := v.(*api.DrainResult)
	printQuota(tw, &d.Quota)
	fmt.Fprintf(tw, "requeued jobs\t%d\n", len(d.RequeuedJobs))
}

func printQuota(tw *tabwriter.Writer, v any) {
	q := v.(*api.Quota)
	fmt.Fprintf(tw, "project\t%s\n", q.Project)
	fmt.Fprintf(tw, "budget\t%.2f GPU-hours, %.2f used, %.2f reserved, %.2f left\n",
		q.GPUHoursBudget, q.GPUHoursUsed, q.GPUHoursReserved, q.GPUHoursLeft)
	fmt.Fprintf(tw, "concurrency\t%d of %d jobs\n", q.CurrentConcurrent, q.MaxConcurrentJobs)
	fmt.Fprintf(tw, "priority tier\t%d\n", q.PriorityTier)
	fmt.Fprintf(tw, "period\t%s to %s\n", q.PeriodStart, q.PeriodEnd)
	drained := "no"
	if q.DrainedAt != nil {
		drained = "since " + showTime(*q.DrainedAt)
		if q.DrainDeadline != nil {
			drained += ", running jobs preempted at " + showTime(*q.DrainDeadline)
		}
	}
	fmt.Fprintf(tw, "drained\t%s\n", drained)
}

// printReprioritize prints the changed priorities, or one line when nothing changed, which
// happens only when the project has no queued jobs, because the API rejects a delta that
// would move any queued job outside 0..100.
func printReprioritize(tw *tabwriter.Writer, v any) {
	r := v.(*api.ReprioritizeResult)
	if len(r.Changes) == 0 {
		fmt.Fprintf(tw, "no priority changed: project %s has no queued jobs\n", r.Project)
		return
	}
	fmt.Fprintln(tw, "JOB\tBEFORE\tAFTER")
	for _, c := range r.Changes {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", c.JobID, c.Before, c.After)
	}
}

func printProject(tw *tabwriter.Writer, v any) {
	p := v.(*api.Project)
	fmt.Fprintf(tw, "project\t%s\n", p.ID)
	fmt.Fprintf(tw, "org\t%s\n", p.Org)
	fmt.Fprintf(tw, "namespace\t%s\n", p.Namespace)
	fmt.Fprintf(tw, "display name\t%s\n", p.DisplayName)
	fmt.Fprintf(tw, "owner\t%s\n", p.Owner)
	fmt.Fprintf(tw, "created\t%s\n", showTime(p.CreatedAt))
}

func printProjects(tw *tabwriter.Writer, v any) {
	list := v.(*api.ProjectList)
	fmt.Fprintln(tw, "PROJECT\tORG\tNAMESPACE\tOWNER\tCREATED")
	for _, p := range list.Projects {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Org, p.Namespace, p.Owner, showTime(p.CreatedAt))
	}
}

// gpus shows thousandths of a GPU as GPUs.
func gpus(milli int) string {
	if milli%1000 == 0 {
		return fmt.Sprint(milli / 1000)
	}
	return fmt.Sprintf("%.3f", float64(milli)/1000)
}

func models(names []string) string {
	if len(names) == 0 {
		return "any model"
	}
	return strings.Join(names, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func plain(s string) string { return s }
