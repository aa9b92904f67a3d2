// Package config reads schedulerd's settings from flags and SCHEDULERD_* environment
// variables, once at start, and validates them so that a bad setting stops the daemon with
// one line naming it. Flags win over the environment.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	corev1 "k8s.io/api/core/v1"

	"github.com/schedulerd/schedulerd/retention"
)

// Config is every setting of the daemon and its subcommands.
type Config struct {
	// DatabaseURL is the PostgreSQL connection URL (SCHEDULERD_DATABASE_URL).
	DatabaseURL string
	// HTTPAddr is where the admin API and /metrics listen (SCHEDULERD_HTTP_ADDR).
	HTTPAddr string
	// Kubeconfig is the kubeconfig file; empty means in-cluster (SCHEDULERD_KUBECONFIG).
	Kubeconfig string
	// KubeQPS and KubeBurst are the client-side rate limits of the Kubernetes client.
	// client-go's defaults (5 and 10) would cap pod creation at 5 per second.
	KubeQPS   float64
	KubeBurst int
	// PollInterval is how often the scheduler looks for queued jobs when no notification
	// wakes it earlier.
	PollInterval time.Duration
	// DequeueBatch is how many jobs one dequeue transaction admits at most.
	DequeueBatch int
	// UnschedulableTimeout is how long a pod may stay unschedulable before its job is
	// requeued and its reservation released.
	UnschedulableTimeout time.Duration
	// GPUWaitTimeout is how long in all a pod that lacks only GPUs that other pods use may
	// stay unschedulable before its run ends as preempted. See dispatcher.Config.
	GPUWaitTimeout time.Duration
	// ImagePullGrace is how long a container may wait with ErrImagePull, ImagePullBackOff,
	// CreateContainerError or a missing Secret, from the first such wait the dispatcher saw,
	// before its run fails. See dispatcher.Config.
	ImagePullGrace time.Duration
	// PodTolerations are added to every training pod, and the GPU capacity count judges
	// node taints with them (SCHEDULERD_POD_TOLERATIONS). See dispatcher.Config.
	PodTolerations []corev1.Toleration
	// LogLevel is debug, info, warn or error; LogFormat is json or text.
	LogLevel  slog.Level
	LogFormat string
	// MetricsRole is the least API token role that may read /metrics
	// (SCHEDULERD_METRICS_ROLE); empty serves /metrics without a token.
	MetricsRole string
	// ArtifactURIPrefix is the s3:// prefix of each project's artifacts, with "{project}"
	// for the project id (SCHEDULERD_ARTIFACT_URI_PREFIX). Empty allows any s3:// URI.
	// See api.Config.
	ArtifactURIPrefix string

	// LeaderElection turns on the Lease named schedulerd, so that only its holder runs the
	// scheduler and dispatcher (SCHEDULERD_LEADER_ELECTION). Off is for a single replica
	// only, because two replicas without it would both schedule and create pods.
	LeaderElection bool
	// LeaderElectionNamespace is the Lease's namespace (SCHEDULERD_LEADER_ELECTION_NAMESPACE).
	// Empty means the pod's own, or "default" outside a cluster.
	LeaderElectionNamespace string

	// CronLocation is the time zone of cron schedules without CRON_TZ= (SCHEDULERD_CRON_TZ).
	// Nil means UTC.
	CronLocation *time.Location
	// CronPartitions, CronRetention and CronBudgets are the schedules of the cron tasks,
	// each "off" to disable its task (SCHEDULERD_CRON_*).
	CronPartitions, CronRetention, CronBudgets string
	// PartitionMonthsAhead is the number of months after the current one that get jobs
	// partitions (SCHEDULERD_PARTITION_MONTHS_AHEAD).
	PartitionMonthsAhead int
	// S3 configures the S3 client of checkpoint retention and of eval reports
	// (SCHEDULERD_S3_*).
	S3 retention.S3Config
	// RetentionPolicy is the set of rules that keep checkpoints (SCHEDULERD_RETENTION_*
	// except SCHEDULERD_RETENTION_BATCH).
	RetentionPolicy retention.Policy
	// RetentionBatch is the number of objects per S3 DeleteObjects request
	// (SCHEDULERD_RETENTION_BATCH).
	RetentionBatch int

	// TemporalAddress is the host:port or gRPC target of a Temporal frontend
	// (SCHEDULERD_TEMPORAL_ADDRESS). Empty runs jobs without workflows.
	TemporalAddress string
	// TemporalNamespace is the Temporal namespace of the workflows
	// (SCHEDULERD_TEMPORAL_NAMESPACE).
	TemporalNamespace string

	// APIURL is the URL of the admin API that the CLI calls (SCHEDULERD_API_URL). Empty
	// means http:// and HTTPAddr. Load leaves it unchecked, and the CLI checks it at its
	// first request, so that -h and the checks of a command's arguments work with a bad one.
	APIURL string
	// Token is the API token that the CLI sends (SCHEDULERD_TOKEN).
	Token string
}

