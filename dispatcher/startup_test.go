package dispatcher_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/store"
)

// TestRunWaitsOutDatabaseOutageAtStart starts the dispatcher while its database cannot be
// reached, as on a replica that takes the Lease while PostgreSQL restarts. Run must retry
// its first sync rather than return, which would stop the whole daemon, and sync once the
// database is back.
func TestRunWaitsOutDatabaseOutageAtStart(t *testing.T) {
	databaseURL := pgtest.NewDatabase(t)
	parsed, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(parsed.Path, "/")
	renameDatabase(t, name, name+"_away")
	t.Cleanup(func() { tryRenameDatabase(t, name+"_away", name) }) // so that pgtest can drop it
	pool, err := pgxpool.New(context.Background(), databaseURL)    // connects lazily
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	d := dispatcher.New(daemontest.Kube.Clientset, store.New(pool), dispatcher.Config{ResyncInterval: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while the database was away, want it to keep retrying", err)
	case <-time.After(3 * time.Second):
	}
	if d.Synced() {
		t.Fatal("the dispatcher reports synced without its database")
	}

	renameDatabase(t, name+"_away", name)
	deadline := time.Now().Add(wait)
	for !d.Synced() {
		if time.Now().After(deadline) {
			t.Fatalf("the dispatcher did not sync within %s of the database's return", wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after its context ended, want nil", err)
	}
}

// renameDatabase renames a database that has no open connections.
func renameDatabase(t *testing.T, from, to string) {
	t.Helper()
	if err := tryRenameDatabase(t, from, to); err != nil {
		t.Fatal(err)
	}
}

func tryRenameDatabase(t *testing.T, from, to string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.Shared(t).URL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	sql := "ALTER DATABASE " + pgx.Identifier{from}.Sanitize() + " RENAME TO " + pgx.Identifier{to}.Sanitize()
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("rename database %s to %s: %w", from, to, err)
	}
	return nil
}
