package session_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/session"
	"github.com/gatehouse-sso/gatehouse/internal/store"
	"github.com/gatehouse-sso/gatehouse/internal/store/sqlstore"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func secret() []byte                 { return []byte("0123456789abcdef0123456789abcdef") }
func openStore(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newUser(t *testing.T, st store.Store, id string) {
	t.Helper()
	now := time.Now().UTC()
	if err := st.CreateUser(context.Background(), model.User{ID: id, Username: id, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

func TestCreateLookupRevoke(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	newUser(t, st, "u1")
	c := newClock()
	m := session.NewManager(st, session.Options{Secret: secret(), Now: c.Now})

	tok, s, err := m.Create(ctx, "u1", model.LevelPassword, "10.0.0.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 64 {
		t.Fatalf("token length %d", len(tok))
	}
	if s.ID == tok || s.ID != session.IDOf(tok) {
		t.Fatal("the store key must be the token's hash, never the token")
	}
	got, err := m.Lookup(ctx, tok)
	if err != nil || got.UserID != "u1" || got.Level != model.LevelPassword {
		t.Fatalf("lookup: %+v %v", got, err)
	}
	if err := m.Revoke(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lookup(ctx, tok); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("after revoke: %v", err)
	}
}

func TestForgedTokensNeverReachTheStore(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	newUser(t, st, "u1")
	m := session.NewManager(st, session.Options{Secret: secret()})
	tok, _, err := m.Create(ctx, "u1", model.LevelPassword, "", "")
	if err != nil {
		t.Fatal(err)
	}
	// Change the last character to a different one (never the same).
	last := "A"
	if tok[63] == 'A' {
		last = "B"
	}
	other := session.NewManager(st, session.Options{Secret: []byte("another secret key of 32 bytes!!")})
	cases := map[string]string{
		"empty":        "",
		"garbage":      "not a token",
		"right length": tok[:63] + last,
		"other secret": tok, // valid shape, wrong MAC for `other`
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			mgr := m
			if name == "other secret" {
				mgr = other
			}
			if _, err := mgr.Lookup(ctx, in); !errors.Is(err, session.ErrNoSession) {
				t.Fatalf("Lookup(%q) = %v", in, err)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	newUser(t, st, "u1")
	c := newClock()
	m := session.NewManager(st, session.Options{Secret: secret(), Now: c.Now, IdleTimeout: time.Hour, Lifetime: 3 * time.Hour, TouchEvery: time.Minute})
	tok, _, _ := m.Create(ctx, "u1", model.LevelPassword, "", "")

	// Used every 50 minutes, the session outlives the idle timeout...
	for i := 0; i < 3; i++ {
		c.Add(50 * time.Minute)
		if _, err := m.Lookup(ctx, tok); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		m.Flush(ctx)
	}
	// ...but not its absolute lifetime.
	c.Add(40 * time.Minute)
	if _, err := m.Lookup(ctx, tok); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("past lifetime: %v", err)
	}

	tok2, _, _ := m.Create(ctx, "u1", model.LevelPassword, "", "")
	c.Add(61 * time.Minute)
	if _, err := m.Lookup(ctx, tok2); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("past idle timeout: %v", err)
	}
}

func TestLastSeenIsBatched(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	newUser(t, st, "u1")
	c := newClock()
	m := session.NewManager(st, session.Options{Secret: secret(), Now: c.Now, TouchEvery: time.Minute})
	tok, s, _ := m.Create(ctx, "u1", model.LevelPassword, "", "")
	c.Add(2 * time.Minute)
	for i := 0; i < 100; i++ {
		if _, err := m.Lookup(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	stored, _ := st.GetSession(ctx, s.ID)
	if !stored.LastSeenAt.Equal(s.LastSeenAt) {
		t.Fatal("lookups wrote last-seen synchronously")
	}
	m.Flush(ctx)
	stored, _ = st.GetSession(ctx, s.ID)
	if !stored.LastSeenAt.Equal(c.Now()) {
		t.Fatalf("after flush last seen = %v, want %v", stored.LastSeenAt, c.Now())
	}
}

func TestRevokeUserReachesOtherManagersWithinCacheTTL(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	newUser(t, st, "u1")
	c := newClock()
	a := session.NewManager(st, session.Options{Secret: secret(), Now: c.Now, CacheTTL: time.Second})
	b := session.NewManager(st, session.Options{Secret: secret(), Now: c.Now, CacheTTL: time.Second})
	tok, _, _ := a.Create(ctx, "u1", model.LevelPassword, "", "")
	if _, err := b.Lookup(ctx, tok); err != nil {
		t.Fatal(err)
	}
	var told []string
	a.OnRevoke(func(ids []string) { told = append(told, ids...) })
	if err := a.RevokeUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if len(told) != 1 {
		t.Fatalf("revocation listeners got %v", told)
	}
	if _, err := a.Lookup(ctx, tok); !errors.Is(err, session.ErrNoSession) {
		t.Fatal("revoking manager still serves the session")
	}
	c.Add(time.Second)
	if _, err := b.Lookup(ctx, tok); !errors.Is(err, session.ErrNoSession) {
		t.Fatal("other manager still serves the session after the cache TTL")
	}
}
