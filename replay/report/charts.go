package report

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Chart size. At 96 dpi, the default of vgimg in gonum.org/v1/plot v0.17.0,
// this is 864 by 432 pixels, wide enough for a legend beside the lines.
const (
	chartWidth  = 9 * vg.Inch
	chartHeight = 4.5 * vg.Inch
)

// Colors of the project bars.
var (
	usedColor   = plotutil.DarkColors[2]
	budgetColor = color.Gray{Y: 190}
)

// chart is one PNG file of the report.
type chart struct {
	file  string
	drawn bool                        // false when Data has nothing to draw
	write func(Data, io.Writer) error // draws the chart as a PNG
}

// writeCharts writes each chart that has data and removes the files of
// those that have none.
func writeCharts(dir string, d Data) error {
	charts := []chart{
		{AllocationChartFile, hasAllocationChart(d), writeAllocationChart},
		{ProjectChartFile, hasProjectChart(d), writeProjectChart},
	}

	for _, c := range charts {
		path := filepath.Join(dir, c.file)
		if !c.drawn {
			if err := removeStale(path); err != nil {
				return err
			}
			continue
		}

		err := writeFileAtomic(path, func(w io.Writer) error { return c.write(d, w) })
		if err != nil {
			return fmt.Errorf("write chart %q: %w", path, err)
		}
	}

	return nil
}

// writeAllocationChart draws one line of allocated GPUs per model over
// minutes since the start. The legend sits to the right of the axes because
// a trace can have more models than fit over the lines.
func writeAllocationChart(d Data, w io.Writer) error {
	p := plot.New()
	p.Title.Text = "GPUs allocated by model"
	p.X.Label.Text = "Minutes since start"
	p.Y.Label.Text = "GPUs allocated"
	p.Add(plotter.NewGrid())

	legend := plot.NewLegend()
	legend.Top = true
	legend.Left = true

	samples := sortedSamples(d.Samples)
	for i, model := range modelNames(d) {
		line, err := plotter.NewLine(allocationPoints(samples, model))
		if err != nil {
			return fmt.Errorf("draw line of GPU model %q: %w", model, err)
		}

		line.Color = lineColor(i)
		line.Dashes = plotutil.Dashes(i / len(plotutil.DarkColors))
		line.Width = vg.Points(1.5)
		p.Add(line)
		legend.Add(model, line)
	}

	setAxisRanges(p)

	return drawWithSideLegend(p, legend, w)
}

func allocationPoints(samples []Sample, model string) plotter.XYs {
	points := make(plotter.XYs, len(samples))
	for i, sample := range samples {
		points[i].X = sample.At.Minutes()
		points[i].Y = float64(sample.AllocatedMilli[model]) / 1000
	}

	return points
}

// lineColor cycles through gonum's dark palette, which stays readable on a
// white background. Models past the palette's length also get a dash
// pattern, so no two lines look the same.
func lineColor(i int) color.Color {
	return plotutil.DarkColors[i%len(plotutil.DarkColors)]
}

// setAxisRanges makes both axes start at 0, so that the height of a line or
// bar compares with the others. It leaves 5% of headroom above the highest
// value, so that no line runs along the frame, and gives a flat chart a
// nonzero range.
func setAxisRanges(p *plot.Plot) {
	p.X.Min = min(p.X.Min, 0)
	p.Y.Min = 0
	p.Y.Max *= 1.05

	if p.X.Max <= p.X.Min {
		p.X.Max = p.X.Min + 1
	}

	if p.Y.Max <= p.Y.Min {
		p.Y.Max = p.Y.Min + 1
	}

	p.Y.Tick.Marker = groupedTicks{}
}

// groupedTicks are gonum's default ticks with commas in the labels, as in
// the tables of report.md.
type groupedTicks struct{}

func (groupedTicks) Ticks(low, high float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(low, high)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = formatTrimmed(ticks[i].Value, 2)
		}
	}

	return ticks
}

