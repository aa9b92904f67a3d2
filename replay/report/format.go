package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// notAvailable replaces a figure that cannot be computed, such as a share of
// a zero total or a NaN input.
const notAvailable = "n/a"

// formatInt formats n with commas between groups of three digits.
func formatInt(n int64) string {
	digits := strconv.FormatInt(n, 10)

	sign := ""
	if n < 0 {
		sign = "-"
		digits = digits[1:]
	}

	return sign + groupThousands(digits)
}

// groupThousands inserts commas into a string of decimal digits.
func groupThousands(digits string) string {
	if len(digits) <= 3 {
		return digits
	}

	var b strings.Builder
	head := len(digits) % 3
	if head > 0 {
		b.WriteString(digits[:head])
	}

	for i := head; i < len(digits); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(digits[i : i+3])
	}

	return b.String()
}

// formatFixed formats v with exactly decimals digits after the point and
// commas in the integer part.
func formatFixed(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return notAvailable
	}

	text := strconv.FormatFloat(math.Abs(v), 'f', decimals, 64)
	whole, fraction, hasFraction := strings.Cut(text, ".")

	sign := ""
	if v < 0 && strings.Trim(text, "0.") != "" {
		sign = "-"
	}

	result := sign + groupThousands(whole)
	if hasFraction {
		result += "." + fraction
	}

	return result
}

// formatTrimmed formats v like formatFixed but drops trailing zeros, so 60
// prints as "60" and 1.5 as "1.5".
func formatTrimmed(v float64, decimals int) string {
	text := formatFixed(v, decimals)
	if !strings.Contains(text, ".") {
		return text
	}

	return strings.TrimRight(strings.TrimRight(text, "0"), ".")
}

// formatGPUs formats thousandths of a GPU as GPUs, exactly and without
// trailing zeros: 404000 is "404" and 1250 is "1.25".
func formatGPUs(milli int64) string {
	sign := ""
	if milli < 0 {
		sign = "-"
		milli = -milli
	}

	result := sign + formatInt(milli/1000)
	if fraction := milli % 1000; fraction != 0 {
		result += "." + strings.TrimRight(fmt.Sprintf("%03d", fraction), "0")
	}

	return result
}

// formatPercent formats part as a percentage of whole with one decimal. A
// whole of zero or less has no meaningful share and gives "n/a", as does a
// NaN or infinite input. A positive share that rounds to zero prints as
// "<0.1%", so that a few jobs do not read as none.
func formatPercent(part, whole float64) string {
	share := 100 * part / whole
	if whole <= 0 || math.IsNaN(share) || math.IsInf(share, 0) {
		return notAvailable
	}

	if share > 0 && share < 0.05 {
		return "<0.1%"
	}

	return formatFixed(share, 1) + "%"
}

// formatMiB formats a byte count in mebibytes with one decimal.
func formatMiB(bytes int64) string {
	return formatFixed(float64(bytes)/(1<<20), 1) + " MiB"
}

// formatDuration rounds d to a precision that suits its size: milliseconds
// below a second, tenths of a second below a minute, seconds below an hour
// and minutes above. Days are written as hours, such as "50h03m". Each bound
// sits half a unit early, so that 59.97s prints as "1m00s", not "60.0s".
func formatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + formatDuration(-d)
	}

	switch {
	case d == 0:
		return "0s"
	case d < 500*time.Microsecond:
		return "<1ms"
	case d < time.Second-500*time.Microsecond:
		return strconv.FormatInt(d.Round(time.Millisecond).Milliseconds(), 10) + "ms"
	case d < time.Minute-50*time.Millisecond:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour-500*time.Millisecond:
		seconds := int64(d.Round(time.Second) / time.Second)
		return fmt.Sprintf("%dm%02ds", seconds/60, seconds%60)
	default:
		minutes := int64(d.Round(time.Minute) / time.Minute)
		return fmt.Sprintf("%dh%02dm", minutes/60, minutes%60)
	}
}

// formatTime formats t in UTC to the second, so a report reads the same on
// every machine. The zero time means that the caller did not record it.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "not recorded"
	}

	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// escapeCell makes s safe inside a Markdown table cell, where a pipe would
// start a new cell and a line break would end the row.
func escapeCell(s string) string {
	s = oneLine(s)
	return strings.ReplaceAll(s, "|", `\|`)
}

// oneLine replaces line breaks with spaces.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// codeSpan wraps s in a Markdown code span whose backtick fence is longer
// than any run of backticks inside s, so s prints verbatim.
func codeSpan(s string) string {
	s = oneLine(s)
	fence := strings.Repeat("`", longestBacktickRun(s)+1)

	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}

	return fence + s + fence
}

// longestBacktickRun returns the length of the longest run of backticks in s.
func longestBacktickRun(s string) int {
	longest, run := 0, 0
	for _, r := range s {
		if r != '`' {
			run = 0
			continue
		}

		run++
		longest = max(longest, run)
	}

	return longest
}

// orNotRecorded returns s, or "not recorded" when s is empty.
func orNotRecorded(s string) string {
	if s == "" {
		return "not recorded"
	}

	return s
}
