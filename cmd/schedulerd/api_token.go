package main

import (
	"context"
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
// Every argument is checked before it connects.
func runToken(ctx context.Context, env *environment, args []string) error {
	action, rest, err := subcommand(args, "token", "create", "list", "revoke")
	if err != nil {
		return err
	}
	fs := newFlagSet(env, "token "+action)
	name := fs.String("name", "", "with create: who holds the token, as the audit log names them (required)")
	role := fs.String("role", "", "with create: submitter, operator or admin (required)")
	projects := fs.String("projects", "", "with create: comma-separated projects of a submitter token")
	ttl := fs.Duration("ttl", 0, "with create: how long the token works, such as 720h; 0 for no expiry")
	out := output{w: env.stdout}
	usage := map[string]string{"create": "token create -name NAME -role ROLE [-projects P,Q] [-ttl D]",
		"list": "token list", "revoke": "token revoke TOKEN_ID"}[action]
	wantArgs := 0
	if action == "revoke" {
		wantArgs = 1
	}
	positional, err := parseCommand(fs, rest, &out, wantArgs, usage)
	if err != nil {
		return err
	}

	switch action {
	case "create":
		req := api.TokenRequest{Name: *name, Role: store.Role(*role), TTL: *ttl}
		if *projects != "" {
			req.Projects = strings.Split(*projects, ",")
		}
		if err := req.Validate(); err != nil {
			return usageError{err.Error()}
		}
		return withStore(ctx, env, func(db *store.Store) error { return createToken(ctx, db, req, out) })
	case "list":
		return withStore(ctx, env, func(db *store.Store) error { return listTokens(ctx, db, out) })
	}
	id, err := uuid.Parse(positional[0])
	if err != nil {
		return usageError{fmt.Sprintf("invalid token id %q: want a UUID", positional[0])}
	}
	return withStore(ctx, env, func(db *store.Store) error { return revokeToken(ctx, db, id, out) })
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

func revokeToken(ctx context.Context, db *store.Store, id uuid.UUID, out output) error {
	now := time.Now()
	revoked, err := db.RevokeToken(ctx, id, now, &store.Audit{Actor: cliActor(), Action: "token.revoke", At: now})
	if err != nil {
		return err
	}
	return out.printValue([]tokenView{viewToken(revoked, "")}, printTokens)
}

// tokenView is a token as -o json shows it.
type tokenView struct {
	ID        uuid.UUID  `json:"id"`
	Name      string     `json:"name"`
	Role      store.Role `json:"role"`
	Projects  []string   `json:"projects"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// Secret is set only by create.
	Secret string `json:"secret,omitempty"`
}

func viewToken(t store.Token, secret string) tokenView {
	return tokenView{ID: t.ID, Name: t.Name, Role: t.Role, Projects: t.Projects, CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, Secret: secret}
}

// createToken stores a token and prints its secret, which is never shown again.
func createToken(ctx context.Context, db *store.Store, req api.TokenRequest, out output) error {
	token, secret, err := api.CreateToken(ctx, db, req, time.Now(), cliActor())
	if err != nil {
		return err
	}
	return out.printValue(viewToken(token, secret), func(tw *tabwriter.Writer, _ any) {
		fmt.Fprintf(tw, "id\t%s\n", token.ID)
		fmt.Fprintf(tw, "name\t%s\n", token.Name)
		fmt.Fprintf(tw, "role\t%s\n", token.Role)
		if len(token.Projects) > 0 {
			fmt.Fprintf(tw, "projects\t%s\n", strings.Join(token.Projects, ", "))
		}
		fmt.Fprintf(tw, "expires\t%s\n", orDash(token.ExpiresAt, showTime))
		fmt.Fprintf(tw, "secret\t%s\n", secret)
		fmt.Fprintln(tw, "\nThe secret is shown only now: store it, then use it as SCHEDULERD_TOKEN.")
	})
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
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tPROJECTS\tCREATED\tEXPIRES\tREVOKED")
	for _, t := range v.([]tokenView) {
		projects := strings.Join(t.Projects, ",")
		if projects == "" {
			projects = "all"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, projects, showTime(t.CreatedAt),
			orDash(t.ExpiresAt, showTime), orDash(t.RevokedAt, showTime))
	}
}
