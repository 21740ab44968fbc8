package forwardauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// errNoGate means the cookie or code names no live gate.
var errNoGate = errors.New("no valid gate")

const (
	gateRandomLen = 32
	gateMACLen    = 16
)

var gateTokenLen = base64.RawURLEncoding.EncodedLen(gateRandomLen + gateMACLen)

// gates mints and resolves gate cookies and one-time codes. Values carry a
// MAC so that garbage is refused without a lookup (an unauthenticated
// flood creates no state and no query), and the store keeps only their
// SHA-256. Resolved cookies are cached by value.
type gates struct {
	st  store.GateSessions
	key []byte
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.RWMutex
	m  map[string]gateEntry // cookie value → record

	gcMu   sync.Mutex
	lastGC time.Time
}

type gateEntry struct {
	g       model.GateSession
	fetched time.Time
}

func (g *gates) mac(random []byte) []byte {
	h := hmac.New(sha256.New, g.key)
	h.Write([]byte("gatehouse gate v1"))
	h.Write(random)
	return h.Sum(nil)[:gateMACLen]
}

func (g *gates) newValue() string {
	b := make([]byte, gateRandomLen, gateRandomLen+gateMACLen)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(append(b, g.mac(b)...))
}

func (g *gates) valid(v string) bool {
	if len(v) != gateTokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) != gateRandomLen+gateMACLen {
		return false
	}
	return hmac.Equal(b[gateRandomLen:], g.mac(b[:gateRandomLen]))
}

func gateID(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// mint stores a new gate of the kind for the session and returns its value.
// A one-time code is stored under the hash of the code and the browser's
// nonce together: only the browser holding the nonce cookie can take it.
func (g *gates) mint(ctx context.Context, kind model.GateKind, s model.Session, host string, expires time.Time, nonce string) (string, error) {
	v := g.newValue()
	rec := model.GateSession{ID: gateID(v + nonce), Kind: kind, SessionID: s.ID, UserID: s.UserID, Host: host,
		CreatedAt: g.now().UTC(), ExpiresAt: expires.UTC()}
	if err := g.st.CreateGateSession(ctx, rec); err != nil {
		return "", err
	}
	if kind == model.GateCookie {
		g.put(v, rec)
	}
	g.maybeGC()
	return v, nil
}

// cookie resolves a gate cookie value: memory first, then the store.
func (g *gates) cookie(ctx context.Context, v string) (model.GateSession, error) {
	now := g.now()
	g.mu.RLock()
	e, ok := g.m[v]
	g.mu.RUnlock()
	if ok && now.Sub(e.fetched) < g.ttl {
		if !now.Before(e.g.ExpiresAt) {
			return model.GateSession{}, errNoGate
		}
		return e.g, nil
	}
	if !g.valid(v) {
		return model.GateSession{}, errNoGate
	}
	rec, err := g.st.GetGateSession(ctx, gateID(v))
	if errors.Is(err, store.ErrNotFound) {
		g.drop(v)
		return model.GateSession{}, errNoGate
	}
	if err != nil {
		return model.GateSession{}, err
	}
	if rec.Kind != model.GateCookie || !now.Before(rec.ExpiresAt) {
		return model.GateSession{}, errNoGate
	}
	g.put(v, rec)
	return rec, nil
}

// take exchanges a one-time code presented with the nonce it was minted
// for: it is gone afterwards whatever happens.
func (g *gates) take(ctx context.Context, v, nonce string) (model.GateSession, error) {
	if !g.valid(v) {
		return model.GateSession{}, errNoGate
	}
	rec, err := g.st.TakeGateSession(ctx, gateID(v+nonce), model.GateCode)
	if errors.Is(err, store.ErrNotFound) {
		return model.GateSession{}, errNoGate
	}
	if err != nil {
		return model.GateSession{}, err
	}
	if rec.Kind != model.GateCode || !g.now().Before(rec.ExpiresAt) {
		return model.GateSession{}, errNoGate
	}
	return rec, nil
}

func (g *gates) put(v string, rec model.GateSession) {
	now := g.now()
	g.mu.Lock()
	if len(g.m) >= g.max {
		for k, e := range g.m {
			if now.Sub(e.fetched) >= g.ttl {
				delete(g.m, k)
			}
		}
	}
	if len(g.m) < g.max {
		g.m[v] = gateEntry{g: rec, fetched: now}
	}
	g.mu.Unlock()
}

func (g *gates) drop(v string) {
	g.mu.Lock()
	delete(g.m, v)
	g.mu.Unlock()
}

// dropSessions forgets every cached gate bound to the sessions (they were
// revoked; the store removed their gates with them).
func (g *gates) dropSessions(ids []string) {
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	g.mu.Lock()
	for k, e := range g.m {
		if set[e.g.SessionID] {
			delete(g.m, k)
		}
	}
	g.mu.Unlock()
}

// maybeGC removes expired gates from the store at most once an hour, in
// the background, so no separate job is needed.
func (g *gates) maybeGC() {
	now := g.now()
	g.gcMu.Lock()
	if now.Sub(g.lastGC) < time.Hour {
		g.gcMu.Unlock()
		return
	}
	g.lastGC = now
	g.gcMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = g.st.DeleteExpiredGateSessions(ctx, now)
	}()
}

// newNonce is a fresh per-app sign-in nonce.
func newNonce() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// validNonce accepts only what newNonce makes.
func validNonce(n string) bool {
	if len(n) != 22 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(n)
	return err == nil
}
