package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schedulerd/schedulerd/api"
)

// stdin is the reader of `job submit -config -`; tests replace it.
var stdin io.Reader = os.Stdin

// apiClient calls the HTTP API of a running schedulerd.
type apiClient struct {
	base string
	// baseErr is the usage error of an invalid API URL, which call returns, or nil.
	baseErr error
	// unreachableHint names what to check when no response comes from base.
	unreachableHint string
	token           string
	http            *http.Client
}

// newAPIClient reads the API URL (default: http:// and the configured HTTP address) and
// the token. An invalid URL or a missing token fails the first call rather than this, so
// that a subcommand's -h and its argument checks work without them.
func newAPIClient(env *environment) *apiClient {
	return &apiClient{base: apiURL(env), baseErr: checkAPIURL(env.cfg.APIURL),
		unreachableHint: unreachableHint(env), token: env.cfg.Token,
		http: &http.Client{Timeout: 30 * time.Second}}
}

// unreachableHint names the setting that gave the API's URL, so that a user whose daemon
// listens elsewhere learns what to set.
func unreachableHint(env *environment) string {
	if env.cfg.APIURL != "" {
		return "check -api-url or SCHEDULERD_API_URL"
	}
	return fmt.Sprintf("-api-url (env SCHEDULERD_API_URL) is not set, so the CLI used -http-addr "+
		"(env SCHEDULERD_HTTP_ADDR, %s); set -api-url or SCHEDULERD_API_URL to the daemon's URL", env.cfg.HTTPAddr)
}

// checkAPIURL rejects an API URL that is not an http or https URL with a host, such as
// 127.0.0.1:8080 without http://, because Go's URL parse error on each request does not
// name the setting or the fix. An empty value passes, because the default is built from
// -http-addr, which config checks.
func checkAPIURL(base string) error {
	if base == "" {
		return nil
	}
	u, err := url.Parse(base)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	return usageError{fmt.Sprintf("invalid -api-url (env SCHEDULERD_API_URL): want a URL such as "+
		"http://127.0.0.1:8080, got %q", base)}
}

// apiURL is the configured API URL, or http:// and the configured HTTP address.
func apiURL(env *environment) string {
	base := env.cfg.APIURL
	if base == "" {
		base = "http://" + env.cfg.HTTPAddr
	}
	return strings.TrimRight(base, "/")
}

// call sends body as JSON (none when nil) and returns the response body. A response that
// is not 2xx is an error with the problem's words.
func (c *apiClient) call(ctx context.Context, method, path string, body any, headers ...string) ([]byte, error) {
	if c.baseErr != nil {
		return nil, c.baseErr
	}
	if c.token == "" {
		return nil, usageError{"no API token: set SCHEDULERD_TOKEN or -token (an admin creates one with 'schedulerd token create')"}
	}
	var reader io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, reader)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.requestError(ctx, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read response of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return nil, newProblemError(resp.StatusCode, data)
	}
	return data, nil
}

// requestError describes a request that got no response. The transport's error repeats the
// method and URL, so only its cause is kept, and the hint names the setting of the URL.
func (c *apiClient) requestError(ctx context.Context, method, path string, err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	return fmt.Errorf("%s %s: %w\n%s", method, c.base+path, err, c.unreachableHint)
}

// problemError is an error response of the API.
type problemError struct {
	status  int
	problem api.Problem
	body    string // when the body is not a problem document
}

func newProblemError(status int, body []byte) *problemError {
	e := &problemError{status: status}
	if err := json.Unmarshal(body, &e.problem); err != nil || e.problem.Title == "" {
		e.body = strings.TrimSpace(string(body))
	}
	return e
}

// Error is one line: status, title, field, detail and, for a server fault, the request id
// under which the server logged the cause.
func (e *problemError) Error() string {
	p := e.problem
	if e.body != "" || p.Title == "" {
		return fmt.Sprintf("HTTP %d: %s", e.status, e.body)
	}
	msg := fmt.Sprintf("HTTP %d %s", e.status, p.Title)
	if p.Field != "" {
		msg += " (" + p.Field + ")"
	}
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	if e.status >= 500 && p.RequestID != "" {
		msg += " (request id " + p.RequestID + ")"
	}
	return msg
}

