// Package api is schedulerd's HTTP API for submitting jobs, for administering queues,
// quotas and projects, for the artifacts a run reports, and for reading the model registry
// and requesting and deciding its approvals. It decides who may do what (bearer tokens and
// their roles) and whether a request is valid, and writes the intent to the database
// through the store, with an audit record for every admin action. It never touches pods:
// the scheduler admits what it queued and the dispatcher stops the runs of jobs it
// cancelled, paused or drained.
package api

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// DefaultMaxBodyBytes caps a request body: a job config is at most 64 KiB
// (jobspec.MaxBytes), so this leaves room for tags and whitespace.
const DefaultMaxBodyBytes = 1 << 20

// Config holds the API's dependencies and limits.
type Config struct {
	Store *store.Store
	// Now returns the current time (time.Now). Drains, cancellations and token checks
	// read it.
	Now    func() time.Time
	Logger *slog.Logger
	// MaxBodyBytes caps a request body (DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Workflows is true when the daemon runs Temporal workflows, one per submitted job.
	// Without them, hpo jobs and configs with model or evaluation sections are rejected,
	// because nothing would run the search, the evaluation or the registration.
	Workflows bool
	// S3Configured is true when the daemon has an S3 endpoint or region. The workflows read
	// eval reports and model artifacts from S3: to evaluate a job, to rank an hpo search's
	// trials and to check a model before it is registered. With workflows but without S3 the
	// same jobs are rejected, because their workflows would wait for S3 until a restart.
	S3Configured bool
	// ArtifactURIPrefix, when set, is where every artifact of a project must be stored:
	// "{project}" in it stands for the project id, as in s3://checkpoints/{project}/.
	// Retention deletes what artifact rows name with the daemon's own S3 credentials, so
	// without it a submitter could have retention delete objects outside its project.
	ArtifactURIPrefix string
	// StarvationBound is the scheduler's starvation bound (scheduler.DefaultStarvationBound).
	// Explain needs it to tell which older jobs hold their project's budget.
	StarvationBound time.Duration
}

// Server serves the API. It is an http.Handler and safe for concurrent use.
type Server struct {
	cfg   Config
	store *store.Store
	mux   *http.ServeMux
}

// New returns the API handler.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.StarvationBound <= 0 {
		cfg.StarvationBound = scheduler.DefaultStarvationBound
	}

	s := &Server{cfg: cfg, store: cfg.Store, mux: http.NewServeMux()}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.method+" "+rt.pattern, s.handler(rt))
	}
	s.mux.HandleFunc("/", s.noRoute)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Route is one endpoint as registered on the mux.
type Route struct {
	Method, Pattern string
	// Role is the least role that may call it; empty when it needs no token.
	Role store.Role
}

// Routes lists every registered endpoint, for documentation and tests.
func (s *Server) Routes() []Route {
	var routes []Route
	for _, rt := range s.routes() {
		routes = append(routes, Route{Method: rt.method, Pattern: rt.pattern, Role: rt.role})
	}
	return routes
}

// route is one endpoint. role is the least role that may call it; an empty role needs no
// token.
type route struct {
	method, pattern string
	role            store.Role
	handle          func(w http.ResponseWriter, r *http.Request, caller *principal) error
}

// queryRoutes are the routes that read query parameters and check them themselves. Every
// other route rejects any query parameter, so that a misspelt filter or option is an error
// rather than ignored.
var queryRoutes = []string{"GET /v1/jobs", "GET /v1/approvals", "GET /v1/audit"}

func (s *Server) routes() []route {
	return []route{
		{"GET", "/openapi.json", "", s.getOpenAPI},

		{"GET", "/v1/projects", store.RoleSubmitter, s.listProjects},
		{"POST", "/v1/projects", store.RoleAdmin, s.upsertProject},
		{"GET", "/v1/projects/{project}", store.RoleSubmitter, s.getProject},
		{"POST", "/v1/projects/{project}/jobs", store.RoleSubmitter, s.submitJob},
		{"GET", "/v1/projects/{project}/quota", store.RoleSubmitter, s.getQuota},
		{"PUT", "/v1/projects/{project}/quota", store.RoleAdmin, s.putQuota},
		{"PATCH", "/v1/projects/{project}/quota", store.RoleAdmin, s.patchQuota},

		{"GET", "/v1/jobs", store.RoleSubmitter, s.listJobs},
		{"GET", "/v1/jobs/{id}", store.RoleSubmitter, s.getJob},
		{"GET", "/v1/jobs/{id}/explain", store.RoleSubmitter, s.explainJob},
		{"POST", "/v1/jobs/{id}/cancel", store.RoleSubmitter, s.cancelJob},
		{"POST", "/v1/jobs/{id}/pause", store.RoleSubmitter, s.pauseJob},
		{"POST", "/v1/jobs/{id}/resume", store.RoleSubmitter, s.resumeJob},
		{"PATCH", "/v1/jobs/{id}/priority", store.RoleSubmitter, s.setJobPriority},

		{"GET", "/v1/queues", store.RoleSubmitter, s.listQueues},
		{"POST", "/v1/queues/{project}/drain", store.RoleOperator, s.drainQueue},
		{"POST", "/v1/queues/{project}/undrain", store.RoleOperator, s.undrainQueue},
		{"POST", "/v1/queues/{project}/reprioritize", store.RoleOperator, s.reprioritizeQueue},

		{"POST", "/v1/runs/{run}/artifacts", store.RoleSubmitter, s.recordArtifact},

		{"GET", "/v1/projects/{project}/models/{model}/versions", store.RoleSubmitter, s.listModelVersions},
		{"GET", "/v1/model-versions/{id}", store.RoleSubmitter, s.getModelVersion},
		{"GET", "/v1/model-versions/{id}/lineage", store.RoleSubmitter, s.getLineage},

		{"GET", "/v1/approvals", store.RoleSubmitter, s.listApprovals},
		{"POST", "/v1/approvals", store.RoleSubmitter, s.requestPromotion},
		{"GET", "/v1/approvals/{id}", store.RoleSubmitter, s.getApproval},
		{"POST", "/v1/approvals/{id}/approve", store.RoleOperator, s.approve},
		{"POST", "/v1/approvals/{id}/reject", store.RoleOperator, s.reject},

		{"GET", "/v1/audit", store.RoleAdmin, s.listAudit},
	}
}

