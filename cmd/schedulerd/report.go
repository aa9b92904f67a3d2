package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/schedulerd/schedulerd/accounting"
)

// runReport prints GPU-hours by org and project for runs that started in a period, by
// default the current month in UTC.
func runReport(ctx context.Context, env *environment, args []string) error {
	now := time.Now().UTC()
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)

	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	from := fs.String("from", monthStart.Format(time.DateOnly), "first day of the period (YYYY-MM-DD, UTC)")
	to := fs.String("to", monthStart.AddDate(0, 1, 0).Format(time.DateOnly),
		"first day not included in the period (YYYY-MM-DD, UTC)")
	output := fs.String("o", "table", "output format: table or json")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	start, err := time.Parse(time.DateOnly, *from)
	if err != nil {
		return usageError{fmt.Sprintf("invalid -from %q: want YYYY-MM-DD", *from)}
	}
	end, err := time.Parse(time.DateOnly, *to)
	if err != nil {
		return usageError{fmt.Sprintf("invalid -to %q: want YYYY-MM-DD", *to)}
	}
	if err := checkPeriod(start, end); err != nil {
		return err
	}
	if *output != "table" && *output != "json" {
		return usageError{fmt.Sprintf("invalid -o %q: want table or json", *output)}
	}

	db, err := openStore(ctx, env, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	lines, err := accounting.Report(ctx, db, start, end)
	if err != nil {
		return err
	}
	if *output == "json" {
		return json.NewEncoder(env.stdout).Encode(lines)
	}
	return accounting.WriteReport(env.stdout, lines)
}

// checkPeriod rejects a period whose end is not after its start. -to is the first day not
// included, as in the default period (the 1st of this month to the 1st of the next). A
// user who gives the same day twice for a one-day report gets the command for that day.
func checkPeriod(start, end time.Time) error {
	if end.After(start) {
		return nil
	}
	from, to := start.Format(time.DateOnly), end.Format(time.DateOnly)
	msg := fmt.Sprintf("invalid period: -to is the first day not included, so -to %s must be after -from %s", to, from)
	if end.Equal(start) {
		msg += fmt.Sprintf("; for %s alone, run 'schedulerd report -from %s -to %s'",
			from, from, start.AddDate(0, 0, 1).Format(time.DateOnly))
	}
	return usageError{msg}
}
