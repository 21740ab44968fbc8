package store

import (
	"context"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// APITokens stores machine credentials (API tokens and app passwords).
type APITokens interface {
	// CreateAPIToken inserts t; a taken ID or Hash is ErrConflict, an
	// unknown user ErrNotFound.
	CreateAPIToken(ctx context.Context, t model.APIToken) error
	// GetAPITokenByHash returns the token whose keyed hash is hash.
	GetAPITokenByHash(ctx context.Context, hash string) (model.APIToken, error)
	// ListAPITokens lists the user's tokens ("" lists every user's),
	// ordered by creation time then ID.
	ListAPITokens(ctx context.Context, userID string) ([]model.APIToken, error)
	// DeleteAPIToken removes the token and returns it (callers drop the
	// matching cache entry); ErrNotFound when there is none.
	DeleteAPIToken(ctx context.Context, id string) (model.APIToken, error)
}

// GateSessions stores forward-auth gate cookies and one-time codes. Each
// is bound to an IdP session and removed with it.
type GateSessions interface {
	// CreateGateSession inserts g; an unknown session is ErrNotFound.
	CreateGateSession(ctx context.Context, g model.GateSession) error
	GetGateSession(ctx context.Context, id string) (model.GateSession, error)
	// TakeGateSession deletes and returns the record of that kind in one
	// step, so a one-time code can be exchanged once only (and a gate
	// cookie presented as a code deletes nothing).
	TakeGateSession(ctx context.Context, id string, kind model.GateKind) (model.GateSession, error)
	// DeleteExpiredGateSessions removes records expired at now.
	DeleteExpiredGateSessions(ctx context.Context, now time.Time) (int, error)
}
