// Package session manages browser sign-in sessions: minting the cookie
// token, the server-side record with idle and absolute expiry, a short-lived
// in-process cache for the hot path, batched last-seen writes and
// revocation.
package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// ErrNoSession means the token does not name a live session: unknown,
// forged, expired or revoked. Callers treat all of these alike.
var ErrNoSession = errors.New("no valid session")

const (
	randomLen = 32 // 256 bits of entropy in every token
	macLen    = 16
	// tokenLen is the length of an encoded token; anything else is rejected
	// before any lookup.
	tokenLen = (randomLen + macLen) * 4 / 3
)

// Options tunes a Manager. Zero values take the defaults.
type Options struct {
	// Secret authenticates tokens so that forged or random cookies are
	// rejected without touching the store (no state, no query per garbage
	// request).
	Secret      []byte
	IdleTimeout time.Duration // default 12h
	Lifetime    time.Duration // default 7 days
	// CacheTTL bounds how long a replica may serve a session from memory
	// without re-reading the store; revocation in this process is immediate.
	CacheTTL time.Duration // default 2s
	// TouchEvery is the last-seen granularity: a session's last-seen time is
	// written at most this often, in batches.
	TouchEvery time.Duration // default 1m
	// FlushEvery is how often batched last-seen times are written.
	FlushEvery time.Duration // default 10s
	Now        func() time.Time
	Logger     *slog.Logger
}

// Manager creates, looks up and revokes sessions.
type Manager struct {
	store store.Sessions
	o     Options

	mu      sync.RWMutex
	cache   map[string]cached
	pending map[string]time.Time // id → last seen, waiting for the next flush

	onRevoke []func(ids []string)
	// forgets counts cache invalidations. A store read that overlapped one
	// is not cached: it may predate a revocation another replica just
	// announced, and caching it would serve the session for a whole TTL.
	forgets uint64

	fetches singleflight.Group
}

type cached struct {
	s         model.Session
	fetchedAt time.Time
}

// NewManager returns a Manager over the given store.
func NewManager(s store.Sessions, o Options) *Manager {
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 12 * time.Hour
	}
	if o.Lifetime == 0 {
		o.Lifetime = 7 * 24 * time.Hour
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = 2 * time.Second
	}
	if o.TouchEvery == 0 {
		o.TouchEvery = time.Minute
	}
	if o.FlushEvery == 0 {
		o.FlushEvery = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Manager{store: s, o: o, cache: map[string]cached{}, pending: map[string]time.Time{}}
}

// OnRevoke registers fn to be told of revoked session ids (for example to
// publish them to other replicas or to drop gate cookies bound to them).
func (m *Manager) OnRevoke(fn func(ids []string)) { m.onRevoke = append(m.onRevoke, fn) }

// Create starts a session for userID and returns the cookie token.
func (m *Manager) Create(ctx context.Context, userID string, level model.AuthLevel, clientIP, userAgent string) (string, model.Session, error) {
	token := m.newToken()
	now := m.o.Now().UTC()
	s := model.Session{
		ID:          IDOf(token),
		UserID:      userID,
		Level:       level,
		CreatedAt:   now,
		LastSeenAt:  now,
		ExpiresAt:   now.Add(m.o.Lifetime),
		IdleTimeout: m.o.IdleTimeout,
		ClientIP:    clientIP,
		UserAgent:   truncate(userAgent, 256),
	}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return "", model.Session{}, err
	}
	m.mu.Lock()
	m.cache[s.ID] = cached{s: s, fetchedAt: now}
	m.mu.Unlock()
	return token, s, nil
}

// Lookup returns the live session behind token. It never writes to the
// store synchronously.
func (m *Manager) Lookup(ctx context.Context, token string) (model.Session, error) {
	if !m.validToken(token) {
		return model.Session{}, ErrNoSession
	}
	return m.LookupID(ctx, IDOf(token))
}

// LookupID is Lookup by session id, for holders of a credential bound to
// a session (the forward-auth gate cookie) rather than of its token. It is
// served from the same cache and never writes to the store synchronously.
func (m *Manager) LookupID(ctx context.Context, id string) (model.Session, error) {
	now := m.o.Now()

	m.mu.RLock()
	c, ok := m.cache[id]
	m.mu.RUnlock()
	if !ok || now.Sub(c.fetchedAt) >= m.o.CacheTTL {
		// One store read per session however many requests arrive at once
		// when its cache entry expires.
		// The shared read must not fail for everyone because the first
		// caller went away.
		v, err, _ := m.fetches.Do(id, func() (any, error) {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return m.fetch(fctx, id, now)
		})
		if err != nil {
			return model.Session{}, err
		}
		c = v.(cached)
	}
	if !c.s.ActiveAt(now) {
		return model.Session{}, ErrNoSession
	}
	if now.Sub(c.s.LastSeenAt) >= m.o.TouchEvery {
		m.mu.Lock()
		m.pending[id] = now.UTC()
		if e, ok := m.cache[id]; ok {
			e.s.LastSeenAt = now.UTC()
			m.cache[id] = e
		}
		m.mu.Unlock()
	}
	return c.s, nil
}