// setting is one configurable value: its flag name, its environment variable and how to
// parse it into the Config.
type setting struct {
	flag, env, usage, fallback string
	parse                      func(c *Config, value string) error
}

// coreSettings are the settings of the database, the Kubernetes client, scheduling,
// logging and the admin API.
var coreSettings = []setting{
	{"database-url", "SCHEDULERD_DATABASE_URL", "PostgreSQL URL, postgres://user@host:port/db", "",
		func(c *Config, v string) error { c.DatabaseURL = v; return validateDatabaseURL(v) }},
	{"http-addr", "SCHEDULERD_HTTP_ADDR", "host:port of the admin API and /metrics", "127.0.0.1:8080",
		func(c *Config, v string) error { c.HTTPAddr = v; return validateAddr(v) }},
	{"kubeconfig", "SCHEDULERD_KUBECONFIG", "kubeconfig file; empty uses the in-cluster service account", "",
		func(c *Config, v string) error { c.Kubeconfig = v; return nil }},
	{"kube-qps", "SCHEDULERD_KUBE_QPS", "Kubernetes client requests per second", "500",
		func(c *Config, v string) (err error) { c.KubeQPS, err = positiveFloat(v); return }},
	{"kube-burst", "SCHEDULERD_KUBE_BURST", "Kubernetes client burst of requests", "1000",
		func(c *Config, v string) (err error) { c.KubeBurst, err = positiveInt(v); return }},
	{"poll-interval", "SCHEDULERD_POLL_INTERVAL", "longest wait between two dequeues", "1s",
		func(c *Config, v string) (err error) { c.PollInterval, err = positiveDuration(v); return }},
	{"dequeue-batch", "SCHEDULERD_DEQUEUE_BATCH", "jobs admitted per dequeue transaction at most", "64",
		func(c *Config, v string) (err error) { c.DequeueBatch, err = positiveInt(v); return }},
	{"unschedulable-timeout", "SCHEDULERD_UNSCHEDULABLE_TIMEOUT",
		"time a pod may stay unschedulable before its run ends as preempted, counted (a pod that lacks only GPUs that other pods use waits on)", "5m",
		func(c *Config, v string) (err error) { c.UnschedulableTimeout, err = positiveDuration(v); return }},
	{"gpu-wait-timeout", "SCHEDULERD_GPU_WAIT_TIMEOUT",
		"time in all a pod that lacks only GPUs that other pods use may stay unschedulable before its run ends as preempted, counted", "1h",
		func(c *Config, v string) (err error) { c.GPUWaitTimeout, err = positiveDuration(v); return }},
	{"image-pull-grace", "SCHEDULERD_IMAGE_PULL_GRACE",
		"time a container may wait with ErrImagePull, ImagePullBackOff, CreateContainerError or a missing Secret, from its first such wait, before its run fails", "5m",
		func(c *Config, v string) (err error) { c.ImagePullGrace, err = positiveDuration(v); return }},
	{"pod-tolerations", "SCHEDULERD_POD_TOLERATIONS",
		"JSON array of Kubernetes tolerations that every training pod gets and the GPU capacity count applies, such as " +
			tolerationsExample, "",
		func(c *Config, v string) (err error) { c.PodTolerations, err = parseTolerations(v); return }},
	{"log-level", "SCHEDULERD_LOG_LEVEL", "debug, info, warn or error", "info",
		func(c *Config, v string) error {
			if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
				return fmt.Errorf("%q is not a log level: want debug, info, warn or error", v)
			}
			return nil
		}},
	{"log-format", "SCHEDULERD_LOG_FORMAT", "json or text", "json",
		func(c *Config, v string) error { c.LogFormat = v; return oneOf(v, "json", "text") }},
	{"metrics-role", "SCHEDULERD_METRICS_ROLE",
		"least API token role that may read /metrics (submitter, operator or admin); empty needs no token", "",
		func(c *Config, v string) error {
			c.MetricsRole = v
			if v != "" && oneOf(v, "submitter", "operator", "admin") != nil {
				return fmt.Errorf("want submitter, operator or admin, or empty to need no token; got %q", v)
			}
			return nil
		}},
	{"artifact-uri-prefix", "SCHEDULERD_ARTIFACT_URI_PREFIX",
		"s3:// prefix every artifact URI of a project must start with, {project} standing for its id; empty allows any", "",
		func(c *Config, v string) error { c.ArtifactURIPrefix = v; return validateArtifactPrefix(v) }},
}

