package report

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the current output")

var started = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fullData returns a fill-mode replay with every field set. Rows are out of
// order, and it contains a tier and a state outside the known lists, a tier
// without a started job, a model without capacity and a model without
// samples, so that the golden file shows the sorting and the fallbacks.
func fullData() Data {
	problems := make([]string, 53)
	for i := range problems {
		problems[i] = fmt.Sprintf("task openb-pod-%04d: GPU model A100 not found on any node", 17+i)
	}
	problems[1] = "task openb-pod-0018: requests 16 GPUs, more than the largest node (8 GPUs)"

	return Data{
		Title:    "Trace replay of openb_pod_list_default.csv",
		Command:  "schedulerd replay --trace openb_pod_list_default.csv --mode fill --load 1.25",
		Mode:     "fill",
		Speedup:  60,
		Load:     1.25,
		Started:  started,
		Finished: started.Add(2*time.Hour + 5*time.Minute + 30*time.Second),
		Tasks:    TaskCounts{Total: 8152, GPU: 7064, CPUOnlySkipped: 1088, Submitted: 7011, Problems: 53},
		Jobs: []StateCount{
			{"failed", 389}, {"completed", 6362}, {"eval_failed", 2}, {"cancelled", 10},
			{"preempted", 0}, {"running", 248},
		},
		Waits: []TierWait{
			{"low", 1801, 1795, 95 * time.Second, 42*time.Minute + 10*time.Second, 2*time.Hour + 1*time.Minute},
			{"critical", 412, 412, 300 * time.Millisecond, 2400 * time.Millisecond, 5*time.Second + 100*time.Millisecond},
			{"batch", 3, 3, 0, 200 * time.Microsecond, 999 * time.Millisecond},
			{"normal", 3500, 3500, 12 * time.Second, 9*time.Minute + 3*time.Second, 31 * time.Minute},
			{"high", 1295, 1295, 1500 * time.Millisecond, 48 * time.Second, 3*time.Minute + 20*time.Second},
			{"idle", 2, 0, 0, 0, 0},
		},
		Samples: []Sample{
			{At: 20 * time.Minute, AllocatedMilli: map[string]int64{"T4": 350500, "G2": 812000, "V100M16": 60000}},
			{At: 0, AllocatedMilli: map[string]int64{}},
			{At: 10 * time.Minute, AllocatedMilli: map[string]int64{"T4": 120250, "G2": 400000, "P100": 3000}},
			{At: 30 * time.Minute, AllocatedMilli: map[string]int64{"T4": 350500, "G2": 1010000, "V100M16": 48000}},
			{At: 40 * time.Minute, AllocatedMilli: map[string]int64{"T4": 300000, "G2": 990000}},
		},
		Capacity: map[string]int64{"T4": 404000, "G2": 1098000, "V100M16": 64000, "A10": 2000},
		Projects: []ProjectUsage{
			{"speech", 1402, 8120.456, 10000, 8115.2, 8116.93, 3, 4.5},
			{"nlp", 1398, 10250.5, 10000, 10249.99, 10251.2, 0, 0},
			{"vision", 1411, 5600, 9000, 5600, 5600, 0, 0},
			{"research", 1400, 0.004, 15000, 0, 0.0004, 0, 0},
			{"recsys", 1400, 14999.999, 15000, 15000, 15000.41, 1, 0},
		},
		Dispatch: DispatchRate{Pods: 7011, MeanPerSecond: 0.9312, PeakPerSecond: 14},
		Daemon:   ProcessUsage{PID: 4242, PeakRSSBytes: 537_214_976, CPUSeconds: 1234.56},
		Fill: []ModelShare{
			{"T4", 398000, 404000}, {"G2", 1098000, 1098000}, {"A10", 0, 2000}, {"V100M16", 63500, 64000},
		},
		FillStop: "task 7012 of 7064 (openb-pod-7028) found no room: no free capacity of the allowed GPU models",
		Problems: problems,
	}
}

func TestWriteGolden(t *testing.T) {
	cases := []struct {
		golden string
		data   Data
	}{
		{"golden.md", fullData()},
		{"empty.md", Data{}},
	}

	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			path, err := Write(t.TempDir(), c.data)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}

			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read report: %v", err)
			}

			goldenPath := filepath.Join("testdata", c.golden)
			if *update {
				if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
					t.Fatalf("update golden file: %v", err)
				}
			}

			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("read golden file (run go test -update to create it): %v", err)
			}

			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s; run go test ./replay/report -update and review the diff.\ngot:\n%s", path, goldenPath, got)
			}
		})
	}
}

func TestWriteReturnsReportPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "report")

	path, err := Write(dir, fullData())
	if err != nil {
		t.Fatalf("Write: %v", err)
	}

	if want := filepath.Join(dir, "report.md"); path != want {
		t.Errorf("path = %q, want %q", path, want)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read report directory: %v", err)
	}

	var names []string
	for _, entry := range entries {
		names = append(names, entry.Name())
	}

	want := "gpu-hours-by-project.png gpus-by-model.png report.md"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("directory contains %q, want %q (no temporary files left)", got, want)
	}
}

func TestWriteChartsArePNG(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, fullData()); err != nil {
		t.Fatalf("Write: %v", err)
	}

	for _, name := range []string{"gpus-by-model.png", "gpu-hours-by-project.png"} {
		t.Run(name, func(t *testing.T) {
			file, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				t.Fatalf("open chart: %v", err)
			}
			defer file.Close()

			img, err := png.Decode(file)
			if err != nil {
				t.Fatalf("decode PNG: %v", err)
			}

			size := img.Bounds().Size()
			if size.X != 864 {
				t.Errorf("width = %d pixels, want 864", size.X)
			}
			if size.Y != 432 {
				t.Errorf("height = %d pixels, want 432", size.Y)
			}

			info, err := file.Stat()
			if err != nil {
				t.Fatalf("stat chart: %v", err)
			}
			if info.Size() < 10_000 {
				t.Errorf("chart is %d bytes, want at least 10000 for a drawn chart", info.Size())
			}
			if info.Mode().Perm() != 0o644 {
				t.Errorf("mode = %v, want -rw-r--r--", info.Mode().Perm())
			}
		})
	}
}

func TestWriteEmptyData(t *testing.T) {
	dir := t.TempDir()

	path, err := Write(dir, Data{})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}

	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read report: %v", err)
	}
	text := string(got)

	if !strings.HasPrefix(text, "# Trace replay report\n") {
		t.Errorf("report does not start with the default title:\n%s", text)
	}

	for _, heading := range []string{
		"Run lengths at this speedup", "Jobs by end state", "Queue wait by priority tier", "GPUs allocated over time",
		"GPU-hours by project", "Dispatch rate", "Daemon process", "Problems",
	} {
		if !strings.Contains(text, "## "+heading+"\n\nnone\n") {
			t.Errorf("section %q does not say none", heading)
		}
	}

	fill := "## Fill mode: allocation where the fill stopped\n\nNot measured: "
	if !strings.Contains(text, fill) {
		t.Errorf("fill section of a run without a mode does not say it was not measured:\n%s", text)
	}

	if strings.Contains(text, ".png") {
		t.Errorf("report links a chart that was not drawn:\n%s", text)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read report directory: %v", err)
	}
	if len(entries) != 1 {
		t.Errorf("directory has %d entries, want only report.md", len(entries))
	}
}

func TestWriteRemovesStaleCharts(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, fullData()); err != nil {
		t.Fatalf("first Write: %v", err)
	}

	if _, err := Write(dir, Data{}); err != nil {
		t.Fatalf("second Write: %v", err)
	}

	for _, name := range []string{"gpus-by-model.png", "gpu-hours-by-project.png"} {
		_, err := os.Stat(filepath.Join(dir, name))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stat %s: err = %v, want not exist", name, err)
		}
	}
}

func TestWriteUnwritableDir(t *testing.T) {
	// A path below a regular file cannot be created even by root, unlike a
	// directory without write permission.
	file := filepath.Join(t.TempDir(), "not-a-directory")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatalf("create file: %v", err)
	}
	dir := filepath.Join(file, "report")

	path, err := Write(dir, fullData())
	if err == nil {
		t.Fatalf("Write returned %q and no error", path)
	}

	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the directory %q", err, dir)
	}

	var pathErr *fs.PathError
	if !errors.As(err, &pathErr) {
		t.Errorf("error %q does not wrap an *fs.PathError", err)
	}

	if path != "" {
		t.Errorf("path = %q, want empty on error", path)
	}
}

func TestWriteNonFiniteValues(t *testing.T) {
	d := fullData()
	d.Projects[0].GPUHours = math.Inf(1)
	d.Projects[1].BudgetGPUHours = math.NaN()

	path, err := Write(t.TempDir(), d)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}

	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read report: %v", err)
	}

	wantRows := []string{
		"| nlp | 1,398 | 10,250.50 | 10,249.99 | 10,251.20 | n/a | n/a | 0 | 0.00 |",
		"| speech | 1,402 | n/a | 8,115.20 | 8,116.93 | 10,000.00 | n/a | 3 | 4.50 |",
		"| Total | 7,011 | n/a | 38,965.19 | 38,968.54 | n/a | n/a | 4 | 4.50 |",
	}
	for _, row := range wantRows {
		if !strings.Contains(string(got), row+"\n") {
			t.Errorf("report lacks row %q:\n%s", row, got)
		}
	}
}