// drawWithSideLegend draws p on the left of a PNG canvas and legend on the
// right, then writes the PNG to w.
func drawWithSideLegend(p *plot.Plot, legend plot.Legend, w io.Writer) error {
	canvas, err := draw.NewFormattedCanvas(chartWidth, chartHeight, "png")
	if err != nil {
		return fmt.Errorf("create PNG canvas: %w", err)
	}

	padding := vg.Points(12)
	full := draw.Crop(draw.New(canvas), padding/2, -padding/2, padding/2, -padding/2)
	legend.Padding = vg.Points(4)
	legendWidth := legend.Rectangle(full).Size().X + padding

	p.Draw(draw.Crop(full, 0, -legendWidth, 0, 0))

	// The top offset lines the first entry up with the top of the axes,
	// below the title.
	titleHeight := p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding
	legend.Draw(draw.Crop(full, full.Size().X-legendWidth+padding/2, 0, 0, -titleHeight-padding))

	_, err = canvas.WriteTo(w)
	return err
}

// writeProjectChart draws, for each project, a bar of GPU-hours used beside
// a bar of its budget.
func writeProjectChart(d Data, w io.Writer) error {
	projects := sortedProjects(d.Projects)
	names := make([]string, len(projects))
	used := make(plotter.Values, len(projects))
	budget := make(plotter.Values, len(projects))
	for i, project := range projects {
		names[i] = project.Project
		used[i] = finiteOrZero(project.GPUHours)
		budget[i] = finiteOrZero(project.BudgetGPUHours)
	}

	width := barWidth(len(projects))
	usedBars, err := newBars(used, width, usedColor, -width/2)
	if err != nil {
		return fmt.Errorf("draw bars of GPU-hours used: %w", err)
	}

	budgetBars, err := newBars(budget, width, budgetColor, width/2)
	if err != nil {
		return fmt.Errorf("draw bars of GPU-hour budgets: %w", err)
	}

	p := plot.New()
	p.Title.Text = "GPU-hours used and budget by project"
	p.X.Label.Text = "Project"
	p.Y.Label.Text = "GPU-hours"

	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	p.Add(grid, usedBars, budgetBars)
	p.NominalX(names...)
	setAxisRanges(p)

	// Half a slot on each side lets the grid span the outer bars too.
	p.X.Min = -0.5
	p.X.Max = float64(len(projects)) - 0.5
	slantLongLabels(p, names)

	legend := plot.NewLegend()
	legend.Top = true
	legend.Left = true
	legend.Add("Used", usedBars)
	legend.Add("Budget", budgetBars)

	return drawWithSideLegend(p, legend, w)
}

// slantLongLabels turns the project names 30 degrees when the widest one
// does not fit its slot on the axis, so that neighbors do not overlap.
func slantLongLabels(p *plot.Plot, names []string) {
	widest := vg.Length(0)
	for _, name := range names {
		widest = max(widest, p.X.Tick.Label.Width(name))
	}

	if widest < slotWidth(len(names))*0.9 {
		return
	}

	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YTop
}

// finiteOrZero returns v, or 0 for NaN and infinities, which gonum's
// plotters reject. The report's table prints such a value as n/a, so a bad
// figure costs one bar and not the whole report.
func finiteOrZero(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}

	return v
}

// slotWidth estimates the axis length of one project: the chart is 9
// inches wide, and the axis gets about 7 of them after the tick labels and
// the legend.
func slotWidth(projects int) vg.Length {
	return 7 * vg.Inch / vg.Length(projects)
}

// barWidth makes two bars fill 70% of a project's slot, which leaves a gap
// between projects, and caps a bar at half an inch.
func barWidth(projects int) vg.Length {
	return min(vg.Inch/2, slotWidth(projects)*0.35)
}

func newBars(values plotter.Values, width vg.Length, fill color.Color, offset vg.Length) (*plotter.BarChart, error) {
	bars, err := plotter.NewBarChart(values, width)
	if err != nil {
		return nil, err
	}

	bars.Color = fill
	bars.LineStyle.Width = 0
	bars.Offset = offset
	return bars, nil
}
