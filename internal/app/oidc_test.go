package app

import (
	"io"
	"log/slog"
	"testing"

	"github.com/gatehouse-sso/gatehouse/internal/config"
)

func openWith(t *testing.T, dir, yaml string) *App {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "test.yaml", func(k string) (string, bool) {
		if k == "GATEHOUSE_DATA_DIR" {
			return dir, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// A server replica running an older configuration must not delete clients
// that a newer one declared; the worker (or a single all-in-one process)
// removes undeclared clients.
func TestOIDCClientDeletionIsLeftToTheWorker(t *testing.T) {
	dir := t.TempDir()
	withWiki := `
apps:
  - slug: wiki
    oidc:
      client_id: wiki
      client_secret: a-long-enough-client-secret-for-tests
      redirect_uris: ["https://wiki.example.org/cb"]
`
	a := openWith(t, dir, withWiki)
	if err := a.ReconcileOIDCClients(t.Context()); err != nil {
		t.Fatal(err)
	}
	_ = a.Close()

	old := openWith(t, dir, "apps: []\n")
	count := func() int {
		cs, err := old.Store.ListOIDCClients(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	old.role = RoleServer
	if err := old.ReconcileOIDCClients(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("a server replica deleted a client it does not declare (%d left)", n)
	}
	old.role = RoleWorker
	if err := old.ReconcileOIDCClients(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("the worker kept an undeclared client (%d left)", n)
	}
}
