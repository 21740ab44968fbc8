package store

import (
	"context"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// Audit stores the append-only audit record.
type Audit interface {
	AppendEvent(ctx context.Context, e model.AuditEvent) error
	// ListEvents returns matching events, newest first.
	ListEvents(ctx context.Context, f model.AuditFilter) ([]model.AuditEvent, error)
	// DeleteEventsBefore applies retention and returns how many it removed.
	DeleteEventsBefore(ctx context.Context, before time.Time) (int, error)
}

// RecoveryTokens stores one-time emergency sign-in links.
type RecoveryTokens interface {
	CreateRecoveryToken(ctx context.Context, t model.RecoveryToken) error
	// ConsumeRecoveryToken deletes the token and returns it when it exists
	// and has not expired at now; otherwise ErrNotFound. Two concurrent
	// consumers of one token: exactly one succeeds.
	ConsumeRecoveryToken(ctx context.Context, id string, now time.Time) (model.RecoveryToken, error)
	DeleteExpiredRecoveryTokens(ctx context.Context, now time.Time) (int, error)
}
