package bench

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Machine describes where the numbers were measured.
type Machine struct {
	Hostname        string
	Cores           int
	CPUModel        string
	MemoryGiB       float64
	GoVersion       string
	PostgresVersion string
	Start           time.Time
	LoadStart       string // /proc/loadavg's three averages at the start
	LoadEnd         string
}

// DescribeMachine reads the host's cores, memory and load, and the server's version.
func DescribeMachine(ctx context.Context, pool *pgxpool.Pool) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), Start: time.Now(),
		CPUModel: cpuModel(), MemoryGiB: memoryGiB(), LoadStart: LoadAverage()}
	m.Hostname, _ = os.Hostname()
	if err := pool.QueryRow(ctx, "SELECT 'PostgreSQL ' || current_setting('server_version')").
		Scan(&m.PostgresVersion); err != nil {
		m.PostgresVersion = "PostgreSQL (version unknown: " + err.Error() + ")"
	}
	return m
}

// LoadAverage returns the 1, 5 and 15 minute load averages from /proc/loadavg.
func LoadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	fields := strings.Fields(string(raw))
	if len(fields) < 3 {
		return "unknown"
	}
	return strings.Join(fields[:3], ", ")
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		key, value, ok := strings.Cut(scanner.Text(), ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU"
}

func memoryGiB() float64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kib, _ := strconv.ParseFloat(fields[1], 64)
			return kib / (1 << 20)
		}
	}
	return 0
}
