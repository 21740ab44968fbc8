// Package recovery issues and redeems one-time emergency sign-in links for
// operators: the way back in when an administrator's password or second
// factor is lost.
package recovery

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// ErrInvalid means the link is unknown, used or expired; callers do not
// tell these apart to the person holding it.
var ErrInvalid = errors.New("recovery link is invalid, used or expired")

// MaxTTL bounds how long a link may live: it bypasses every factor.
const MaxTTL = 24 * time.Hour

// Store keeps the links.
type Store interface {
	CreateRecoveryToken(ctx context.Context, t model.RecoveryToken) error
	ConsumeRecoveryToken(ctx context.Context, id string, now time.Time) (model.RecoveryToken, error)
}

// Service issues and redeems links.
type Service struct {
	store Store
	now   func() time.Time
}

// New returns the service; now may be nil.
func New(s Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: s, now: now}
}

// Issue creates a link secret for userID valid for ttl.
func (s *Service) Issue(ctx context.Context, userID, createdBy string, ttl time.Duration) (secret string, expires time.Time, err error) {
	if ttl <= 0 || ttl > MaxTTL {
		return "", time.Time{}, errors.New("recovery link lifetime must be between 1s and 24h")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", time.Time{}, err
	}
	secret = base64.RawURLEncoding.EncodeToString(b)
	now := s.now().UTC()
	t := model.RecoveryToken{ID: idOf(secret), UserID: userID, CreatedBy: createdBy, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.store.CreateRecoveryToken(ctx, t); err != nil {
		return "", time.Time{}, err
	}
	return secret, t.ExpiresAt, nil
}

// Redeem uses up the link and returns whom it signs in.
func (s *Service) Redeem(ctx context.Context, secret string) (model.RecoveryToken, error) {
	if len(secret) != 43 {
		return model.RecoveryToken{}, ErrInvalid
	}
	t, err := s.store.ConsumeRecoveryToken(ctx, idOf(secret), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return model.RecoveryToken{}, ErrInvalid
	}
	return t, err
}

func idOf(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
