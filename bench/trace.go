package bench

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// CallTimes adds up, per kind of call, how many calls were made and how long they took
// from the caller's side: SQL statements through a pgx tracer and Kubernetes requests
// through a client transport. It explains where a measurement's wall-clock time goes when
// its CPU profile shows the process mostly waiting.
type CallTimes struct {
	mu    sync.Mutex
	calls map[string]*callTotal
}

type callTotal struct {
	count int
	total time.Duration
}

func (c *CallTimes) add(kind string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]*callTotal{}
	}
	t := c.calls[kind]
	if t == nil {
		t = &callTotal{}
		c.calls[kind] = t
	}
	t.count++
	t.total += d
}

// String lists the kinds of call by total time, longest first.
func (c *CallTimes) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds := make([]string, 0, len(c.calls))
	for k := range c.calls {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int { return int(c.calls[b].total - c.calls[a].total) })
	var b strings.Builder
	fmt.Fprintf(&b, "%10s %8s %10s  %s\n", "total s", "calls", "mean ms", "call")
	for _, k := range kinds {
		t := c.calls[k]
		fmt.Fprintf(&b, "%10.2f %8d %10.2f  %s\n", t.total.Seconds(), t.count,
			float64(t.total.Microseconds())/1000/float64(t.count), k)
	}
	return b.String()
}

type traceStartKey struct{}

type traceStart struct {
	at   time.Time
	kind string
}

// TraceQueryStart implements pgx.QueryTracer.
func (c *CallTimes) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, traceStartKey{}, traceStart{at: time.Now(), kind: "SQL " + sqlKind(data.SQL)})
}

// TraceQueryEnd implements pgx.QueryTracer.
func (c *CallTimes) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if s, ok := ctx.Value(traceStartKey{}).(traceStart); ok {
		c.add(s.kind, time.Since(s.at))
	}
}

type batchClockKey struct{}

// batchClock is when the batch's previous result arrived.
type batchClock struct{ last time.Time }

// TraceBatchStart implements pgx.BatchTracer.
func (c *CallTimes) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return context.WithValue(ctx, batchClockKey{}, &batchClock{last: time.Now()})
}

// TraceBatchQuery implements pgx.BatchTracer. The statements of a batch travel together, so
// each one is charged the time from the previous result to its own: the first one carries
// the round trip.
func (c *CallTimes) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	if clock, ok := ctx.Value(batchClockKey{}).(*batchClock); ok {
		now := time.Now()
		c.add("SQL in batch "+sqlKind(data.SQL), now.Sub(clock.last))
		clock.last = now
	}
}

// TraceBatchEnd implements pgx.BatchTracer.
func (c *CallTimes) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// sqlKind shortens a statement to its first 70 characters on one line.
func sqlKind(sql string) string {
	s := strings.Join(strings.Fields(sql), " ")
	if len(s) > 70 {
		s = s[:70] + "..."
	}
	return s
}

// WrapTransport returns a transport that times every request by method and resource.
func (c *CallTimes) WrapTransport(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Query().Get("watch") == "true" {
			return rt.RoundTrip(req)
		}
		start := time.Now()
		resp, err := rt.RoundTrip(req)
		c.add("API "+req.Method+" "+resourceOf(req.URL.Path), time.Since(start))
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// resourceOf keeps the resource of an API path and drops namespace and object names:
// /api/v1/namespaces/ns/pods/name becomes pods/NAME.
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i < len(parts); i++ {
		if parts[i] == "namespaces" && i+2 < len(parts) {
			rest := parts[i+2:]
			if len(rest) > 1 {
				return rest[0] + "/NAME"
			}
			return rest[0]
		}
	}
	return parts[len(parts)-1]
}
