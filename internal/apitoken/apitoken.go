// Package apitoken issues and verifies machine credentials: API tokens
// (sent as "Authorization: Bearer") and app passwords (sent as the
// password of "Authorization: Basic").
//
// Both are 256-bit random secrets generated here, never chosen by people,
// so the store keeps only a keyed hash (HMAC-SHA256 under a server-derived
// key) and verification is one fast lookup by that hash — no slow password
// hash per request, which is what made Basic auth cost ~500 ms per request
// in Authelia. A user's real password is deliberately not accepted by the
// forward-auth gate: it would need argon2id on every uncached request and
// put the one credential that opens the account in every script.
//
// Secrets also carry a short MAC, so a random or mistyped value is refused
// before any store query. Positive verifications are cached in-process for
// a short TTL; revocation in this process takes effect at once, in other
// processes within the TTL.
package apitoken

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// ErrInvalid means the secret is not a live credential: malformed, forged,
// unknown, revoked or expired. Callers treat all of these alike.
var ErrInvalid = errors.New("invalid credential")

const (
	randomLen = 32
	macLen    = 8
	// Prefixes make leaked secrets easy to recognise (secret scanners) and
	// say what a secret is for.
	prefixAPI         = "gh_"
	prefixAppPassword = "ghp_"
)

var encodedLen = base64.RawURLEncoding.EncodedLen(randomLen + macLen)

// Options tunes a Service.
type Options struct {
	// Key is the HMAC key for hashes and MACs (secret.Key.Derive).
	Key []byte
	// CacheTTL bounds how long a positive verification is served from
	// memory (default 30s).
	CacheTTL time.Duration
	// MaxCached bounds the cache (default 10000 entries).
	MaxCached int
	Now       func() time.Time
}

// Service creates, verifies and revokes tokens.
type Service struct {
	st store.APITokens
	o  Options

	mu    sync.RWMutex
	cache map[string]cached // keyed by hash
}

type cached struct {
	t       model.APIToken
	fetched time.Time
}

// New returns a Service over st.
func New(st store.APITokens, o Options) *Service {
	if o.CacheTTL <= 0 {
		o.CacheTTL = 30 * time.Second
	}
	if o.MaxCached <= 0 {
		o.MaxCached = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{st: st, o: o, cache: map[string]cached{}}
}

// Create issues a credential of the given kind for the user and returns
// the secret (shown once, never stored) and the record. ttl 0 means no
// expiry.
func (s *Service) Create(ctx context.Context, userID, name string, kind model.TokenKind, ttl time.Duration) (string, model.APIToken, error) {
	prefix := prefixAPI
	switch kind {
	case model.TokenAPI:
	case model.TokenAppPassword:
		prefix = prefixAppPassword
	default:
		return "", model.APIToken{}, fmt.Errorf("apitoken: unknown kind %q", kind)
	}
	b := make([]byte, randomLen, randomLen+macLen)
	if _, err := rand.Read(b); err != nil {
		return "", model.APIToken{}, err
	}
	b = append(b, s.mac(prefix, b)...)
	secret := prefix + base64.RawURLEncoding.EncodeToString(b)
	idb := make([]byte, 6)
	if _, err := rand.Read(idb); err != nil {
		return "", model.APIToken{}, err
	}
	now := s.o.Now().UTC().Truncate(time.Microsecond)
	t := model.APIToken{ID: hex.EncodeToString(idb), UserID: userID, Name: name, Kind: kind, Hash: s.Hash(secret), CreatedAt: now}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
	}
	if err := s.st.CreateAPIToken(ctx, t); err != nil {
		return "", model.APIToken{}, err
	}
	return secret, t, nil
}

// Hash is the stored form of a secret.
func (s *Service) Hash(secret string) string {
	h := hmac.New(sha256.New, s.o.Key)
	h.Write([]byte("gatehouse api token v1\x00"))
	h.Write([]byte(secret))
	return hex.EncodeToString(h.Sum(nil))
}

