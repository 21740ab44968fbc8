package store

import (
	"context"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// Revocations is the store-backed revocation feed: how replicas tell each
// other that sessions ended when no Redis is configured (and the durable
// backstop when one is).
type Revocations interface {
	// AppendRevocations adds one feed entry per session id.
	AppendRevocations(ctx context.Context, sessionIDs []string, at time.Time) error
	// RevocationsAfter returns up to limit entries with Seq > after,
	// ascending by Seq.
	RevocationsAfter(ctx context.Context, after int64, limit int) ([]model.Revocation, error)
	// LastRevocationSeq is the highest Seq in the feed (0 when empty).
	LastRevocationSeq(ctx context.Context) (int64, error)
	// DeleteRevocationsBefore prunes the feed and returns how many.
	DeleteRevocationsBefore(ctx context.Context, before time.Time) (int, error)
}

// Leases are named, expiring locks for leader election between workers.
type Leases interface {
	// AcquireLease makes holder the holder of name until now+ttl when the
	// lease is free, expired or already held by holder (a renewal), and
	// reports whether holder holds it afterwards.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if holder holds it; otherwise it does
	// nothing.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Outbox is the durable queue of outgoing mail and webhooks.
type Outbox interface {
	// EnqueueOutbox stores m; an empty NextAttemptAt means due now (at
	// CreatedAt). A taken ID is ErrConflict.
	EnqueueOutbox(ctx context.Context, m model.OutboxMessage) error
	// ClaimOutbox returns up to limit undelivered, live messages due at
	// now, oldest first, and moves their NextAttemptAt to now+lease so that
	// another worker does not claim them while they are being delivered.
	ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]model.OutboxMessage, error)
	// MarkOutboxDelivered records a successful delivery.
	MarkOutboxDelivered(ctx context.Context, id string, at time.Time) error
	// MarkOutboxFailed records a failed attempt: the new attempt count,
	// when to try next, the error, and whether to give up (dead).
	MarkOutboxFailed(ctx context.Context, id string, attempts int, next time.Time, lastError string, dead bool) error
	// GetOutbox returns one message.
	GetOutbox(ctx context.Context, id string) (model.OutboxMessage, error)
	// DeleteOutboxBefore removes delivered and dead messages created before
	// before and returns how many.
	DeleteOutboxBefore(ctx context.Context, before time.Time) (int, error)
}
