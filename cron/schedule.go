package cron

import (
	"fmt"
	"strings"
	"time"

	robfig "github.com/robfig/cron/v3"
)

// parser accepts the standard five fields (minute, hour, day of month, month, day of week),
// an optional leading seconds field, and descriptors such as @daily and @every 1h.
var parser = robfig.NewParser(robfig.SecondOptional | robfig.Minute | robfig.Hour |
	robfig.Dom | robfig.Month | robfig.Dow | robfig.Descriptor)

// Schedule is a parsed cron expression with the time zone its fields are read in.
//
// robfig/cron's own Next walks real instants, so in a zone with daylight saving time a daily
// 02:30 never fires on the spring-forward day and a daily 01:30 fires twice on the fall-back
// day. Schedule instead finds the next matching wall-clock time and then maps it to an
// instant, so that each wall-clock time fires once:
//
//   - A time that the spring change skips (02:30 in America/New_York) fires at the instant
//     the clock would show it without the change, which the clock shows as 03:30.
//   - A time that the autumn change repeats (01:30) fires at its first occurrence only. A
//     schedule of every few minutes therefore pauses during the repeated hour.
//
// @every durations are intervals of real time and ignore zones. They count from the Unix
// epoch, where robfig/cron's own @every counts from the replica's start. So every replica
// agrees on the firing times, which key the River jobs that make a firing run once, and a
// restart does not move them. "@every 6h" fires at 00:00, 06:00, 12:00 and 18:00 UTC.
type Schedule struct {
	spec     string
	location *time.Location
	wall     robfig.Schedule // evaluated on wall-clock times written as UTC
	every    time.Duration   // the interval of an @every schedule, evaluated on real instants
}

// ParseSchedule parses spec, read in location unless spec starts with CRON_TZ=ZONE or
// TZ=ZONE. A nil location means UTC.
func ParseSchedule(spec string, location *time.Location) (Schedule, error) {
	if location == nil {
		location = time.UTC
	}
	fields := strings.TrimSpace(spec)

	if zone, rest, ok := cutZonePrefix(fields); ok {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return Schedule{}, fmt.Errorf("parse cron expression %q: unknown time zone %q: %w", spec, zone, err)
		}
		location, fields = loc, rest
	}

	parsed, err := parser.Parse(fields)
	if err != nil {
		return Schedule{}, fmt.Errorf("parse cron expression %q: %w", spec, err)
	}
	var every time.Duration
	if delay, ok := parsed.(robfig.ConstantDelaySchedule); ok {
		every = delay.Delay // robfig rounds it to whole seconds, at least one
	}
	return Schedule{spec: spec, location: location, wall: parsed, every: every}, nil
}

// cutZonePrefix splits "CRON_TZ=Europe/Paris 0 3 * * *" into the zone and the fields.
func cutZonePrefix(spec string) (zone, rest string, ok bool) {
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		if after, found := strings.CutPrefix(spec, prefix); found {
			zone, rest, _ = strings.Cut(after, " ")
			return zone, strings.TrimSpace(rest), true
		}
	}
	return "", spec, false
}

// String returns the expression as written.
func (s Schedule) String() string { return s.spec }

// Location returns the time zone the expression's fields are read in.
func (s Schedule) Location() *time.Location { return s.location }

// Next returns the first firing time strictly after t, in UTC. It returns the zero time when
// the expression matches nothing in the next five years (such as 30 February).
func (s Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		return nextMultiple(t, s.every)
	}

	after := toWall(t, s.location)
	for {
		wall := s.wall.Next(after)
		if wall.IsZero() {
			return time.Time{}
		}

		instant := fromWall(wall, s.location)
		if instant.After(t) {
			return instant.UTC()
		}
		// The wall time maps to an instant at or before t: t is in the repeated autumn hour
		// and wall is a time of that hour that already fired. Look further.
		after = wall
	}
}

// nextMultiple returns the first instant strictly after t that is a whole number of
// intervals since the Unix epoch, in UTC.
func nextMultiple(t time.Time, every time.Duration) time.Time {
	since := time.Duration(t.UnixNano())
	next := since - since%every + every
	if since < 0 && since%every != 0 {
		next -= every // Go's remainder takes the sign of the dividend
	}
	return time.Unix(0, int64(next)).UTC()
}

// toWall returns the wall-clock reading of t in loc, written as a UTC time.
func toWall(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
}

// fromWall returns the instant at which loc's clocks show wall (a wall-clock time written as
// UTC): the earlier instant when the clocks show it twice, and the instant shifted forward by
// the gap when a change skips it. It compares the offsets in force 36 hours before and after.
// NOTE: a zone whose offset changes twice within those three days is mapped with the wrong
// pair of offsets.
func fromWall(wall time.Time, loc *time.Location) time.Time {
	_, before := wall.Add(-36 * time.Hour).In(loc).Zone()
	_, after := wall.Add(36 * time.Hour).In(loc).Zone()

	var earliest time.Time
	for _, offset := range []int{before, after} {
		instant := wall.Add(-time.Duration(offset) * time.Second)
		if !toWall(instant, loc).Equal(wall) {
			continue
		}
		if earliest.IsZero() || instant.Before(earliest) {
			earliest = instant
		}
	}
	if !earliest.IsZero() {
		return earliest
	}

	// The clocks never show wall: read it with the offset in force before the change.
	return wall.Add(-time.Duration(before) * time.Second)
}
