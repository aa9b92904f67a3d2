package main

import (
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/schedulerd/schedulerd/config"
)

// undefinedFlagPrefix starts the flag package's error for a flag that the set does not
// define. The package exports no error value for it, only this text.
const undefinedFlagPrefix = "flag provided but not defined: -"

// suggestFlag appends "did you mean -NAME" to the flag package's error for an undefined
// flag when one of fs's flags is a small typo away, such as -project for -projects.
// Other errors, and undefined flags with no close match, are returned as they are.
func suggestFlag(fs *flag.FlagSet, err error) error {
	undefined, ok := strings.CutPrefix(err.Error(), undefinedFlagPrefix)
	if !ok {
		return err
	}
	if name := closestFlag(fs, undefined); name != "" {
		return fmt.Errorf("%w; did you mean -%s?", err, name)
	}
	return err
}

// closestFlag returns the flag of fs, or the settings flag of fs's command, with the
// smallest edit distance to undefined, or "" when none is within maxTypoDistance of it. Ties
// go to the command's own flags, then to the first name in lexical order.
func closestFlag(fs *flag.FlagSet, undefined string) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	command, _, _ := strings.Cut(fs.Name(), " ")
	return closestName(undefined, append(names, settingFlags(command)...))
}

// settingFlags returns the names of the settings flags that command reads. Config takes
// them from the command line before the command parses its own flags, so a typo of one
// reaches the command's flag set, or run's check for extra arguments, as an unknown flag.
func settingFlags(command string) []string {
	names, err := config.SettingFlags(commandSettings[command])
	if err != nil {
		panic(fmt.Sprintf("commandSettings of %s: %v", command, err)) // a fixed table
	}
	return names
}

// settingHint returns "; did you mean -NAME?" when arg is a flag a small typo away from one
// of command's settings flags, and "" otherwise.
func settingHint(command, arg string) string {
	name, ok := strings.CutPrefix(arg, "-")
	if !ok {
		return ""
	}
	name, _, _ = strings.Cut(strings.TrimPrefix(name, "-"), "=")
	if closest := closestName(name, settingFlags(command)); closest != "" {
		return fmt.Sprintf("; did you mean -%s?", closest)
	}
	return ""
}

// closestName returns the candidate with the smallest edit distance to name, or "" when
// none is within maxTypoDistance of it. Ties go to the first candidate in the order given.
func closestName(name string, candidates []string) string {
	best, bestDistance := "", maxTypoDistance(name)+1
	for _, candidate := range candidates {
		if d := editDistance(name, candidate); d < bestDistance {
			best, bestDistance = candidate, d
		}
	}
	return best
}

// actionError rejects a missing or unknown action of command, such as 'lst' in
// `schedulerd job lst`, and names the closest action when the unknown one is a typo of it.
func actionError(command string, args, actions []string) usageError {
	want := fmt.Sprintf("want '%s %s'", command, strings.Join(actions, "|"))
	if len(args) == 0 {
		return usageError{want}
	}
	message := fmt.Sprintf("unknown command '%s'", args[0])
	if name := closestName(args[0], actions); name != "" {
		message += fmt.Sprintf(" (did you mean '%s %s'?)", command, name)
	}
	return usageError{message + "; " + want}
}

// commandHint returns " (did you mean 'NAME'?)" for the schedulerd command closest to an
// unknown one, or "" when none is a small typo away.
func commandHint(unknown string) string {
	name := closestName(unknown, slices.Sorted(maps.Keys(commands)))
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean '%s'?)", name)
}

// maxTypoDistance is the largest edit distance at which name still counts as a typo. A
// name of one or two letters gets no suggestion, because most are one or two edits from -o.
// Names of up to four letters allow one edit and longer names two.
func maxTypoDistance(name string) int {
	switch {
	case len(name) <= 2:
		return 0
	case len(name) <= 4:
		return 1
	}
	return 2
}

// editDistance is the optimal string alignment distance between a and b, counted in bytes:
// the fewest insertions, deletions, substitutions and swaps of adjacent bytes that turn a
// into b. A swap counts as one edit because -form for -from is one slip of the fingers.
// Flag names are ASCII.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			substitution := d[i-1][j-1]
			if a[i-1] != b[j-1] {
				substitution++
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, substitution)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