// output is the -o flag: table for people, json for programs.
type output struct {
	format string
	w      io.Writer
}

func addOutputFlag(fs *flag.FlagSet, o *output) {
	fs.StringVar(&o.format, "o", "table", "output format: table or json")
}

func (o output) check() error {
	if o.format != "table" && o.format != "json" {
		return usageError{fmt.Sprintf("invalid -o %q: want table or json", o.format)}
	}
	return nil
}

// print writes the response: as received (indented) for -o json, else through table.
func (o output) print(raw []byte, v any, table func(*tabwriter.Writer, any)) error {
	if o.format == "json" {
		var indented bytes.Buffer
		// json.Indent keeps trailing white space, and the server ends its JSON with a newline.
		if err := json.Indent(&indented, bytes.TrimSpace(raw), "", "  "); err != nil {
			return fmt.Errorf("the API sent invalid JSON: %w", err)
		}
		indented.WriteByte('\n')
		_, err := o.w.Write(indented.Bytes())
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode the API's response: %w", err)
	}
	tw := tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	table(tw, v)
	return tw.Flush()
}

// printValue writes v, which did not come from the API: encoded for -o json, else through
// table.
func (o output) printValue(v any, table func(*tabwriter.Writer, any)) error {
	if o.format == "json" {
		encoded, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = o.w.Write(append(encoded, '\n'))
		return err
	}
	tw := tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
	table(tw, v)
	return tw.Flush()
}

// parseFlags parses flags wherever they stand among the positional arguments, so that
// `job get ID -o json` works like `job get -o json ID`.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := parseFlagSet(fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseNoArgs parses the flags of a command that takes no positional arguments, and
// rejects any, so that flags after a stray argument are not silently ignored.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	positional, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(positional) > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q: %s takes flags only", positional, fs.Name())}
	}
	return nil
}

// parseFlagSet parses args with fs and returns a flagError. On a bad flag the flag package
// prints the whole flag list after the message, so its output is discarded and the
// message comes back as one line, with the closest defined flag when the bad one looks
// like a typo of it. After -h the list goes to the flag set's output.
func parseFlagSet(fs *flag.FlagSet, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(out)

	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(out)
		fs.Usage()
	}
	if err != nil {
		return flagError(suggestFlag(fs, err))
	}
	return nil
}

// subcommand picks the action of a command such as `job submit`.
func subcommand(args []string, command string, actions ...string) (string, []string, error) {
	if len(args) > 0 && isHelp(args[0]) {
		return "", nil, helpText{fmt.Sprintf("usage: schedulerd %s %s [flags]; add -h after one of them for its flags",
			command, strings.Join(actions, "|"))}
	}
	if len(args) == 0 || !slices.Contains(actions, args[0]) {
		return "", nil, actionError(command, args, actions)
	}
	return args[0], args[1:], nil
}

// isSet reports whether the command line gave the flag name, even at its default value.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func newFlagSet(env *environment, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	return fs
}

// parseCommand parses a command's flags, with -o for out, and checks that n positional
// arguments remain; usage is the command line shown when they do not.
func parseCommand(fs *flag.FlagSet, args []string, out *output, n int, usage string) ([]string, error) {
	addOutputFlag(fs, out)
	positional, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if err := out.check(); err != nil {
		return nil, err
	}
	return positional, exactArgs(positional, n, usage)
}

func exactArgs(positional []string, n int, usage string) error {
	if len(positional) != n {
		return usageError{"usage: schedulerd " + usage}
	}
	return nil
}

// orDash shows an absent value in a table.
func orDash[T any](v *T, show func(T) string) string {
	if v == nil {
		return "-"
	}
	return show(*v)
}

func showTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