// Guard puts next behind the API's token check, for endpoints outside the API such as
// /metrics: a GET needs a token of role or a higher one, and a refused request gets the
// API's problem document and log line. Like the API's endpoints, it rejects query
// parameters, since next reads none.
func (s *Server) Guard(role store.Role, pattern string, next http.Handler) http.Handler {
	return s.handler(route{method: "GET", pattern: pattern, role: role,
		handle: func(w http.ResponseWriter, r *http.Request, _ *principal) error {
			next.ServeHTTP(w, r)
			return nil
		}})
}

// handler wraps a route with what every request gets: a request id, recovery from panics,
// authentication and the role check, errors as problem documents, and a log line.
func (s *Server) handler(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.cfg.Now()
		rec := &statusRecorder{ResponseWriter: w}
		requestID := newRequestID()
		rec.Header().Set("X-Request-Id", requestID)
		log := s.cfg.Logger.With("request_id", requestID, "method", r.Method, "path", r.URL.Path)

		defer func() {
			if v := recover(); v != nil {
				log.Error("API handler panicked", "panic", v)
				if rec.status == 0 {
					p := internalProblem()
					p.RequestID = requestID
					writeProblem(rec, p)
				}
			}
			log.Debug("API request served", "status", rec.status, "duration", s.cfg.Now().Sub(start))
		}()

		err := s.serve(rec, r, rt)
		if err == nil {
			return
		}
		p, internal := problemFor(err)
		switch {
		case internal:
			log.Error("API request failed", "err", err)
		case p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden:
			// Logged at Info, the default level, so that a guessed or leaked token shows
			// in the log. The metrics also count them by code.
			log.Info("API request refused", "status", p.Status, "remote_addr", r.RemoteAddr, "reason", p.Detail)
		}
		p.RequestID = requestID
		p.Instance = r.URL.Path
		writeProblem(rec, p)
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route) error {
	// A path wildcard, such as a project id, goes to the database as text.
	if strings.ContainsRune(r.URL.Path, 0) {
		return invalid("path", "the path %s", nulDetail)
	}
	if !utf8.ValidString(r.URL.Path) {
		return invalid("path", "the path %s", notUTF8Detail)
	}
	if rt.role == "" {
		return handleRoute(w, r, rt, nil)
	}
	caller, err := s.authenticate(r)
	if err != nil {
		return err
	}
	if !caller.hasRole(rt.role) {
		return forbidden("this action needs the %s role; the token %q has the %s role",
			rt.role, caller.token.Name, caller.token.Role)
	}
	return handleRoute(w, r, rt, caller)
}

// handleRoute calls the route's handler, after rejecting a query string that the route does
// not read. It runs after authentication, so an unauthenticated request gets 401 first.
func handleRoute(w http.ResponseWriter, r *http.Request, rt route, caller *principal) error {
	if !slices.Contains(queryRoutes, rt.method+" "+rt.pattern) {
		if _, err := parseQuery(r, nil, nil); err != nil {
			return err
		}
	}
	return rt.handle(w, r, caller)
}

// noRoute handles paths that no route matches with a problem document: 405 when the path
// exists with another method, 404 otherwise.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, method)
		}
	}
	if len(allowed) == 0 {
		writeProblem(w, notFound("no API endpoint at %s; GET /openapi.json lists them", r.URL.Path))
		return
	}
	p := newProblem(TypeMethodNotAllowed, http.StatusMethodNotAllowed, "",
		r.Method+" is not allowed on "+r.URL.Path)
	for i, m := range allowed {
		if i > 0 {
			p.allow += ", "
		}
		p.allow += m
	}
	writeProblem(w, p)
}

// statusRecorder remembers the status sent, for the log and for the panic handler.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func newRequestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// now returns the API's clock in UTC.
func (s *Server) now() time.Time { return s.cfg.Now().UTC() }
