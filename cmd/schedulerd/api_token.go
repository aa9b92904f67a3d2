package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

// runToken is `schedulerd token create|list|revoke`. It works on the database directly, not
// through the API, so that the first admin token can be made before any token exists.
// Every argument is checked before it connects, and each action has only its own flags.
func runToken(ctx context.Context, env *environment, args []string) error {
	action, rest, err := subcommand(args, "token", "create", "list", "revoke")
	if err != nil {
		return err
	}
	fs := newFlagSet(env, "token "+action)
	out := output{w: env.stdout}
	switch action {
	case "create":
		return runTokenCreate(ctx, env, fs, rest, out)
	case "list":
		if _, err := parseCommand(fs, rest, &out, 0, "token list"); err != nil {
			return err
		}
		return withStore(ctx, env, func(db *store.Store) error { return listTokens(ctx, db, out) })
	}
	positional, err := parseCommand(fs, rest, &out, 1, "token revoke TOKEN_ID")
	if err != nil {
		return err
	}
	id, err := uuid.Parse(positional[0])
	if err != nil {
		return usageError{fmt.Sprintf("invalid token id %q: want a UUID", positional[0])}
	}
	return withStore(ctx, env, func(db *store.Store) error { return revokeToken(ctx, env, db, id, out) })
}

// runTokenCreate is `token create`: it checks the request, then stores the token.
func runTokenCreate(ctx context.Context, env *environment, fs *flag.FlagSet, args []string, out output) error {
	name := fs.String("name", "", "who holds the token, as the audit log names them (required)")
	owner := fs.String("owner", "", "person or service account that holds the token (default: the name). "+
		"Give all tokens of one person the same owner, so that none of them decides that person's approvals")
	role := fs.String("role", "", "submitter, operator or admin (required)")
	projects := fs.String("projects", "", "comma-separated projects of a submitter token")
	ttl := fs.Duration("ttl", 0, "how long the token works, such as 720h; 0 for no expiry")
	if _, err := parseCommand(fs, args, &out, 0, "token create -name NAME -role ROLE [-owner OWNER] [-projects P,Q] [-ttl D]"); err != nil {
		return err
	}

	req := api.TokenRequest{Name: *name, Owner: *owner, Role: store.Role(*role), TTL: *ttl}
	if *projects != "" {
		req.Projects = strings.Split(*projects, ",")
	}
	if err := req.Validate(); err != nil {
		return usageError{err.Error()}
	}
	return withStore(ctx, env, func(db *store.Store) error { return createToken(ctx, db, req, out) })
}

// withStore opens the database for the length of one call of do.
func withStore(ctx context.Context, env *environment, do func(*store.Store) error) error {
	db, err := openStore(ctx, env, 2)
	if err != nil {
		return err
	}
	defer db.Close()
	return do(db)
}

func listTokens(ctx context.Context, db *store.Store, out output) error {
	tokens, err := db.ListTokens(ctx)
	if err != nil {
		return err
	}
	views := make([]tokenView, len(tokens))
	for i, t := range tokens {
		views[i] = viewToken(t, "")
	}
	return out.printValue(views, printTokens)
}

// revokeToken revokes a token and prints it. Revoking a revoked token succeeds without a
// change, as a repeated `job cancel` or `job submit` with the same key does, because the
// token no longer works either way. A note on stderr gives the time of the first revoke.
func revokeToken(ctx context.Context, env *environment, db *store.Store, id uuid.UUID, out output) error {
	now := time.Now()
	revoked, err := db.RevokeToken(ctx, id, now, &store.Audit{Actor: cliActor(), Action: "token.revoke", At: now})
	var already *store.RevokedTokenError
	if errors.As(err, &already) {
		fmt.Fprintf(env.stderr, "token %s was already revoked at %s; nothing changed\n",
			id, orDash(already.Token.RevokedAt, showTime))
		revoked, err = already.Token, nil
	}
	if err != nil {
		return err
	}
	return out.printValue([]tokenView{viewToken(revoked, "")}, printTokens)
}

// tokenView is a token as -o json shows it.
type tokenView struct {
	ID        uuid.UUID  `json:"id"`
	Name      string     `json:"name"`
	Owner     string     `json:"owner"`
	Role      store.Role `json:"role"`
	Projects  []string   `json:"projects"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Secret is set only by create.
	Secret string `json:"secret,omitempty"`
}

func viewToken(t store.Token, secret string) tokenView {
	return tokenView{ID: t.ID, Name: t.Name, Owner: t.Owner, Role: t.Role, Projects: t.Projects,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, Secret: secret}
}

// createToken stores a token and prints its secret, which is never shown again.
func createToken(ctx context.Context, db *store.Store, req api.TokenRequest, out output) error {
	token, secret, err := api.CreateToken(ctx, db, req, time.Now(), cliActor())
	if errors.Is(err, store.ErrNotFound) {
		return missingProjectError(ctx, db, req.Projects, err)
	}
	if err != nil {
		return err
	}
	return out.printValue(viewToken(token, secret), func(tw *tabwriter.Writer, _ any) {
		fmt.Fprintf(tw, "id\t%s\n", token.ID)
		fmt.Fprintf(tw, "name\t%s\n", token.Name)
		fmt.Fprintf(tw, "owner\t%s\n", token.Owner)
		fmt.Fprintf(tw, "role\t%s\n", token.Role)
		if len(token.Projects) > 0 {
			fmt.Fprintf(tw, "projects\t%s\n", strings.Join(token.Projects, ", "))
		}
		fmt.Fprintf(tw, "expires\t%s\n", orDash(token.ExpiresAt, showTime))
		fmt.Fprintf(tw, "secret\t%s\n", secret)
		fmt.Fprintln(tw, "\nThe secret is shown only now: store it, then use it as SCHEDULERD_TOKEN.")
	})
}

// missingProjectError returns an error naming the first of projects that does not exist,
// or err when all exist. It looks them up again because api.CreateToken names the
// project only inside its error text.
func missingProjectError(ctx context.Context, db *store.Store, projects []string, err error) error {
	for _, p := range projects {
		if _, getErr := db.GetProject(ctx, p); errors.Is(getErr, store.ErrNotFound) {
			return fmt.Errorf("project %q does not exist; create it first with 'schedulerd project create'", p)
		}
	}
	return err
}

// cliActor names the person at the terminal in the audit log.
func cliActor() store.Actor {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return store.Actor{Name: "cli:" + name, Role: store.RoleAdmin}
}

func printTokens(tw *tabwriter.Writer, v any) {
	fmt.Fprintln(tw, "ID\tNAME\tOWNER\tROLE\tPROJECTS\tCREATED\tEXPIRES\tREVOKED")
	for _, t := range v.([]tokenView) {
		projects := strings.Join(t.Projects, ",")
		if projects == "" {
			projects = "all"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Owner, t.Role, projects,
			showTime(t.CreatedAt), orDash(t.ExpiresAt, showTime), orDash(t.RevokedAt, showTime))
	}
}