// fetch reads a session from the store and caches it.
func (m *Manager) fetch(ctx context.Context, id string, now time.Time) (cached, error) {
	m.mu.RLock()
	forgets := m.forgets
	m.mu.RUnlock()
	s, err := m.store.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		m.forget([]string{id})
		return cached{}, ErrNoSession
	}
	if err != nil {
		return cached{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// A pending last-seen newer than the stored one still counts.
	if p, ok := m.pending[id]; ok && p.After(s.LastSeenAt) {
		s.LastSeenAt = p
	}
	c := cached{s: s, fetchedAt: now}
	if m.forgets == forgets {
		m.cache[id] = c
	}
	return c, nil
}

// Revoke ends the session behind token.
func (m *Manager) Revoke(ctx context.Context, token string) error {
	if !m.validToken(token) {
		return nil
	}
	return m.RevokeID(ctx, IDOf(token))
}

// RevokeID ends the session with the given id.
func (m *Manager) RevokeID(ctx context.Context, id string) error {
	err := m.store.DeleteSession(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	m.revoked([]string{id})
	return nil
}

// RevokeUser ends every session of the user (sign out everywhere, password
// change, disabled account).
func (m *Manager) RevokeUser(ctx context.Context, userID string) error {
	ids, err := m.store.DeleteUserSessions(ctx, userID)
	if err != nil {
		return err
	}
	// Sessions of the user cached here but already gone from the store (for
	// example removed by another process) are dropped too.
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		seen[id] = true
	}
	m.mu.RLock()
	for id, c := range m.cache {
		if c.s.UserID == userID && !seen[id] {
			ids = append(ids, id)
		}
	}
	m.mu.RUnlock()
	m.revoked(ids)
	return nil
}

// Invalidate drops ids from this replica's cache without touching the store;
// it is how revocations published by other replicas arrive.
func (m *Manager) Invalidate(ids []string) { m.forget(ids) }

func (m *Manager) revoked(ids []string) {
	if len(ids) == 0 {
		return
	}
	m.forget(ids)
	for _, fn := range m.onRevoke {
		fn(ids)
	}
}

func (m *Manager) forget(ids []string) {
	m.mu.Lock()
	m.forgets++
	for _, id := range ids {
		delete(m.cache, id)
		delete(m.pending, id)
	}
	m.mu.Unlock()
}

// Run writes batched last-seen times and prunes the cache until ctx ends,
// then flushes once more.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.o.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			m.Flush(flushCtx)
			cancel()
			return
		case <-t.C:
			m.Flush(ctx)
			m.prune()
		}
	}
}

// Flush writes pending last-seen times now.
func (m *Manager) Flush(ctx context.Context) {
	m.mu.Lock()
	batch := m.pending
	m.pending = map[string]time.Time{}
	m.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := m.store.TouchSessions(ctx, batch); err != nil {
		m.o.Logger.Warn("writing session last-seen times", "sessions", len(batch), "err", err)
		// Keep them for the next attempt unless newer ones arrived.
		m.mu.Lock()
		for id, ts := range batch {
			if cur, ok := m.pending[id]; !ok || cur.Before(ts) {
				m.pending[id] = ts
			}
		}
		m.mu.Unlock()
	}
}

// prune drops cache entries that are stale enough to be refetched anyway,
// so the cache holds only sessions in active use.
func (m *Manager) prune() {
	now := m.o.Now()
	m.mu.Lock()
	for id, c := range m.cache {
		if now.Sub(c.fetchedAt) > m.o.CacheTTL+time.Minute {
			delete(m.cache, id)
		}
	}
	m.mu.Unlock()
}

// IDOf is the store key of a token: its SHA-256, so that the store never
// holds a usable cookie value.
func IDOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func (m *Manager) newToken() string {
	b := make([]byte, randomLen, randomLen+macLen)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
	}
	b = append(b, m.mac(b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (m *Manager) validToken(token string) bool {
	if len(token) != tokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) != randomLen+macLen {
		return false
	}
	return hmac.Equal(b[randomLen:], m.mac(b[:randomLen]))
}

func (m *Manager) mac(random []byte) []byte {
	h := hmac.New(sha256.New, m.o.Secret)
	h.Write([]byte("gatehouse session v1"))
	h.Write(random)
	return h.Sum(nil)[:macLen]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
