// Command schedulerd is the GPU training-job scheduler daemon and its tools. It only wires
// packages together: each subcommand reads the configuration once, builds the parts it needs
// and runs them until done or until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/schedulerd/schedulerd/config"
)

// command is one subcommand: run gets the configuration and the arguments after the flags.
type command struct {
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
}

// environment is what every subcommand receives.
type environment struct {
	cfg    config.Config
	getenv func(string) string
	log    *slog.Logger
	stdout io.Writer
	stderr io.Writer
	// abort ends at the second SIGINT or SIGTERM, while the command's context ends at the
	// first. A command that still works after the first, as the replay does while it
	// writes a partial report, stops that work when abort ends. Nil means never.
	abort context.Context
}

var commands = map[string]command{
	"migrate":  {"migrate up | down [-to VERSION] | status: manage the database schema", runMigrate},
	"cron":     {"cron run partitions|retention|budgets [-dry-run]: run a maintenance task once, now", runCron},
	"run":      {"run the scheduler, dispatcher and admin API until SIGTERM", runDaemon},
	"report":   {"report [-from DATE] [-to DATE]: GPU-hours by org and project", runReport},
	"replay":   {"replay -trace-dir DIR [-limit N] [-mode paced|fill]: replay a GPU trace through a running schedulerd", runReplay},
	"job":      {"job submit|get|list|cancel|pause|resume|priority|explain: manage jobs through the API", runJob},
	"queue":    {"queue list|drain|undrain|reprioritize: manage project queues through the API", runQueue},
	"quota":    {"quota get|set PROJECT: read or change a project's quota through the API", runQuota},
	"project":  {"project create|update|get|list: manage projects through the API", runProject},
	"approval": {"approval list|get|request|approve|reject: request and decide model version promotions through the API", runApproval},
	"artifact": {"artifact record [RUN_ID]: report an object a run wrote to storage through the API", runArtifact},
	"model":    {"model versions|get|lineage: read registered model versions through the API", runModel},
	"token":    {"token create|list|revoke: manage API tokens in the database directly", runToken},
}

// apiSettings are the settings of the commands that call the API: its URL and token, and
// the address that the URL defaults to. A daemon setting they never use, such as a
// database URL, therefore cannot stop them.
var apiSettings = append([]string{"http-addr"}, config.Flags(config.APIClient)...)

// commandSettings lists, by flag name, the settings that each command reads. Its -h lists
// only these, and it rejects the flags of the others.
var commandSettings = map[string][]string{
	"run": config.Flags(config.Core, config.LeaderElection, config.Cron, config.Temporal),
	// cron runs one task by hand, with neither a Lease nor workflows.
	"cron":    config.Flags(config.Core, config.Cron),
	"migrate": config.Flags(config.Core),
	"report":  config.Flags(config.Core),
	"replay":  config.Flags(config.Core),
	// token works on the api_tokens table directly and starts nothing.
	"token":    {"database-url"},
	"job":      apiSettings,
	"queue":    apiSettings,
	"quota":    apiSettings,
	"project":  apiSettings,
	"approval": apiSettings,
	"artifact": apiSettings,
	"model":    apiSettings,
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// realMain returns the exit code: 0 on success and after a help request, 1 when the
// command failed, 2 on bad usage or configuration. Every failure is one line on stderr.
func realMain(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "help" || isHelp(args[0]) {
		usage(stderr)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "schedulerd: unknown command '%s'%s; run 'schedulerd help' for the list\n",
			args[0], commandHint(args[0]))
		return 2
	}

	cfg, rest, err := config.LoadOnly("schedulerd "+args[0], commandSettings[args[0]], args[1:], getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "schedulerd: %v\n", err)
		return 2
	}

	// Two slots, so that a second signal that comes before the goroutine of notifyStops
	// has taken the first is not dropped.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	ctx, abort, release := notifyStops(context.Background(), signals)
	defer release()
	env := &environment{cfg: cfg, getenv: getenv, log: newLogger(cfg, stderr), stdout: stdout, stderr: stderr,
		abort: abort}
	if err := cmd.run(ctx, env, rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // the command has printed its flags, after the settings
		}
		var help helpText
		if errors.As(err, &help) {
			fmt.Fprintln(stderr, help.text)
			return 0
		}
		fmt.Fprintf(stderr, "schedulerd %s: %s\n", args[0], oneLine(err))
		var usageErr usageError
		if errors.As(err, &usageErr) {
			return 2
		}
		return 1
	}
	return 0
}

// notifyStops returns stop, which the first signal received on signals ends, and abort,
// which the second ends. Abort ending also ends stop. Each cause names the signal, in the
// words of signal.NotifyContext, so that a command can report why it stopped. release ends
// both contexts and the goroutine that receives the signals.
func notifyStops(parent context.Context, signals <-chan os.Signal) (stop, abort context.Context, release func()) {
	abort, cancelAbort := context.WithCancelCause(parent)
	stop, cancelStop := context.WithCancelCause(abort)
	go func() {
		select {
		case sig := <-signals:
			cancelStop(fmt.Errorf("%v signal received", sig))
		case <-stop.Done():
			return
		}
		select {
		case sig := <-signals:
			cancelAbort(fmt.Errorf("second %v signal received", sig))
		case <-abort.Done():
		}
	}()
	return stop, abort, func() { cancelAbort(nil) }
}

// usageError marks a bad command line, so that realMain exits 2 rather than 1.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// helpText is the usage line of a command's subcommands. A command returns it for -h in
// place of a subcommand, such as `job -h`, and realMain prints it and exits 0.
type helpText struct{ text string }

func (h helpText) Error() string { return h.text }

// isHelp reports whether arg is a help flag.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

// flagError converts a flag parsing error. flag.ErrHelp (after -h) stays as it is, so that
// realMain exits 0, and any other error becomes a usage error. Commands parse their flags
// before they check the database URL or API token, so that -h works without them.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err.Error()}
}

// oneLine folds a multi-line error, such as pgx's list of connection attempts, into one
// line, so that every failure is one line in logs. A line that repeats an earlier one is
// left out, because pgx lists the same failure twice when it tries TLS and then plain text
// (sslmode=prefer, its default).
func oneLine(err error) string {
	var b strings.Builder
	var seen []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.Join(strings.Fields(line), " ")
		if line == "" || slices.Contains(seen, line) {
			continue
		}
		switch {
		case b.Len() == 0:
		case strings.HasSuffix(b.String(), ":"):
			b.WriteString(" ")
		default:
			b.WriteString("; ")
		}
		b.WriteString(line)
		seen = append(seen, line)
	}
	return b.String()
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: schedulerd COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(w, "\nEvery flag can also be set by its SCHEDULERD_* variable; 'schedulerd COMMAND -h' lists them.")
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	opts.ReplaceAttr = durationAsText
	return slog.New(slog.NewJSONHandler(w, opts))
}

// durationAsText writes a duration as Go's duration text ("1.5s"), as the text format does.
// The JSON format would write integer nanoseconds, which read as a count in a log viewer.
func durationAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
