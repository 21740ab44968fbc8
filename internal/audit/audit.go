// Package audit records who did what, when, from where and with what
// outcome: an append-only record in the store, mirrored to the structured
// log. Hot paths (every forward-auth check) are not audited; decisions that
// change state or grant access are.
package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// Outcomes of an event.
const (
	Success = "success"
	Failure = "failure"
)

// Appender is where events are kept.
type Appender interface {
	AppendEvent(ctx context.Context, e model.AuditEvent) error
}

// Recorder writes events.
type Recorder struct {
	store  Appender
	logger *slog.Logger
	now    func() time.Time
}

// Options wires a Recorder.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
}

// New returns a Recorder writing to store.
func New(store Appender, o Options) *Recorder {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Recorder{store: store, logger: o.Logger.With("component", "audit"), now: o.Now}
}

type actorKey struct{}

type actor struct{ name, id string }

// WithActor tells events recorded under ctx who acts: a username with its
// id, or a role such as "cli" or "system".
func WithActor(ctx context.Context, name, id string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor{name, id})
}

// ActorFrom returns the actor set by WithActor.
func ActorFrom(ctx context.Context) (name, id string) {
	a, _ := ctx.Value(actorKey{}).(actor)
	return a.name, a.id
}

// Record stores e, filling in the id, time, outcome and actor from ctx when
// unset. A failure to store is logged loudly but does not fail the action:
// the event is still in the structured log.
func (r *Recorder) Record(ctx context.Context, e model.AuditEvent) {
	if e.ID == "" {
		e.ID = uuid.Must(uuid.NewV7()).String()
	}
	if e.Time.IsZero() {
		e.Time = r.now().UTC()
	}
	if e.Outcome == "" {
		e.Outcome = Success
	}
	if e.Actor == "" {
		e.Actor, e.ActorID = ActorFrom(ctx)
	}
	attrs := []any{"action", e.Action, "actor", e.Actor, "outcome", e.Outcome}
	if e.Subject != "" {
		attrs = append(attrs, "subject", e.Subject)
	}
	if e.ClientIP != "" {
		attrs = append(attrs, "client_ip", e.ClientIP)
	}
	for k, v := range e.Detail {
		attrs = append(attrs, "detail."+k, v)
	}
	r.logger.Info("audit", attrs...)
	// The event must outlive a cancelled request (a client that hangs up
	// right after a failed sign-in is still recorded).
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.store.AppendEvent(sctx, e); err != nil {
		r.logger.Error("audit event not stored", "action", e.Action, "err", err)
	}
}
