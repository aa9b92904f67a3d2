package config

import (
	"io"
	"strings"
	"testing"
	"time"
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

func TestLoadNamesBadSetting(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SCHEDULERD_DATABASE_URL": "mysql://x"}, "invalid -database-url (env SCHEDULERD_DATABASE_URL): must start with postgres://"},
		{map[string]string{"SCHEDULERD_DATABASE_URL": "postgres://u:secret@host:notaport/db"}, "invalid -database-url (env SCHEDULERD_DATABASE_URL): cannot parse the URL"},
		{map[string]string{"SCHEDULERD_POLL_INTERVAL": "-1s"}, "invalid -poll-interval (env SCHEDULERD_POLL_INTERVAL): want a positive duration"},
		{map[string]string{"SCHEDULERD_IMAGE_PULL_GRACE": "0s"}, "invalid -image-pull-grace (env SCHEDULERD_IMAGE_PULL_GRACE): want a positive duration"},
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
