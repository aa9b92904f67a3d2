package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/schedulerd/schedulerd/store"
)

// tokenPrefix starts every secret, so that a leaked one is easy to recognise in logs and
// by secret scanners.
const tokenPrefix = "sdt_"

// NewSecret returns a new random token secret and the SHA-256 under which it is stored.
// The secret carries 256 random bits.
func NewSecret() (secret string, sum []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("generate token secret: %w", err)
	}
	secret = tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret), nil
}

// HashSecret returns the SHA-256 of a token secret, the only form the database stores.
// A plain hash is enough: the secret is 256 random bits, not a password a person chose.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// ValidRole reports whether role is one of the three roles.
func ValidRole(role store.Role) bool {
	_, ok := roleRank[role]
	return ok
}

// roleRank orders the roles: each may do everything the ones below it may, and a
// submitter only within the projects on its token.
var roleRank = map[store.Role]int{store.RoleSubmitter: 1, store.RoleOperator: 2, store.RoleAdmin: 3}

// principal is the authenticated caller of one request.
type principal struct {
	token store.Token
}

func (p *principal) hasRole(least store.Role) bool {
	return roleRank[p.token.Role] >= roleRank[least]
}

// mayUseProject reports whether the caller may act on the project's jobs.
func (p *principal) mayUseProject(project string) bool {
	return p.hasRole(store.RoleOperator) || slices.Contains(p.token.Projects, project)
}

// hideOtherProject turns a successful read by id into store.ErrNotFound when the caller may
// not act on the resource's project, so that other projects' ids and names stay hidden.
func (p *principal) hideOtherProject(err error, project string) error {
	if err == nil && !p.mayUseProject(project) {
		return store.ErrNotFound
	}
	return err
}

func (p *principal) requireProject(project string) error {
	if p.mayUseProject(project) {
		return nil
	}
	return forbidden("the token %q may not act on project %q", p.token.Name, project)
}

// isStaff reports whether the caller's actions on jobs are admin actions, which the audit
// log records.
func (p *principal) isStaff() bool { return p.hasRole(store.RoleOperator) }

func (p *principal) actor() store.Actor {
	id := p.token.ID
	return store.Actor{TokenID: &id, Name: p.token.Name, Owner: p.token.Owner, Role: p.token.Role}
}

// audit returns the audit request of an admin action taken now.
func (s *Server) audit(caller *principal, action string) *store.Audit {
	return &store.Audit{Actor: caller.actor(), Action: action, At: s.now()}
}

// staffAudit is audit for actions that only operators and admins have audited: a
// submitter's submission is routine, one of thousands a day, while an operator's may pass
// the project's priority tier. Job actions (cancel, pause, resume, priority) are audited
// for every role, because a submitter's cancel or priority change may undo an operator's.
// The store also reads the pauser from a job action's audit, and an operator's or admin's
// pause holds the job against a submitter's resume (store.PauseHeldError).
func (s *Server) staffAudit(caller *principal, action string) *store.Audit {
	if !caller.isStaff() {
		return nil
	}
	return s.audit(caller, action)
}

// authenticate finds the live token named by the Authorization header.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return nil, unauthorized("missing Authorization header; send 'Authorization: Bearer TOKEN'")
	}
	scheme, secret, ok := strings.Cut(header, " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, unauthorized("the Authorization header must be 'Bearer TOKEN'")
	}

	token, err := s.store.TokenByHash(r.Context(), HashSecret(secret), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauthorized("the bearer token is unknown, expired or revoked")
	}
	if err != nil {
		return nil, err
	}
	return &principal{token: token}, nil
}

func unauthorized(detail string) *Problem {
	return newProblem(TypeUnauthorized, http.StatusUnauthorized, "", detail)
}

// TokenRequest is a new token, as `schedulerd token create` makes it.
type TokenRequest struct {
	Name string
	// Owner is the person or service account that holds the token, and empty means Name.
	// All tokens of one holder need the same owner, because the approval check compares
	// owners and cannot tell that two owners are one person.
	Owner    string
	Role     store.Role
	Projects []string
	// TTL is how long the token works; 0 for no expiry.
	TTL time.Duration
}

// CreateToken stores a new token and returns it with its secret, which exists nowhere
// else: the caller must show it once. The creation is audited as actor's action.
func CreateToken(ctx context.Context, st *store.Store, req TokenRequest, now time.Time,
	actor store.Actor) (store.Token, string, error) {
	if err := req.Validate(); err != nil {
		return store.Token{}, "", err
	}
	for _, project := range req.Projects {
		if _, err := st.GetProject(ctx, project); err != nil {
			return store.Token{}, "", fmt.Errorf("check project of the token: %w", err)
		}
	}
	secret, sum, err := NewSecret()
	if err != nil {
		return store.Token{}, "", err
	}

	t := store.Token{Name: req.Name, Owner: req.Owner, Role: req.Role, Projects: req.Projects, CreatedAt: now}
	if req.TTL > 0 {
		expires := now.Add(req.TTL)
		t.ExpiresAt = &expires
	}
	audit := &store.Audit{Actor: actor, Action: "token.create", At: now}
	created, err := st.CreateToken(ctx, t, sum, audit)
	return created, secret, err
}

// Validate checks the request without the database: the CLI calls it before it connects.
func (req TokenRequest) Validate() error {
	switch {
	case strings.ContainsRune(req.Name, 0):
		return errors.New("token name " + nulDetail)
	case !validTokenName(req.Name):
		return fmt.Errorf("invalid token name %q: %s", req.Name, tokenNameRule)
	case strings.ContainsRune(req.Owner, 0):
		return errors.New("token owner " + nulDetail)
	case req.Owner != "" && !validTokenName(req.Owner):
		return fmt.Errorf("invalid token owner %q: %s", req.Owner, tokenNameRule)
	case !ValidRole(req.Role):
		return fmt.Errorf("invalid role %q: want submitter, operator or admin", req.Role)
	case req.Role == store.RoleSubmitter && len(req.Projects) == 0:
		return errors.New("a submitter token needs at least one project")
	case req.Role != store.RoleSubmitter && len(req.Projects) > 0:
		return fmt.Errorf("an %s token acts on every project; give projects only to submitter tokens", req.Role)
	case req.TTL < 0:
		return fmt.Errorf("token lifetime %s is negative", req.TTL)
	}
	for i, p := range req.Projects {
		if !projectID.MatchString(p) {
			return fmt.Errorf("invalid project id %q", p)
		}
		if slices.Contains(req.Projects[:i], p) {
			return fmt.Errorf("project %q is given twice", p)
		}
	}
	return nil
}

// tokenNameRule describes a valid token name or owner for error messages.
const tokenNameRule = "want 1 to 200 characters of UTF-8, not all spaces, without control characters " +
	"such as tab or newline"

// validTokenName reports whether name follows tokenNameRule. Names and owners are printed
// in the columns of token list, where a newline could forge a row.
func validTokenName(name string) bool {
	n := utf8.RuneCountInString(name)
	return utf8.ValidString(name) && n >= 1 && n <= 200 && strings.TrimSpace(name) != "" &&
		!strings.ContainsFunc(name, unicode.IsControl)
}
