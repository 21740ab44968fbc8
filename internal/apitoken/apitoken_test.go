package apitoken

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

type memStore struct {
	mu      sync.Mutex
	byHash  map[string]model.APIToken
	lookups int
}

func (m *memStore) CreateAPIToken(_ context.Context, t model.APIToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byHash[t.Hash] = t
	return nil
}
func (m *memStore) GetAPITokenByHash(_ context.Context, h string) (model.APIToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	t, ok := m.byHash[h]
	if !ok {
		return t, store.ErrNotFound
	}
	return t, nil
}
func (m *memStore) ListAPITokens(context.Context, string) ([]model.APIToken, error) { return nil, nil }
func (m *memStore) DeleteAPIToken(_ context.Context, id string) (model.APIToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, t := range m.byHash {
		if t.ID == id {
			delete(m.byHash, h)
			return t, nil
		}
	}
	return model.APIToken{}, store.ErrNotFound
}

func TestCreateVerifyRevoke(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	st := &memStore{byHash: map[string]model.APIToken{}}
	s := New(st, Options{Key: []byte("k0123456789abcdef0123456789abcde"), Now: func() time.Time { return now }})
	ctx := t.Context()

	secret, tok, err := s.Create(ctx, "u1", "grafana", model.TokenAPI, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "gh_") || strings.Contains(tok.Hash, secret) || tok.Hash == "" {
		t.Fatalf("secret %q, record %+v", secret, tok)
	}
	for _, stored := range st.byHash {
		if strings.Contains(stored.Hash, secret[3:]) {
			t.Fatal("the store holds the secret")
		}
	}
	if got, err := s.Verify(ctx, secret); err != nil || got.UserID != "u1" {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	n := st.lookups
	if _, ok := s.Cached(secret); !ok {
		t.Fatal("not cached after a successful Verify")
	}
	if _, err := s.Verify(ctx, secret); err != nil || st.lookups != n {
		t.Fatalf("cached Verify queried the store (%d → %d)", n, st.lookups)
	}

	for _, bad := range []string{"", "gh_", "gh_" + strings.Repeat("A", 54), secret[:len(secret)-1] + "x", "Bearer " + secret, "ghp_" + secret[3:]} {
		if _, err := s.Verify(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if st.lookups != n {
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
