package trace

import (
	"fmt"
	"math"
	"time"
)

// Mode selects how a replay drives submissions.
type Mode string

const (
	// ModePaced submits each entry at its Submit offset and lets it run for
	// Run.
	ModePaced Mode = "paced"

	// ModeFill submits entries one after another, each as soon as the
	// previous one is placed, and never ends them. The replay stops at the
	// first entry that finds no room, which measures how many trace tasks
	// the cluster holds at once.
	ModeFill Mode = "fill"
)

// Entry is one task of a schedule with its wall-clock timing.
type Entry struct {
	Task Task

	// Submit is the wall-clock offset from the replay start at which the
	// task is submitted. It is 0 for every entry in ModeFill.
	Submit time.Duration

	// Run is the wall-clock run length of the simulated pod. It is 0 and
	// unused when RunForever is set.
	Run time.Duration

	// RunForever means that the pod keeps running until the replay ends.
	RunForever bool
}

// Schedule is the replay plan computed from a trace, without any sleeping,
// so tests can check it exactly.
type Schedule struct {
	Mode    Mode
	Entries []Entry

	// StopAtFirstUnplaced means that the replay submits entries one at a
	// time, each after the previous one is placed, and stops at the first
	// entry that the scheduler cannot place. It is set in ModeFill.
	StopAtFirstUnplaced bool
}

// Pace converts trace times to wall-clock times. speedup is trace seconds
// per wall second. load further compresses the gaps between arrivals, so
// arrivals are divided by speedup*load and run lengths by speedup only,
// which raises the number of jobs running at once about load times.
// Submit offsets count from the earliest creation_time, so the replay
// starts with its first submission. The tasks must be sorted by
// creation_time, and callers drop CPU-only tasks first if they skip them.
func Pace(tasks []Task, speedup, load float64) (Schedule, error) {
	if err := checkFactor("speedup", speedup); err != nil {
		return Schedule{}, err
	}
	if err := checkFactor("load", load); err != nil {
		return Schedule{}, err
	}
	if err := checkSorted(tasks); err != nil {
		return Schedule{}, err
	}

	schedule := Schedule{Mode: ModePaced, Entries: make([]Entry, 0, len(tasks))}
	for _, task := range tasks {
		entry, err := paceTask(task, tasks[0].CreationTime, speedup, load)
		if err != nil {
			return Schedule{}, err
		}
		schedule.Entries = append(schedule.Entries, entry)
	}

	return schedule, nil
}

func paceTask(task Task, start int64, speedup, load float64) (Entry, error) {
	submit, err := wallDuration(task.CreationTime-start, speedup*load)
	if err != nil {
		return Entry{}, fmt.Errorf("pace task %s: submit offset: %w", task.Name, err)
	}

	run, err := wallDuration(task.RunSeconds(), speedup)
	if err != nil {
		return Entry{}, fmt.Errorf("pace task %s: run length: %w", task.Name, err)
	}

	return Entry{Task: task, Submit: submit, Run: run}, nil
}

// Fill returns the ModeFill schedule of the tasks, which must be sorted by
// creation_time.
func Fill(tasks []Task) (Schedule, error) {
	if err := checkSorted(tasks); err != nil {
		return Schedule{}, err
	}

	schedule := Schedule{Mode: ModeFill, StopAtFirstUnplaced: true, Entries: make([]Entry, 0, len(tasks))}
	for _, task := range tasks {
		schedule.Entries = append(schedule.Entries, Entry{Task: task, RunForever: true})
	}

	return schedule, nil
}

// checkFactor rejects factors that are not finite and positive, because
// they would produce infinite or negative durations.
func checkFactor(name string, factor float64) error {
	if !(factor > 0) || math.IsInf(factor, 1) {
		return fmt.Errorf("pace: %s must be a finite number greater than 0, got %v", name, factor)
	}

	return nil
}

func checkSorted(tasks []Task) error {
	for i := 1; i < len(tasks); i++ {
		previous, current := tasks[i-1], tasks[i]
		if current.CreationTime < previous.CreationTime {
			return fmt.Errorf("pace: tasks not sorted by creation_time: %s (line %d) at %d follows %s at %d",
				current.Name, current.Line, current.CreationTime, previous.Name, previous.CreationTime)
		}
	}

	return nil
}

// wallDuration divides trace seconds by factor and rounds to the nearest
// nanosecond. It fails when the result does not fit in a time.Duration.
func wallDuration(seconds int64, factor float64) (time.Duration, error) {
	nanoseconds := math.Round(float64(seconds) * float64(time.Second) / factor)
	if math.IsNaN(nanoseconds) || nanoseconds >= math.MaxInt64 {
		return 0, fmt.Errorf("%d trace seconds divided by %v exceeds the maximum duration", seconds, factor)
	}

	return time.Duration(nanoseconds), nil
}