// mac covers the prefix too, so a secret re-labelled as the other kind is
// refused without a lookup.
func (s *Service) mac(prefix string, random []byte) []byte {
	h := hmac.New(sha256.New, s.o.Key)
	h.Write([]byte("gatehouse api token mac v1\x00"))
	h.Write([]byte(prefix))
	h.Write(random)
	return h.Sum(nil)[:macLen]
}

// WellFormed checks the prefix, length and MAC without any I/O: a secret
// that fails it was never issued here.
func (s *Service) WellFormed(secret string) bool {
	var prefix string
	switch {
	case strings.HasPrefix(secret, prefixAppPassword):
		prefix = prefixAppPassword
	case strings.HasPrefix(secret, prefixAPI):
		prefix = prefixAPI
	default:
		return false
	}
	body := secret[len(prefix):]
	if len(body) != encodedLen {
		return false
	}
	// Strict: a variant that differs only in unused trailing bits is a
	// different string, and must not reach the store.
	b, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil || len(b) != randomLen+macLen {
		return false
	}
	return hmac.Equal(b[randomLen:], s.mac(prefix, b[:randomLen]))
}

// Cached returns the token behind secret when a fresh positive
// verification is in memory; it never touches the store.
func (s *Service) Cached(secret string) (model.APIToken, bool) {
	if !s.WellFormed(secret) {
		return model.APIToken{}, false
	}
	hash := s.Hash(secret)
	now := s.o.Now()
	s.mu.RLock()
	c, ok := s.cache[hash]
	s.mu.RUnlock()
	if !ok || now.Sub(c.fetched) >= s.o.CacheTTL || !c.t.ActiveAt(now) {
		return model.APIToken{}, false
	}
	return c.t, true
}

// Verify returns the live token behind secret, from the cache or the
// store; ErrInvalid when there is none.
func (s *Service) Verify(ctx context.Context, secret string) (model.APIToken, error) {
	if t, ok := s.Cached(secret); ok {
		return t, nil
	}
	if !s.WellFormed(secret) {
		return model.APIToken{}, ErrInvalid
	}
	hash := s.Hash(secret)
	t, err := s.st.GetAPITokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return model.APIToken{}, ErrInvalid
	}
	if err != nil {
		return model.APIToken{}, err
	}
	now := s.o.Now()
	if !t.ActiveAt(now) {
		return model.APIToken{}, ErrInvalid
	}
	s.mu.Lock()
	if len(s.cache) >= s.o.MaxCached {
		s.pruneLocked(now)
	}
	if len(s.cache) < s.o.MaxCached {
		s.cache[hash] = cached{t: t, fetched: now}
	}
	s.mu.Unlock()
	return t, nil
}

func (s *Service) pruneLocked(now time.Time) {
	for k, c := range s.cache {
		if now.Sub(c.fetched) >= s.o.CacheTTL {
			delete(s.cache, k)
		}
	}
}

// List returns the user's tokens ("" for everyone's).
func (s *Service) List(ctx context.Context, userID string) ([]model.APIToken, error) {
	return s.st.ListAPITokens(ctx, userID)
}

// Revoke deletes the token with the given id and drops it from the cache.
func (s *Service) Revoke(ctx context.Context, id string) (model.APIToken, error) {
	t, err := s.st.DeleteAPIToken(ctx, id)
	if err != nil {
		return model.APIToken{}, err
	}
	s.mu.Lock()
	delete(s.cache, t.Hash)
	s.mu.Unlock()
	return t, nil
}

// ForgetUser drops every cached token of the user (disabled or deleted
// accounts).
func (s *Service) ForgetUser(userID string) {
	s.mu.Lock()
	for k, c := range s.cache {
		if c.t.UserID == userID {
			delete(s.cache, k)
		}
	}
	s.mu.Unlock()
}