// validateArtifactPrefix accepts an empty prefix or s3://BUCKET/... ending in "/" and
// containing {project}, so that one project's prefix never starts another's: with
// s3://b/{project} project "a" could store under s3://b/ab/, and without {project} every
// project would share one prefix.
func validateArtifactPrefix(v string) error {
	if v == "" {
		return nil
	}
	rest, ok := strings.CutPrefix(v, "s3://")
	bucket, _, found := strings.Cut(rest, "/")
	if !ok || !found || bucket == "" || !strings.HasSuffix(v, "/") {
		return fmt.Errorf("%q is not an s3://BUCKET/ prefix ending in /, such as s3://checkpoints/{project}/", v)
	}
	if !strings.Contains(v, "{project}") {
		return fmt.Errorf("%q has no {project}, so every project would share it; use a prefix such as "+
			"s3://checkpoints/{project}/", v)
	}
	return nil
}

// Load parses args (without the subcommand) over the environment read by getenv. The
// settings' flags may appear anywhere among args; every other argument, including the
// subcommand's own flags, is returned in order for the subcommand to parse. The error
// names the flag and variable of the first bad setting.
func Load(name string, args []string, getenv func(string) string, output io.Writer) (Config, []string, error) {
	return LoadOnly(name, nil, args, getenv, output)
}

// LoadOnly is Load for a command that reads only the settings whose flag names are in
// only, or every setting when only is nil. A help request lists only those settings. The
// other settings keep their zero values and are not checked, and their flags stay in the
// returned arguments, so that the command's own flag parsing rejects them.
func LoadOnly(name string, only, args []string, getenv func(string) string, output io.Writer) (Config, []string, error) {
	chosen, err := selectSettings(only)
	if err != nil {
		return Config{}, nil, err
	}
	values := make(map[string]string, len(chosen))
	for _, s := range chosen {
		values[s.flag] = s.fallback
		if env := getenv(s.env); env != "" {
			values[s.flag] = env
		}
	}

	rest, err := takeSettingFlags(args, values)
	if err != nil {
		return Config{}, nil, err
	}
	if wantsHelp(rest) {
		printSettings(name, chosen, values, output)
	}

	var c Config
	for _, s := range chosen {
		if err := s.parse(&c, values[s.flag]); err != nil {
			return Config{}, nil, fmt.Errorf("invalid -%s (env %s): %w", s.flag, s.env, err)
		}
	}
	return c, rest, nil
}

// SettingFlags returns the flag names of the settings named in only, or of all settings when
// only is nil, so that a command can suggest one for a mistyped flag.
func SettingFlags(only []string) ([]string, error) {
	chosen, err := selectSettings(only)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(chosen))
	for i, s := range chosen {
		names[i] = s.flag
	}
	return names, nil
}

