package trace

import (
	"math"
	"strings"
	"testing"
	"time"
)

// pacingTasks start 100 s into the trace. Offsets from the first arrival
// are 0, 100 and 400 s, run lengths 3600, 60 and 0 s. The last task never
// ran, so its run length is its life from creation to deletion.
var pacingTasks = []Task{
	{Name: "a", CreationTime: 100, ScheduledTime: 100, DeletionTime: 3700, Scheduled: true},
	{Name: "b", CreationTime: 200, ScheduledTime: 240, DeletionTime: 300, Scheduled: true},
	{Name: "c", CreationTime: 500, DeletionTime: 500},
}

func TestPace(t *testing.T) {
	tests := []struct {
		name    string
		speedup float64
		load    float64
		submits []time.Duration
		runs    []time.Duration
	}{
		{"real time", 1, 1, []time.Duration{0, 100 * time.Second, 400 * time.Second}, []time.Duration{time.Hour, time.Minute, 0}},
		{"speedup 10", 10, 1, []time.Duration{0, 10 * time.Second, 40 * time.Second}, []time.Duration{6 * time.Minute, 6 * time.Second, 0}},
		// Arrivals divided by 10*2 = 20, runs by 10.
		{"load 2", 10, 2, []time.Duration{0, 5 * time.Second, 20 * time.Second}, []time.Duration{6 * time.Minute, 6 * time.Second, 0}},
		// 100 s / 3 = 33.333333333 s, rounded to the nanosecond.
		{"rounding", 3, 1, []time.Duration{0, 33_333_333_333, 133_333_333_333}, []time.Duration{20 * time.Minute, 20 * time.Second, 0}},
		{"slow motion", 0.5, 1, []time.Duration{0, 200 * time.Second, 800 * time.Second}, []time.Duration{2 * time.Hour, 2 * time.Minute, 0}},
	}

	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			schedule, err := Pace(pacingTasks, test.speedup, test.load)
			if err != nil {
				t.Fatalf("Pace: %v", err)
			}
			if schedule.Mode != ModePaced || schedule.StopAtFirstUnplaced {
				t.Errorf("Mode, StopAtFirstUnplaced = %q, %v, want paced, false", schedule.Mode, schedule.StopAtFirstUnplaced)
			}

			for i, entry := range schedule.Entries {
				if entry.Task.Name != pacingTasks[i].Name {
					t.Errorf("entry %d = task %s, want %s", i, entry.Task.Name, pacingTasks[i].Name)
				}
				if entry.Submit != test.submits[i] {
					t.Errorf("entry %d Submit = %v, want %v", i, entry.Submit, test.submits[i])
				}
				if entry.Run != test.runs[i] || entry.RunForever {
					t.Errorf("entry %d Run = %v (forever %v), want %v", i, entry.Run, entry.RunForever, test.runs[i])
				}
			}
		})
	}
}

func TestPaceErrors(t *testing.T) {
	unsorted := []Task{{Name: "late", CreationTime: 50, Line: 2}, {Name: "early", CreationTime: 40, Line: 3}}
	huge := []Task{{Name: "long", DeletionTime: maxSeconds, Scheduled: true}}

	tests := []struct {
		name    string
		tasks   []Task
		speedup float64
		load    float64
		want    string
	}{
		{"zero speedup", pacingTasks, 0, 1, "pace: speedup must be a finite number greater than 0, got 0"},
		{"negative load", pacingTasks, 1, -2, "pace: load must be a finite number greater than 0, got -2"},
		{"NaN speedup", pacingTasks, math.NaN(), 1, "pace: speedup must be a finite number greater than 0, got NaN"},
		{"infinite load", pacingTasks, 1, math.Inf(1), "pace: load must be a finite number greater than 0, got +Inf"},
		{"unsorted", unsorted, 1, 1, "pace: tasks not sorted by creation_time: early (line 3) at 40 follows late at 50"},
		{"overflow", huge, 0.5, 1, "pace task long: run length: 9223372036 trace seconds divided by 0.5 exceeds the maximum duration"},
	}

	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			_, err := Pace(test.tasks, test.speedup, test.load)
			if err == nil || err.Error() != test.want {
				t.Errorf("Pace error = %v, want %q", err, test.want)
			}
		})
	}
}

func TestPaceEmpty(t *testing.T) {
	schedule, err := Pace(nil, 1, 1)
	if err != nil || len(schedule.Entries) != 0 {
		t.Errorf("Pace(nil) = %d entries, %v, want none and no error", len(schedule.Entries), err)
	}
}

func TestFill(t *testing.T) {
	schedule, err := Fill(pacingTasks)
	if err != nil {
		t.Fatalf("Fill: %v", err)
	}

	if schedule.Mode != ModeFill || !schedule.StopAtFirstUnplaced {
		t.Errorf("Mode, StopAtFirstUnplaced = %q, %v, want fill, true", schedule.Mode, schedule.StopAtFirstUnplaced)
	}
	if len(schedule.Entries) != len(pacingTasks) {
		t.Fatalf("entries = %d, want %d", len(schedule.Entries), len(pacingTasks))
	}

	for i, entry := range schedule.Entries {
		if entry.Task.Name != pacingTasks[i].Name || entry.Submit != 0 || entry.Run != 0 || !entry.RunForever {
			t.Errorf("entry %d = %s submit %v run %v forever %v, want %s at 0 forever",
				i, entry.Task.Name, entry.Submit, entry.Run, entry.RunForever, pacingTasks[i].Name)
		}
	}
}

func TestFillUnsorted(t *testing.T) {
	_, err := Fill([]Task{{Name: "b", CreationTime: 2}, {Name: "a", CreationTime: 1}})
	if err == nil || !strings.Contains(err.Error(), "not sorted by creation_time") {
		t.Errorf("Fill error = %v, want a sort error", err)
	}
}
