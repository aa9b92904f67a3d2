package report

import (
	"math"
	"testing"
	"time"
)

func TestFormatInt(t *testing.T) {
	cases := map[int64]string{
		0:          "0",
		999:        "999",
		1000:       "1,000",
		-1234567:   "-1,234,567",
		1234567890: "1,234,567,890",
	}

	for n, want := range cases {
		if got := formatInt(n); got != want {
			t.Errorf("formatInt(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFormatFixed(t *testing.T) {
	cases := []struct {
		value    float64
		decimals int
		want     string
	}{
		{1234.5, 2, "1,234.50"},
		{0.004, 2, "0.00"},
		{-0.004, 2, "0.00"},
		{-1234567.891, 1, "-1,234,567.9"},
		{999.999, 2, "1,000.00"},
		{math.NaN(), 2, "n/a"},
		{math.Inf(-1), 2, "n/a"},
	}

	for _, c := range cases {
		if got := formatFixed(c.value, c.decimals); got != c.want {
			t.Errorf("formatFixed(%v, %d) = %q, want %q", c.value, c.decimals, got, c.want)
		}
	}
}

func TestFormatTrimmed(t *testing.T) {
	cases := map[float64]string{60: "60", 1.5: "1.5", 0.333: "0.33", 2500.10: "2,500.1"}

	for value, want := range cases {
		if got := formatTrimmed(value, 2); got != want {
			t.Errorf("formatTrimmed(%v, 2) = %q, want %q", value, got, want)
		}
	}
}

func TestFormatGPUs(t *testing.T) {
	cases := map[int64]string{0: "0", 250: "0.25", 1250: "1.25", 404000: "404", 1098500: "1,098.5", -1500: "-1.5"}

	for milli, want := range cases {
		if got := formatGPUs(milli); got != want {
			t.Errorf("formatGPUs(%d) = %q, want %q", milli, got, want)
		}
	}
}

func TestFormatPercent(t *testing.T) {
	cases := []struct {
		part, whole float64
		want        string
	}{
		{1, 4, "25.0%"},
		{10250.5, 10000, "102.5%"},
		{2, 7011, "<0.1%"},
		{0, 10, "0.0%"},
		{1, 0, "n/a"},
		{math.Inf(1), 10, "n/a"},
		{1, math.NaN(), "n/a"},
	}

	for _, c := range cases {
		if got := formatPercent(c.part, c.whole); got != c.want {
			t.Errorf("formatPercent(%v, %v) = %q, want %q", c.part, c.whole, got, c.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	cases := []struct {
		duration time.Duration
		want     string
	}{
		{0, "0s"},
		{200 * time.Microsecond, "<1ms"},
		{700 * time.Microsecond, "1ms"},
		{350 * time.Millisecond, "350ms"},
		{999700 * time.Microsecond, "1.0s"},
		{12340 * time.Millisecond, "12.3s"},
		{59970 * time.Millisecond, "1m00s"},
		{4*time.Minute + 5*time.Second, "4m05s"},
		{time.Hour - 200*time.Millisecond, "1h00m"},
		{2*time.Hour + 5*time.Minute + 29*time.Second, "2h05m"},
		{50*time.Hour + 3*time.Minute, "50h03m"},
		{-90 * time.Second, "-1m30s"},
	}

	for _, c := range cases {
		if got := formatDuration(c.duration); got != c.want {
			t.Errorf("formatDuration(%v) = %q, want %q", c.duration, got, c.want)
		}
	}
}

func TestFormatMiB(t *testing.T) {
	if got, want := formatMiB(3<<30), "3,072.0 MiB"; got != want {
		t.Errorf("formatMiB(3 GiB) = %q, want %q", got, want)
	}
}

func TestCodeSpan(t *testing.T) {
	cases := map[string]string{
		"schedulerd replay":  "`schedulerd replay`",
		"echo `date`":        "`` echo `date` ``",
		"a ``b`` c":          "```a ``b`` c```",
		"line one\nline two": "`line one line two`",
	}

	for input, want := range cases {
		if got := codeSpan(input); got != want {
			t.Errorf("codeSpan(%q) = %q, want %q", input, got, want)
		}
	}
}

func TestEscapeCell(t *testing.T) {
	if got, want := escapeCell("a|b\nc"), `a\|b c`; got != want {
		t.Errorf("escapeCell = %q, want %q", got, want)
	}
}

func TestSortedWaitsTierOrder(t *testing.T) {
	names := []string{"low", "batch", "critical", "normal", "adhoc", "high"}
	sorted := sortedWaits(nil)
	for _, name := range names {
		sorted = append(sorted, TierWait{Tier: name})
	}
	sorted = sortedWaits(sorted)

	want := []string{"critical", "high", "normal", "low", "adhoc", "batch"}
	for i, wait := range sorted {
		if wait.Tier != want[i] {
			t.Errorf("position %d = %q, want %q", i, wait.Tier, want[i])
		}
	}
}
