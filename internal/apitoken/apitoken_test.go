package apitoken

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
	"github.com/gatehouse-sso/gatehouse/internal/store/sqlstore"
)

// countingStore is the real SQLite store, counting token lookups so the
// test can tell what reached it.
type countingStore struct {
	store.Store
	mu      sync.Mutex
	lookups int
}

func (c *countingStore) GetAPITokenByHash(ctx context.Context, h string) (model.APIToken, error) {
	c.mu.Lock()
	c.lookups++
	c.mu.Unlock()
	return c.Store.GetAPITokenByHash(ctx, h)
}

func (c *countingStore) count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.lookups }

func openStore(t *testing.T) *countingStore {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "t.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Now().UTC()
	if err := st.CreateUser(t.Context(), model.User{ID: "u1", Username: "alice", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return &countingStore{Store: st}
}

func TestCreateVerifyRevoke(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	st := openStore(t)
	s := New(st, Options{Key: []byte("k0123456789abcdef0123456789abcde"), Now: func() time.Time { return now }})
	ctx := t.Context()

	secret, tok, err := s.Create(ctx, "u1", "grafana", model.TokenAPI, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "gh_") || strings.Contains(tok.Hash, secret) || tok.Hash == "" {
		t.Fatalf("secret %q, record %+v", secret, tok)
	}
	stored, err := st.ListAPITokens(ctx, "u1")
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored tokens: %v %v", stored, err)
	}
	if strings.Contains(stored[0].Hash, secret[3:]) || strings.Contains(stored[0].Name+stored[0].ID, secret[3:]) {
		t.Fatal("the store holds the secret")
	}
	if got, err := s.Verify(ctx, secret); err != nil || got.UserID != "u1" {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	n := st.count()
	if _, ok := s.Cached(secret); !ok {
		t.Fatal("not cached after a successful Verify")
	}
	if _, err := s.Verify(ctx, secret); err != nil || st.count() != n {
		t.Fatalf("cached Verify queried the store (%d → %d)", n, st.count())
	}

	for _, bad := range []string{"", "gh_", "gh_" + strings.Repeat("A", 54), secret[:len(secret)-1] + "x", "Bearer " + secret, "ghp_" + secret[3:]} {
		if _, err := s.Verify(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if st.count() != n {
		t.Fatal("malformed or forged secrets reached the store")
	}

	if _, err := s.Revoke(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, secret); !errors.Is(err, ErrInvalid) {
		t.Fatalf("revoked token: %v", err)
	}

	pw, _, err := s.Create(ctx, "u1", "scraper", model.TokenAppPassword, 0)
	if err != nil || !strings.HasPrefix(pw, "ghp_") {
		t.Fatalf("app password %q, %v", pw, err)
	}
	now = now.Add(1000 * time.Hour)
	if _, err := s.Verify(ctx, pw); err != nil {
		t.Fatalf("a token without expiry expired: %v", err)
	}
	short, _, _ := s.Create(ctx, "u1", "short", model.TokenAPI, time.Minute)
	now = now.Add(2 * time.Minute)
	if _, err := s.Verify(ctx, short); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expired token: %v", err)
	}
}
