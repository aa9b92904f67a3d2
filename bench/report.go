package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Goal is the target of one row: a minimum ratio to the row's reference, or a maximum
// value. The zero Goal has no target.
type Goal struct {
	MinRatio float64 // ours / reference must be at least this
	MaxValue float64 // ours must stay below this, in the row's unit
}

// String describes the goal, as the table prints it.
func (g Goal) String() string {
	switch {
	case g.MinRatio > 0:
		return fmt.Sprintf(">= %.2fx", g.MinRatio)
	case g.MaxValue > 0:
		return fmt.Sprintf("< %s", formatValue(g.MaxValue))
	}
	return ""
}

// Row is one line of the results table: our measurement next to its reference.
type Row struct {
	Name      string
	Unit      string
	Ours      Spread
	Reference string  // name of the reference; empty for none
	Ref       *Spread // nil for none
	Goal      Goal
	Note      string
}

// Ratio returns ours / reference, both medians, or NaN without a reference.
func (r Row) Ratio() float64 {
	if r.Ref == nil || r.Ref.Median == 0 {
		return math.NaN()
	}
	return r.Ours.Median / r.Ref.Median
}

// Verdict returns "met", "missed" or "" when the row has no goal or no value.
func (r Row) Verdict() string {
	switch {
	case r.Goal.MinRatio > 0 && !math.IsNaN(r.Ratio()):
		return metOrMissed(r.Ratio() >= r.Goal.MinRatio)
	case r.Goal.MaxValue > 0 && !math.IsNaN(r.Ours.Median):
		return metOrMissed(r.Ours.Median < r.Goal.MaxValue)
	}
	return ""
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// Section is a block of text after the table, such as a query plan.
type Section struct {
	Title string
	Body  string // preformatted
}

// Results is everything one `make bench` run measured.
type Results struct {
	Machine  Machine
	Settings string // sizes of the run, one line
	Rows     []Row
	Sections []Section
	Notes    []string
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func formatSpread(s Spread) string {
	if s.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s (%s-%s)", formatValue(s.Median), formatValue(s.Min), formatValue(s.Max))
}

func formatRatio(r Row) string {
	if math.IsNaN(r.Ratio()) {
		return ""
	}
	return fmt.Sprintf("%.2fx", r.Ratio())
}

func (r Row) cells() []string {
	ref := ""
	if r.Ref != nil {
		ref = r.Reference + ": " + formatSpread(*r.Ref)
	}
	return []string{r.Name, r.Unit, formatSpread(r.Ours), ref, formatRatio(r), r.Goal.String(), r.Verdict()}
}

var header = []string{"measurement", "unit", "schedulerd median (min-max)", "reference median (min-max)",
	"ratio", "goal", "verdict"}

// WriteTable prints the rows as an aligned text table.
func (res *Results) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range res.Rows {
		fmt.Fprintln(tw, strings.Join(r.cells(), "\t"))
	}
	return tw.Flush()
}

// WriteMarkdown writes the whole record: machine, table, notes and sections.
func (res *Results) WriteMarkdown(w io.Writer) error {
	m := res.Machine
	var b strings.Builder
	fmt.Fprintf(&b, "# schedulerd benchmarks, %s\n\n", m.Start.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s, %d cores (%s), %.1f GiB memory, Go %s, %s.\n",
		m.Hostname, m.Cores, m.CPUModel, m.MemoryGiB, m.GoVersion, m.PostgresVersion)
	fmt.Fprintf(&b, "Load average (1, 5, 15 min) at start: %s; at end: %s.\n", m.LoadStart, m.LoadEnd)
	if res.Settings != "" {
		fmt.Fprintf(&b, "Settings: %s.\n", res.Settings)
	}
	b.WriteString("\nEach value is the median of the runs, with the spread (min-max) in brackets. " +
		"The ratio divides the two medians.\n\n")

	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString("|" + strings.Repeat(" --- |", len(header)) + "\n")
	for _, r := range res.Rows {
		b.WriteString("| " + strings.Join(r.cells(), " | ") + " |\n")
	}
	if notes := res.rowNotes(); len(notes) > 0 {
		b.WriteString("\n" + notes)
	}
	if len(res.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range res.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	for _, s := range res.Sections {
		fmt.Fprintf(&b, "\n## %s\n\n```\n%s\n```\n", s.Title, strings.TrimRight(s.Body, "\n"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (res *Results) rowNotes() string {
	var b strings.Builder
	for _, r := range res.Rows {
		if r.Note != "" {
			fmt.Fprintf(&b, "- %s: %s\n", r.Name, r.Note)
		}
	}
	return b.String()
}
