package config

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/retention"
)

func env(values map[string]string) func(string) string {
	return func(k string) string { return values[k] }
}

func TestLoadDefaults(t *testing.T) {
	c, rest, err := Load("run", []string{"extra"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.PollInterval != time.Second || c.KubeQPS != 500 {
		t.Errorf("defaults %+v", c)
	}
	if c.ImagePullGrace != 5*time.Minute {
		t.Errorf("image pull grace %v, want 5m", c.ImagePullGrace)
	}
	if c.GPUWaitTimeout != time.Hour {
		t.Errorf("GPU wait timeout %v, want 1h", c.GPUWaitTimeout)
	}
	if len(rest) != 1 || rest[0] != "extra" {
		t.Errorf("remaining args %v, want [extra]", rest)
	}
}

func TestFlagOverridesEnvironment(t *testing.T) {
	c, _, err := Load("run", []string{"-poll-interval", "250ms"},
		env(map[string]string{"SCHEDULERD_POLL_INTERVAL": "5s", "SCHEDULERD_DEQUEUE_BATCH": "8"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.PollInterval != 250*time.Millisecond {
		t.Errorf("poll interval %v, want 250ms from the flag", c.PollInterval)
	}
	if c.DequeueBatch != 8 {
		t.Errorf("dequeue batch %d, want 8 from the environment", c.DequeueBatch)
	}
}

func TestLoadImagePullGrace(t *testing.T) {
	c, _, err := Load("run", []string{"-image-pull-grace", "90s"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.ImagePullGrace != 90*time.Second {
		t.Errorf("image pull grace %v, want 90s from the flag", c.ImagePullGrace)
	}
}

func TestLoadGPUWaitTimeout(t *testing.T) {
	c, _, err := Load("run", []string{"-gpu-wait-timeout", "45m"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.GPUWaitTimeout != 45*time.Minute {
		t.Errorf("GPU wait timeout %v, want 45m from the flag", c.GPUWaitTimeout)
	}
}

func TestLoadNamesBadSetting(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SCHEDULERD_DATABASE_URL": "mysql://x"}, "invalid -database-url (env SCHEDULERD_DATABASE_URL): must start with postgres://"},
		{map[string]string{"SCHEDULERD_DATABASE_URL": "postgres://u:secret@host:notaport/db"}, "invalid -database-url (env SCHEDULERD_DATABASE_URL): cannot parse the URL"},
		{map[string]string{"SCHEDULERD_POLL_INTERVAL": "-1s"}, "invalid -poll-interval (env SCHEDULERD_POLL_INTERVAL): want a positive duration"},
		{map[string]string{"SCHEDULERD_IMAGE_PULL_GRACE": "0s"}, "invalid -image-pull-grace (env SCHEDULERD_IMAGE_PULL_GRACE): want a positive duration"},
		{map[string]string{"SCHEDULERD_GPU_WAIT_TIMEOUT": "-5m"}, "invalid -gpu-wait-timeout (env SCHEDULERD_GPU_WAIT_TIMEOUT): want a positive duration"},
		{map[string]string{"SCHEDULERD_KUBE_QPS": "zero"}, "invalid -kube-qps (env SCHEDULERD_KUBE_QPS): want a positive number"},
		{map[string]string{"SCHEDULERD_KUBE_QPS": "NaN"}, "invalid -kube-qps (env SCHEDULERD_KUBE_QPS): want a positive number"},
		{map[string]string{"SCHEDULERD_HTTP_ADDR": "8080"}, "invalid -http-addr (env SCHEDULERD_HTTP_ADDR): want host:port"},
		{map[string]string{"SCHEDULERD_HTTP_ADDR": "0.0.0.0:99999"}, `invalid -http-addr (env SCHEDULERD_HTTP_ADDR): want host:port with a port from 0 to 65535, got port "99999"`},
		{map[string]string{"SCHEDULERD_HTTP_ADDR": "127.0.0.1:-1"}, `invalid -http-addr (env SCHEDULERD_HTTP_ADDR): want host:port with a port from 0 to 65535, got port "-1"`},
		{map[string]string{"SCHEDULERD_LOG_LEVEL": "verbose"}, `invalid -log-level (env SCHEDULERD_LOG_LEVEL): "verbose" is not a log level: want debug, info, warn or error`},
		{map[string]string{"SCHEDULERD_LOG_FORMAT": "xml"}, `invalid -log-format (env SCHEDULERD_LOG_FORMAT): want one of json, text, got "xml"`},
		{map[string]string{"SCHEDULERD_METRICS_ROLE": "root"}, `invalid -metrics-role (env SCHEDULERD_METRICS_ROLE): want submitter, operator or admin, or empty to need no token; got "root"`},
		{map[string]string{"SCHEDULERD_ARTIFACT_URI_PREFIX": "s3://ckpt/{project}"}, `invalid -artifact-uri-prefix (env SCHEDULERD_ARTIFACT_URI_PREFIX): "s3://ckpt/{project}" is not an s3://BUCKET/ prefix ending in /`},
		{map[string]string{"SCHEDULERD_ARTIFACT_URI_PREFIX": "gs://ckpt/"}, `invalid -artifact-uri-prefix (env SCHEDULERD_ARTIFACT_URI_PREFIX): "gs://ckpt/" is not`},
		{map[string]string{"SCHEDULERD_ARTIFACT_URI_PREFIX": "s3:///x/"}, `invalid -artifact-uri-prefix (env SCHEDULERD_ARTIFACT_URI_PREFIX): "s3:///x/" is not`},
		{map[string]string{"SCHEDULERD_ARTIFACT_URI_PREFIX": "s3://ckpt/shared/"}, `invalid -artifact-uri-prefix (env SCHEDULERD_ARTIFACT_URI_PREFIX): "s3://ckpt/shared/" has no {project}`},
	}
	for _, c := range cases {
		_, _, err := Load("run", nil, env(c.env), io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("env %v: error %v, want prefix %q", c.env, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error %q leaks the password", err)
		}
	}
}

func TestLoadArtifactPrefix(t *testing.T) {
	c, _, err := Load("run", nil, env(map[string]string{"SCHEDULERD_DATABASE_URL": "postgres://h/db",
		"SCHEDULERD_ARTIFACT_URI_PREFIX": "s3://ckpt/{project}/"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.ArtifactURIPrefix != "s3://ckpt/{project}/" {
		t.Errorf("ArtifactURIPrefix %q, want s3://ckpt/{project}/", c.ArtifactURIPrefix)
	}
}

func TestLoadLeavesOtherFlags(t *testing.T) {
	c, rest, err := Load("replay", []string{"-trace-dir", "/t", "--poll-interval=2s", "-limit", "5", "-dequeue-batch", "4"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.PollInterval != 2*time.Second || c.DequeueBatch != 4 {
		t.Errorf("poll interval %v, batch %d; want 2s and 4", c.PollInterval, c.DequeueBatch)
	}
	want := []string{"-trace-dir", "/t", "-limit", "5"}
	if strings.Join(rest, " ") != strings.Join(want, " ") {
		t.Errorf("remaining args %q, want %q", rest, want)
	}
}

func TestLoadFlagWithoutValue(t *testing.T) {
	_, _, err := Load("run", []string{"-poll-interval"}, env(nil), io.Discard)
	if err == nil || err.Error() != "flag -poll-interval needs a value" {
		t.Errorf("error %v, want: flag -poll-interval needs a value", err)
	}
}

func TestHelpRedactsPassword(t *testing.T) {
	var out strings.Builder
	_, _, err := Load("run", []string{"-h"},
		env(map[string]string{"SCHEDULERD_DATABASE_URL": "postgres://u:s3cret@127.0.0.1:5432/db"}), &out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "s3cret") || !strings.Contains(out.String(), "REDACTED") {
		t.Errorf("help text shows the password or no redaction:\n%s", out.String())
	}
}

// LoadOnly reads and lists only the settings it is given. The other settings' flags stay
// for the command to reject, and a bad value of another setting in the environment is not
// checked.
func TestLoadOnlyChosenSettings(t *testing.T) {
	var help strings.Builder
	c, rest, err := LoadOnly("token list", []string{"database-url"},
		[]string{"-database-url", "postgres://127.0.0.1/db", "-http-addr", "127.0.0.1:1", "-h"},
		env(map[string]string{"SCHEDULERD_KUBE_QPS": "zero", "SCHEDULERD_LOG_FORMAT": "xml"}), &help)
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://127.0.0.1/db" {
		t.Errorf("database URL %q, want the flag's", c.DatabaseURL)
	}
	if c.HTTPAddr != "" {
		t.Errorf("HTTP address %q, want it unread", c.HTTPAddr)
	}
	want := []string{"-http-addr", "127.0.0.1:1", "-h"}
	if strings.Join(rest, " ") != strings.Join(want, " ") {
		t.Errorf("remaining args %q, want %q", rest, want)
	}
	if !strings.Contains(help.String(), "-database-url (env SCHEDULERD_DATABASE_URL)") {
		t.Errorf("help text lacks the database URL:\n%s", help.String())
	}
	if n := strings.Count(help.String(), "(env SCHEDULERD_"); n != 1 {
		t.Errorf("help text lists %d settings, want 1:\n%s", n, help.String())
	}
}

func TestLoadOnlyUnknownSetting(t *testing.T) {
	_, _, err := LoadOnly("token", []string{"database-uri"}, nil, env(nil), io.Discard)
	want := `unknown setting name in ["database-uri"]: want flag names such as database-url`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestHelpRedactsQueryPassword(t *testing.T) {
	cases := map[string]string{
		"postgres://u@127.0.0.1/db?password=s3cret&sslmode=disable": "postgres://u@127.0.0.1/db?password=REDACTED&sslmode=disable",
		"postgres://u:s3cret@127.0.0.1/db?sslpassword=s3cret":       "postgres://u:REDACTED@127.0.0.1/db?sslpassword=REDACTED",
		"host=127.0.0.1 password=s3cret":                            "REDACTED",
		"postgres://u@127.0.0.1/db?sslmode=disable":                 "postgres://u@127.0.0.1/db?sslmode=disable",
	}
	for raw, want := range cases {
		var out strings.Builder
		_, _, _ = Load("run", []string{"-h"}, env(map[string]string{"SCHEDULERD_DATABASE_URL": raw}), &out)
		if strings.Contains(out.String(), "s3cret") {
			t.Errorf("help for %q shows the password:\n%s", raw, out.String())
		}
		if !strings.Contains(out.String(), `= "`+want+`"`) {
			t.Errorf("help for %q does not show %q:\n%s", raw, want, out.String())
		}
	}
}

func TestLoadNamesURLCause(t *testing.T) {
	_, _, err := Load("run", nil, env(map[string]string{
		"SCHEDULERD_DATABASE_URL": "postgres://u:s3cret@h/db?connect_timeout=soon"}), io.Discard)
	want := `invalid -database-url (env SCHEDULERD_DATABASE_URL): cannot parse the URL: ` +
		`invalid connect_timeout (strconv.ParseInt: parsing "soon": invalid syntax)`
	if err == nil || err.Error() != want {
		t.Errorf("error %v,\nwant %s", err, want)
	}
}

// Each setting that was once read from the environment only is now a flag too, and the
// flag wins over the variable.
func TestServiceSettingFlagWins(t *testing.T) {
	cases := []struct {
		flag, env, envValue, flagValue string
		got                            func(Config) any
		want                           any
	}{
		{"leader-election", "SCHEDULERD_LEADER_ELECTION", "true", "false",
			func(c Config) any { return c.LeaderElection }, false},
		{"leader-election-namespace", "SCHEDULERD_LEADER_ELECTION_NAMESPACE", "env-ns", "flag-ns",
			func(c Config) any { return c.LeaderElectionNamespace }, "flag-ns"},
		{"cron-tz", "SCHEDULERD_CRON_TZ", "Asia/Tokyo", "Europe/Paris",
			func(c Config) any { return c.CronLocation.String() }, "Europe/Paris"},
		{"cron-partitions", "SCHEDULERD_CRON_PARTITIONS", "0 1 * * *", "off",
			func(c Config) any { return c.CronPartitions }, "off"},
		{"cron-retention", "SCHEDULERD_CRON_RETENTION", "0 1 * * *", "@every 6h",
			func(c Config) any { return c.CronRetention }, "@every 6h"},
		{"cron-budgets", "SCHEDULERD_CRON_BUDGETS", "off", "CRON_TZ=Asia/Tokyo 0 9 * * *",
			func(c Config) any { return c.CronBudgets }, "CRON_TZ=Asia/Tokyo 0 9 * * *"},
		{"partition-months-ahead", "SCHEDULERD_PARTITION_MONTHS_AHEAD", "2", "6",
			func(c Config) any { return c.PartitionMonthsAhead }, 6},
		{"s3-endpoint", "SCHEDULERD_S3_ENDPOINT", "http://127.0.0.1:1", "http://127.0.0.1:7070",
			func(c Config) any { return c.S3.Endpoint }, "http://127.0.0.1:7070"},
		{"s3-region", "SCHEDULERD_S3_REGION", "us-east-1", "eu-west-3",
			func(c Config) any { return c.S3.Region }, "eu-west-3"},
		{"s3-path-style", "SCHEDULERD_S3_PATH_STYLE", "false", "true",
			func(c Config) any { return c.S3.PathStyle }, true},
		{"retention-keep-latest", "SCHEDULERD_RETENTION_KEEP_LATEST", "5", "0",
			func(c Config) any { return c.RetentionPolicy.KeepLatest }, 0},
		{"retention-best-metric", "SCHEDULERD_RETENTION_BEST_METRIC", "loss", "accuracy",
			func(c Config) any { return c.RetentionPolicy.BestMetric }, "accuracy"},
		{"retention-best-direction", "SCHEDULERD_RETENTION_BEST_DIRECTION", "min", "max",
			func(c Config) any { return string(c.RetentionPolicy.BestDirection) }, "max"},
		{"retention-min-age", "SCHEDULERD_RETENTION_MIN_AGE", "1h", "0s",
			func(c Config) any { return c.RetentionPolicy.MinAge }, time.Duration(0)},
		{"retention-batch", "SCHEDULERD_RETENTION_BATCH", "10", "250",
			func(c Config) any { return c.RetentionBatch }, 250},
		{"temporal-address", "SCHEDULERD_TEMPORAL_ADDRESS", "127.0.0.1:1", "127.0.0.1:7233",
			func(c Config) any { return c.TemporalAddress }, "127.0.0.1:7233"},
		{"temporal-namespace", "SCHEDULERD_TEMPORAL_NAMESPACE", "env-ns", "training",
			func(c Config) any { return c.TemporalNamespace }, "training"},
		{"api-url", "SCHEDULERD_API_URL", "http://127.0.0.1:1", "http://127.0.0.1:8081",
			func(c Config) any { return c.APIURL }, "http://127.0.0.1:8081"},
		{"token", "SCHEDULERD_TOKEN", "sdt_env", "sdt_flag",
			func(c Config) any { return c.Token }, "sdt_flag"},
	}
	for _, c := range cases {
		t.Run(c.flag, func(t *testing.T) {
			getenv := env(map[string]string{c.env: c.envValue})
			fromFlag, rest, err := Load("run", []string{"-" + c.flag, c.flagValue}, getenv, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.got(fromFlag); got != c.want {
				t.Errorf("-%s %q over %s=%q: got %v, want %v", c.flag, c.flagValue, c.env, c.envValue, got, c.want)
			}
			if len(rest) != 0 {
				t.Errorf("remaining args %q, want none", rest)
			}

			fromEnv, _, err := Load("run", nil, getenv, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.got(fromEnv); got == c.want {
				t.Errorf("%s=%q alone: got %v, the flag's value", c.env, c.envValue, got)
			}
		})
	}
}

func TestServiceSettingDefaults(t *testing.T) {
	c, _, err := Load("run", nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.LeaderElection {
		t.Error("leader election off, want on by default")
	}
	if c.CronLocation != nil {
		t.Errorf("cron time zone %v, want nil (UTC)", c.CronLocation)
	}
	if c.CronPartitions != "17 2 * * *" || c.CronRetention != "40 3 * * *" || c.CronBudgets != "5 * * * *" {
		t.Errorf("schedules %q, %q, %q; want the tasks' defaults", c.CronPartitions, c.CronRetention, c.CronBudgets)
	}
	if c.PartitionMonthsAhead != 3 {
		t.Errorf("months ahead %d, want 3", c.PartitionMonthsAhead)
	}
	if c.S3.PathStyle {
		t.Error("S3 path style on, want off by default")
	}
	want := retention.Policy{KeepLatest: 3, BestDirection: retention.Min, MinAge: 168 * time.Hour}
	if c.RetentionPolicy != want {
		t.Errorf("retention policy %+v, want %+v", c.RetentionPolicy, want)
	}
	if c.RetentionBatch != 1000 {
		t.Errorf("retention batch %d, want 1000", c.RetentionBatch)
	}
	if c.TemporalAddress != "" || c.TemporalNamespace != "default" {
		t.Errorf("Temporal %q in namespace %q, want none in default", c.TemporalAddress, c.TemporalNamespace)
	}
}

func TestLoadNamesBadServiceSetting(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-leader-election", "maybe"},
			`invalid -leader-election (env SCHEDULERD_LEADER_ELECTION): want true or false, got "maybe"`},
		{[]string{"-cron-tz", "Mars/Olympus"},
			"invalid -cron-tz (env SCHEDULERD_CRON_TZ): unknown time zone Mars/Olympus; want an IANA time zone name"},
		{[]string{"-cron-partitions", "61 * * * *"},
			`invalid -cron-partitions (env SCHEDULERD_CRON_PARTITIONS): parse cron expression "61 * * * *"`},
		{[]string{"-cron-retention", "@fortnightly"},
			`invalid -cron-retention (env SCHEDULERD_CRON_RETENTION): parse cron expression "@fortnightly"`},
		{[]string{"-cron-budgets", "CRON_TZ=Nowhere/City 5 * * * *"},
			`invalid -cron-budgets (env SCHEDULERD_CRON_BUDGETS): parse cron expression "CRON_TZ=Nowhere/City 5 * * * *": ` +
				`unknown time zone "Nowhere/City"`},
		{[]string{"-partition-months-ahead", "0"},
			`invalid -partition-months-ahead (env SCHEDULERD_PARTITION_MONTHS_AHEAD): want 1 to 120`},
		{[]string{"-s3-path-style", "yes"},
			`invalid -s3-path-style (env SCHEDULERD_S3_PATH_STYLE): want true or false, got "yes"`},
		{[]string{"-retention-keep-latest", "-1"},
			`invalid -retention-keep-latest (env SCHEDULERD_RETENTION_KEEP_LATEST): want an integer from 0 up, got "-1"`},
		{[]string{"-retention-best-direction", "up"},
			`invalid -retention-best-direction (env SCHEDULERD_RETENTION_BEST_DIRECTION): want one of min, max, got "up"`},
		{[]string{"-retention-min-age", "a week"},
			`invalid -retention-min-age (env SCHEDULERD_RETENTION_MIN_AGE): want a duration from 0 up, such as 168h, got "a week"`},
		{[]string{"-retention-batch", "1001"},
			`invalid -retention-batch (env SCHEDULERD_RETENTION_BATCH): want 1 to 1000 objects per DeleteObjects request`},
		{[]string{"-temporal-address", "temporal"},
			`invalid -temporal-address (env SCHEDULERD_TEMPORAL_ADDRESS): want host:port`},
		{[]string{"-temporal-address", ":///temporal:7233"},
			`invalid -temporal-address (env SCHEDULERD_TEMPORAL_ADDRESS): want host:port`},
	}
	for _, c := range cases {
		_, _, err := Load("run", c.args, env(nil), io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: error %v, want prefix %q", c.args, err, c.want)
		}
	}
}

func TestHelpRedactsToken(t *testing.T) {
	var out strings.Builder
	_, _, err := LoadOnly("job", Flags(APIClient), []string{"-h"},
		env(map[string]string{"SCHEDULERD_TOKEN": "sdt_s3cret"}), &out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Errorf("help text shows the token:\n%s", out.String())
	}
	if !strings.Contains(out.String(), `-token (env SCHEDULERD_TOKEN) = "REDACTED"`) {
		t.Errorf("help text lacks the redacted token:\n%s", out.String())
	}
}

// A flag or variable named twice would be taken by the first setting only.
func TestSettingNames(t *testing.T) {
	flags := map[string]bool{}
	variables := map[string]bool{}
	for _, s := range settings {
		if flags[s.flag] {
			t.Errorf("flag -%s is named twice", s.flag)
		}
		if variables[s.env] {
			t.Errorf("variable %s is named twice", s.env)
		}
		flags[s.flag], variables[s.env] = true, true
		// The README derives each flag's name from its variable's in this way.
		if want := "SCHEDULERD_" + strings.ToUpper(strings.ReplaceAll(s.flag, "-", "_")); s.env != want {
			t.Errorf("flag -%s has the variable %s, want %s", s.flag, s.env, want)
		}
	}
	if got := Flags(APIClient); strings.Join(got, " ") != "api-url token" {
		t.Errorf("API client flags %q, want [api-url token]", got)
	}
}

// The Temporal SDK dials a gRPC target as well as host:port.
func TestLoadTemporalGRPCTarget(t *testing.T) {
	c, _, err := Load("run", []string{"-temporal-address", "dns:///temporal-frontend:7233"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.TemporalAddress != "dns:///temporal-frontend:7233" {
		t.Errorf("Temporal address %q, want dns:///temporal-frontend:7233", c.TemporalAddress)
	}
}
