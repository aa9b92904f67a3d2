package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestReadMemoryMax(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content string
		want          int64
		ok            bool
	}{
		{"limit", "1073741824\n", 1 << 30, true},
		{"no limit", "max\n", 0, false},
		{"garbage", "lots\n", 0, false},
	}
	for _, c := range cases {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, ok := readMemoryMax(path)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: readMemoryMax = %d, %v; want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}
	if _, ok := readMemoryMax(filepath.Join(dir, "missing")); ok {
		t.Error("missing file: readMemoryMax reported a limit, want none")
	}
}

func TestGCPercentDefaultUnlessGOGCSet(t *testing.T) {
	previous := debug.SetGCPercent(100)
	defer debug.SetGCPercent(previous)

	setGCPercent(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GC percent %d without GOGC, want %d", got, defaultGCPercent)
	}
	setGCPercent(func(name string) string {
		if name == "GOGC" {
			return "200"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent %d with GOGC set, want it left at 100", got)
	}
}
