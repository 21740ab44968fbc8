package worker

import (
	"context"

	"fmt"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// KeyMaintainer is the OIDC provider's periodic maintenance: rotate the
// signing keys when due and remove expired codes and tokens
// (oidcop.Provider.Maintain). The composition root passes it when the
// provider exists in this process; without it the OIDC job still removes
// expired records through the store, and serving replicas rotate keys
// lazily.
type KeyMaintainer interface {
	Maintain(ctx context.Context) error
}

// Settings are the job parameters from the configuration.
type Settings struct {
	CleanupEvery time.Duration // default 5m
	// AuditRetention keeps audit events this long; 0 keeps them for ever.
	AuditRetention time.Duration
	// ThrottleWindow is login.failure_window: counters older than it are
	// dead weight.
	ThrottleWindow time.Duration
	// RevocationKeep is how long feed entries stay (default 1h; replicas
	// read them within a second).
	RevocationKeep time.Duration
	// OutboxKeep is how long delivered and dead messages stay for
	// inspection (default 7 days).
	OutboxKeep time.Duration
	OIDC       KeyMaintainer
	Now        func() time.Time
}

// StandardJobs are the garbage-collection and retention jobs over st.
func StandardJobs(st store.Store, s Settings) []Job {
	if s.CleanupEvery <= 0 {
		s.CleanupEvery = 5 * time.Minute
	}
	if s.ThrottleWindow <= 0 {
		s.ThrottleWindow = 10 * time.Minute
	}
	if s.RevocationKeep <= 0 {
		s.RevocationKeep = time.Hour
	}
	if s.OutboxKeep <= 0 {
		s.OutboxKeep = 7 * 24 * time.Hour
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	count := func(what string, n int, err error) (string, error) {
		if err != nil || n == 0 {
			return "", err
		}
		return fmt.Sprintf("removed %d %s", n, what), nil
	}
	jobs := []Job{
		{Name: "expired-sessions", Every: s.CleanupEvery, Run: func(ctx context.Context) (string, error) {
			n, err := st.DeleteExpiredSessions(ctx, s.Now())
			return count("sessions", n, err)
		}},
		{Name: "stale-throttles", Every: s.CleanupEvery, Run: func(ctx context.Context) (string, error) {
			n, err := st.DeleteStaleThrottles(ctx, s.Now().Add(-s.ThrottleWindow))
			return count("sign-in counters", n, err)
		}},
		{Name: "expired-recovery-tokens", Every: s.CleanupEvery, Run: func(ctx context.Context) (string, error) {
			n, err := st.DeleteExpiredRecoveryTokens(ctx, s.Now())
			return count("recovery links", n, err)
		}},
		{Name: "expired-gate-sessions", Every: s.CleanupEvery, Run: func(ctx context.Context) (string, error) {
			n, err := st.DeleteExpiredGateSessions(ctx, s.Now())
			return count("gate cookies and codes", n, err)
		}},
		{Name: "revocation-feed", Every: s.CleanupEvery, Run: func(ctx context.Context) (string, error) {
			n, err := st.DeleteRevocationsBefore(ctx, s.Now().Add(-s.RevocationKeep))
			return count("revocation feed entries", n, err)
		}},
		{Name: "outbox-retention", Every: s.CleanupEvery, Run: func(ctx context.Context) (string, error) {
			n, err := st.DeleteOutboxBefore(ctx, s.Now().Add(-s.OutboxKeep))
			return count("finished outbox messages", n, err)
		}},
		{Name: "oidc-maintenance", Every: s.CleanupEvery, Run: func(ctx context.Context) (string, error) {
			if s.OIDC != nil {
				return "", s.OIDC.Maintain(ctx)
			}
			n, err := st.DeleteExpiredOIDC(ctx, s.Now())
			return count("expired OIDC codes and tokens", n, err)
		}},
	}
	if s.AuditRetention > 0 {
		jobs = append(jobs, Job{Name: "audit-retention", Every: max(s.CleanupEvery, time.Hour), Run: func(ctx context.Context) (string, error) {
			n, err := st.DeleteEventsBefore(ctx, s.Now().Add(-s.AuditRetention))
			return count("audit events", n, err)
		}})
	}
	return jobs
}
