// Command gen writes schedulerd's Grafana dashboards, as package dashboards defines them, to
// JSON files in the folder given by -out. `go generate ./dashboards` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/schedulerd/schedulerd/dashboards"
)

func main() {
	out := flag.String("out", ".", "folder to write the dashboard JSON files to")
	flag.Parse()
	for _, d := range dashboards.All() {
		data, err := dashboards.Render(d)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gen: render %s: %v\n", d.File, err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(*out, d.File), data, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "gen: %v\n", err)
			os.Exit(1)
		}
	}
}
