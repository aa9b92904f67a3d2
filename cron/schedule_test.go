package cron_test

import (
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/cron"
)

func mustLocation(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v", name, err)
	}
	return loc
}

// firings returns every firing of spec in [from, to), found by calling Next on fake times.
func firings(t *testing.T, spec string, loc *time.Location, from, to time.Time) []time.Time {
	t.Helper()
	schedule, err := cron.ParseSchedule(spec, loc)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for next := schedule.Next(from.Add(-time.Second)); next.Before(to); next = schedule.Next(next) {
		if next.IsZero() {
			t.Fatalf("%s: Next returned the zero time after %v", spec, out)
		}
		out = append(out, next)
	}
	return out
}

func TestScheduleDaylightSavingDays(t *testing.T) {
	ny := mustLocation(t, "America/New_York")
	cases := []struct {
		name string
		spec string
		day  time.Time // local midnight of a day when clocks change
		want string    // the one firing of that day, local time with offset
	}{
		{"spring skipped hour", "30 2 * * *", time.Date(2026, 3, 8, 0, 0, 0, 0, ny), "2026-03-08T03:30:00-04:00"},
		{"spring after change", "30 3 * * *", time.Date(2026, 3, 8, 0, 0, 0, 0, ny), "2026-03-08T03:30:00-04:00"},
		{"spring before change", "30 1 * * *", time.Date(2026, 3, 8, 0, 0, 0, 0, ny), "2026-03-08T01:30:00-05:00"},
		{"autumn repeated hour", "30 1 * * *", time.Date(2026, 11, 1, 0, 0, 0, 0, ny), "2026-11-01T01:30:00-04:00"},
		{"autumn after change", "30 2 * * *", time.Date(2026, 11, 1, 0, 0, 0, 0, ny), "2026-11-01T02:30:00-05:00"},
		{"autumn midnight", "0 0 * * *", time.Date(2026, 11, 1, 0, 0, 0, 0, ny), "2026-11-01T00:00:00-04:00"},
		{"zone in expression", "CRON_TZ=America/New_York 30 2 * * *", time.Date(2027, 3, 14, 0, 0, 0, 0, ny), "2027-03-14T03:30:00-04:00"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc := ny
			if c.spec[0] == 'C' {
				loc = time.UTC // the expression's own zone must win
			}
			got := firings(t, c.spec, loc, c.day, c.day.AddDate(0, 0, 1))
			if len(got) != 1 {
				t.Fatalf("%d firings on %s: %v, want exactly one", len(got), c.day.Format("2006-01-02"), got)
			}
			if s := got[0].In(ny).Format(time.RFC3339); s != c.want {
				t.Errorf("firing at %s, want %s", s, c.want)
			}
		})
	}
}

func TestScheduleDailyAcrossYear(t *testing.T) {
	ny := mustLocation(t, "America/New_York")
	for _, spec := range []string{"30 2 * * *", "30 1 * * *", "0 0 * * *", "59 23 * * *"} {
		t.Run(spec, func(t *testing.T) {
			from := time.Date(2026, 1, 1, 0, 0, 0, 0, ny)
			got := firings(t, spec, ny, from, from.AddDate(1, 0, 0))
			if len(got) != 365 {
				t.Fatalf("%d firings in 2026, want 365", len(got))
			}
			for i := 1; i < len(got); i++ {
				prev, cur := got[i-1].In(ny), got[i].In(ny)
				if cur.YearDay() != prev.YearDay()+1 {
					t.Errorf("firing %d on day %d follows day %d", i, cur.YearDay(), prev.YearDay())
				}
			}
		})
	}
}

func TestScheduleRepeatedHourFrequent(t *testing.T) {
	ny := mustLocation(t, "America/New_York")
	// 00:00 to 03:00 local on 1 November 2026 is four hours of real time.
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, ny)
	to := time.Date(2026, 11, 1, 3, 0, 0, 0, ny)
	got := firings(t, "*/15 * * * *", ny, from, to)

	if len(got) != 12 {
		t.Fatalf("%d firings, want 12 (each wall-clock quarter hour once): %v", len(got), got)
	}
	for i := 1; i < len(got); i++ {
		if !got[i].After(got[i-1]) {
			t.Errorf("firing %d at %v is not after %v", i, got[i], got[i-1])
		}
	}
	// The quarter hours of the repeated 01:00-02:00 fire in its first pass (EDT).
	if s := got[7].In(ny).Format(time.RFC3339); s != "2026-11-01T01:45:00-04:00" {
		t.Errorf("firing 7 at %s, want 01:45 EDT", s)
	}
	if s := got[8].In(ny).Format(time.RFC3339); s != "2026-11-01T02:00:00-05:00" {
		t.Errorf("firing 8 at %s, want 02:00 EST", s)
	}
}

func TestScheduleDefaultsToUTC(t *testing.T) {
	schedule, err := cron.ParseSchedule("0 3 * * *", nil)
	if err != nil {
		t.Fatal(err)
	}
	kolkata := mustLocation(t, "Asia/Kolkata")
	got := schedule.Next(time.Date(2026, 6, 1, 12, 0, 0, 0, kolkata))
	if want := time.Date(2026, 6, 2, 3, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next = %v, want %v", got, want)
	}
	if got.Location() != time.UTC {
		t.Errorf("Next returned a time in %v, want UTC", got.Location())
	}
}

func TestScheduleEvery(t *testing.T) {
	ny := mustLocation(t, "America/New_York")
	start := time.Date(2026, 11, 1, 0, 30, 0, 0, ny)
	got := firings(t, "@every 1h", ny, start, start.Add(4*time.Hour))
	if len(got) != 4 {
		t.Fatalf("%d firings of @every 1h in 4 real hours, want 4: %v", len(got), got)
	}
}

// Replicas started at different times, and a replica restarted, agree on the firings of
// an @every schedule: they count from the Unix epoch.
func TestScheduleEveryCountsFromEpoch(t *testing.T) {
	cases := []struct {
		spec      string
		after     time.Time
		want      time.Time
		whoStarts string
	}{
		{"@every 6h", time.Date(2026, 12, 5, 7, 13, 2, 0, time.UTC), time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), "first replica"},
		{"@every 6h", time.Date(2026, 12, 5, 11, 59, 59, 0, time.UTC), time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), "second replica"},
		{"@every 6h", time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC), "at a firing"},
		{"@every 7m", time.Date(1970, 1, 1, 0, 20, 0, 0, time.UTC), time.Date(1970, 1, 1, 0, 21, 0, 0, time.UTC), "near the epoch"},
		{"@every 1h", time.Date(1969, 12, 31, 22, 30, 0, 0, time.UTC), time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), "before the epoch"},
	}
	for _, c := range cases {
		schedule, err := cron.ParseSchedule(c.spec, mustLocation(t, "Asia/Kolkata"))
		if err != nil {
			t.Fatal(err)
		}
		if got := schedule.Next(c.after); !got.Equal(c.want) {
			t.Errorf("%s, %s: Next(%v) = %v, want %v", c.spec, c.whoStarts, c.after, got, c.want)
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	cases := []struct{ name, spec string }{
		{"too few fields", "0 3 *"},
		{"bad zone", "CRON_TZ=Mars/Olympus 0 3 * * *"},
		{"bad minute", "61 3 * * *"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := cron.ParseSchedule(c.spec, nil); err == nil {
				t.Errorf("ParseSchedule(%q) succeeded, want an error", c.spec)
			}
		})
	}
}
