package oidcop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// Sealer encrypts private keys at rest (secret.Sealer).
type Sealer interface {
	Seal(plaintext, associated []byte) []byte
	Open(sealed, associated []byte) ([]byte, error)
}

// keyring owns the signing keys: it creates the first one, rotates them on
// schedule and serves the public set from memory.
//
// Rotation, with R the rotation period and L the longest token lifetime:
//   - a key signs for R after its ActiveAt;
//   - its successor is created prepublish before that and published at
//     once, so verifiers that cache the key set (every OIDC library does)
//     know it before the first token it signs arrives;
//   - once superseded a key stays published for L more, until the last
//     token it signed has expired, then the GC removes it.
//
// Every replica may run the same check; two replicas rotating together
// publish two keys, which is harmless: both verify, the newer signs.
type keyring struct {
	store      store.OIDCKeys
	sealer     Sealer
	alg        jose.SignatureAlgorithm
	rotation   time.Duration
	prepublish time.Duration
	overlap    time.Duration // longest token lifetime
	reloadEach time.Duration
	now        func() time.Time
	log        *slog.Logger

	mu       sync.RWMutex
	signing  *signingKey
	public   []op.Key
	jwks     []byte
	loadedAt time.Time

	reloading atomic.Bool
	reloadMu  sync.Mutex // one reload at a time in this process

	// afterReload runs in the background reload goroutine (the provider's
	// garbage collection rides on it).
	afterReload func(ctx context.Context)
}

type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key any
}

func (k *publicKey) ID() string                         { return k.id }
func (k *publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k *publicKey) Use() string                        { return "sig" }
func (k *publicKey) Key() any                           { return k.key }

var (
	_ op.SigningKey = (*signingKey)(nil)
	_ op.Key        = (*publicKey)(nil)
)

// ensure loads the keys, creating or rotating as due. It is what start-up
// and the periodic reload run.
func (kr *keyring) ensure(ctx context.Context) error {
	kr.reloadMu.Lock()
	defer kr.reloadMu.Unlock()
	now := kr.now().UTC()
	keys, err := kr.store.ListSigningKeys(ctx)
	if err != nil {
		return err
	}
	current := activeKey(keys, string(kr.alg), now)
	switch {
	case current == nil:
		// First start, or the algorithm changed: sign with a new key now.
		if _, err := kr.create(ctx, now, now); err != nil {
			return err
		}
	case !hasPending(keys, string(kr.alg), now) && !now.Before(current.ActiveAt.Add(kr.rotation-kr.prepublish)):
		if _, err := kr.create(ctx, now, maxTime(now, current.ActiveAt.Add(kr.rotation))); err != nil {
			return err
		}
	default:
		return kr.load(ctx, keys, now)
	}
	if keys, err = kr.store.ListSigningKeys(ctx); err != nil {
		return err
	}
	return kr.load(ctx, keys, now)
}

// load installs keys (newest ActiveAt first) in memory and sets the expiry
// of keys that a newer one has superseded.
func (kr *keyring) load(ctx context.Context, keys []model.SigningKey, now time.Time) error {
	var (
		signing *signingKey
		public  []op.Key
		set     jose.JSONWebKeySet
	)
	var newerActive time.Time // ActiveAt of the newest key already signing
	for _, k := range keys {
		if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
			continue
		}
		priv, err := kr.sealer.Open(k.Private, []byte(k.ID))
		if err != nil {
			return fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		parsed, err := x509.ParsePKCS8PrivateKey(priv)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		signer, ok := parsed.(crypto.Signer)
		if !ok {
			return fmt.Errorf("signing key %s: not a signer", k.ID)
		}
		alg := jose.SignatureAlgorithm(k.Algorithm)
		if !k.ActiveAt.After(now) {
			if signing == nil && alg == kr.alg {
				signing = &signingKey{id: k.ID, alg: alg, key: signer}
			}
			if !newerActive.IsZero() && k.ExpiresAt.IsZero() {
				// Superseded: publish until its last token has expired.
				exp := newerActive.Add(kr.overlap)
				if err := kr.store.UpdateSigningKeyExpiry(ctx, k.ID, exp); err != nil && !errors.Is(err, store.ErrNotFound) {
					kr.log.Warn("cannot set signing key expiry", "key", k.ID, "err", err)
				}
			}
			if newerActive.IsZero() {
				newerActive = k.ActiveAt
			}
		}
		pk := &publicKey{id: k.ID, alg: alg, key: signer.Public()}
		public = append(public, pk)
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: pk.key, KeyID: pk.id, Algorithm: string(alg), Use: "sig"})
	}
	if signing == nil {
		return errors.New("no active signing key")
	}
	body, err := json.Marshal(set)
	if err != nil {
		return err
	}
	kr.mu.Lock()
	kr.signing, kr.public, kr.jwks, kr.loadedAt = signing, public, body, now
	kr.mu.Unlock()
	return nil
}

// create makes and stores a new key that signs from activeAt.
func (kr *keyring) create(ctx context.Context, now, activeAt time.Time) (model.SigningKey, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch kr.alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return model.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return model.SigningKey{}, err
	}
	id := randomString(12)
	k := model.SigningKey{ID: id, Algorithm: string(kr.alg), Private: kr.sealer.Seal(der, []byte(id)), CreatedAt: now, ActiveAt: activeAt}
	if err := kr.store.CreateSigningKey(ctx, k); err != nil {
		return model.SigningKey{}, err
	}
	kr.log.Info("created signing key", "key", id, "alg", kr.alg, "active_at", activeAt)
	return k, nil
}

// maybeReload refreshes the keys in the background when the in-memory copy
// is older than reloadEach, so a key rotated by another replica reaches
// this one within that time, and rotation happens without a scheduler.
func (kr *keyring) maybeReload() {
	kr.mu.RLock()
	stale := kr.now().Sub(kr.loadedAt) >= kr.reloadEach
	kr.mu.RUnlock()
	if !stale || !kr.reloading.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer kr.reloading.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := kr.ensure(ctx); err != nil {
			kr.log.Error("reloading signing keys", "err", err)
		}
		if kr.afterReload != nil {
			kr.afterReload(ctx)
		}
	}()
}

func (kr *keyring) signingKey() *signingKey {
	kr.maybeReload()
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.signing
}

func (kr *keyring) keySet() []op.Key {
	kr.maybeReload()
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.public
}

// jwksJSON is the public key set, serialised once per reload.
func (kr *keyring) jwksJSON() []byte {
	kr.maybeReload()
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.jwks
}

// activeKey is the newest key of alg already signing at now.
func activeKey(keys []model.SigningKey, alg string, now time.Time) *model.SigningKey {
	for i := range keys {
		k := &keys[i]
		if k.Algorithm == alg && !k.ActiveAt.After(now) && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt)) {
			return k
		}
	}
	return nil
}

// hasPending reports whether a key of alg is published but not yet signing.
func hasPending(keys []model.SigningKey, alg string, now time.Time) bool {
	for _, k := range keys {
		if k.Algorithm == alg && k.ActiveAt.After(now) {
			return true
		}
	}
	return false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