// selectSettings returns the settings named in only, in the order of settings, or all of
// them when only is nil.
func selectSettings(only []string) ([]setting, error) {
	if only == nil {
		return settings, nil
	}
	var chosen []setting
	for _, s := range settings {
		if slices.Contains(only, s.flag) {
			chosen = append(chosen, s)
		}
	}
	if len(chosen) != len(only) {
		return nil, fmt.Errorf("unknown setting name in %q: want flag names such as database-url", only)
	}
	return chosen, nil
}

// takeSettingFlags moves the values of setting flags (-name value, -name=value, with one or
// two dashes) from args into values and returns the other arguments.
func takeSettingFlags(args []string, values map[string]string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(rest, args[i:]...), nil
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if _, known := values[name]; !known || !strings.HasPrefix(arg, "-") {
			rest = append(rest, arg)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag -%s needs a value", name)
			}
			i++
			value = args[i]
		}
		values[name] = value
	}
	return rest, nil
}

func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

func printSettings(name string, chosen []setting, values map[string]string, w io.Writer) {
	fmt.Fprintf(w, "Settings of %s (flag, environment variable, current value):\n", name)
	for _, s := range chosen {
		value := values[s.flag]
		switch {
		case s.flag == "database-url":
			value = redactPassword(value)
		case s.flag == "token" && value != "":
			value = "REDACTED"
		}
		fmt.Fprintf(w, "  -%s (env %s) = %q\n      %s\n", s.flag, s.env, value, s.usage)
	}
}

// RequireDatabase reports the missing database URL in the words a user needs.
func (c Config) RequireDatabase() error {
	if c.DatabaseURL == "" {
		return errors.New("no database configured: set SCHEDULERD_DATABASE_URL or -database-url")
	}
	return nil
}

func validateDatabaseURL(v string) error {
	if v == "" {
		return nil
	}
	if !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
		return errors.New("must start with postgres:// or postgresql://")
	}
	if _, err := pgx.ParseConfig(v); err != nil {
		return fmt.Errorf("cannot parse the URL: %s", pgErrorText(err))
	}
	return nil
}

// redactPassword hides the passwords of a database URL for help text: the userinfo
// password and the password and sslpassword query parameters, which pgx also reads. A
// keyword/value string that names a password is hidden whole, because its quoting rules
// make the end of the password hard to find.
func redactPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		if strings.Contains(strings.ToLower(raw), "password") {
			return "REDACTED"
		}
		return raw
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	query := u.Query()
	redacted := false
	for name := range query {
		if strings.EqualFold(name, "password") || strings.EqualFold(name, "sslpassword") {
			query[name] = []string{"REDACTED"}
			redacted = true
		}
	}
	if redacted {
		u.RawQuery = query.Encode()
	}
	return u.String()
}

// pgErrorText returns the cause of a pgx parse error without the URL itself, which may
// contain a password.
func pgErrorText(err error) string {
	var parseErr *pgconn.ParseConfigError
	if errors.As(err, &parseErr) {
		// Error() quotes ConnString in backticks before the cause; a copy without it
		// leaves only the cause and the error it wraps.
		bare := *parseErr
		bare.ConnString = ""
		return strings.TrimPrefix(bare.Error(), "cannot parse ``: ")
	}
	text := err.Error()
	if i := strings.LastIndex(text, ": "); i >= 0 {
		return text[i+2:]
	}
	return text
}

// validateAddr checks a listen address: host:port, with a port from 0 to 65535 or a service
// name listed in the system's services database. A bad port therefore fails the settings
// check, before the database connection.
func validateAddr(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("want host:port with a port from 0 to 65535, got port %q", port)
	}
	return nil
}

func positiveFloat(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0) || math.IsInf(f, 1) {
		return 0, fmt.Errorf("want a positive number, got %q", v)
	}
	return f, nil
}

func positiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive integer, got %q", v)
	}
	return n, nil
}

func positiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration such as 500ms or 2m, got %q", v)
	}
	return d, nil
}

func oneOf(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("want one of %s, got %q", strings.Join(allowed, ", "), v)
}
