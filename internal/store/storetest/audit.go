package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// auditCases cover the audit record and recovery tokens.
var auditCases = []testCase{
	{"Audit/AppendListFilter", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		events := []model.AuditEvent{
			{ID: "e1", Time: base, Action: "login.failure", Actor: "alice", ClientIP: "10.0.0.1", Outcome: "failure"},
			{ID: "e2", Time: base.Add(time.Second), Action: "login.success", Actor: "alice", Outcome: "success", Detail: map[string]string{"level": "password"}},
			{ID: "e3", Time: base.Add(2 * time.Second), Action: "user.created", Actor: "cli", Subject: "bob", Outcome: "success"},
			{ID: "e4", Time: base.Add(3 * time.Second), Action: "login_x", Actor: "carol", Outcome: "success"},
		}
		for _, e := range events {
			mustNil(t, s.AppendEvent(ctx, e))
		}
		cases := []struct {
			name string
			f    model.AuditFilter
			want []string
		}{
			{"all newest first", model.AuditFilter{}, []string{"e4", "e3", "e2", "e1"}},
			{"by actor", model.AuditFilter{User: "alice"}, []string{"e2", "e1"}},
			{"by subject", model.AuditFilter{User: "bob"}, []string{"e3"}},
			{"exact action", model.AuditFilter{Action: "login.success"}, []string{"e2"}},
			{"action prefix is literal", model.AuditFilter{Action: "login."}, []string{"e2", "e1"}},
			{"since", model.AuditFilter{Since: base.Add(2 * time.Second)}, []string{"e4", "e3"}},
			{"until", model.AuditFilter{Until: base.Add(time.Second)}, []string{"e1"}},
			{"limit", model.AuditFilter{Limit: 1}, []string{"e4"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got, err := s.ListEvents(ctx, c.f)
				mustNil(t, err)
				var ids []string
				for _, e := range got {
					ids = append(ids, e.ID)
				}
				if len(ids) != len(c.want) {
					t.Fatalf("got %v, want %v", ids, c.want)
				}
				for i := range ids {
					if ids[i] != c.want[i] {
						t.Fatalf("got %v, want %v", ids, c.want)
					}
				}
			})
		}
		got, err := s.ListEvents(ctx, model.AuditFilter{Action: "login.success"})
		mustNil(t, err)
		if got[0].Detail["level"] != "password" || got[0].Actor != "alice" || got[0].Outcome != "success" {
			t.Fatalf("round trip: %+v", got[0])
		}
		checkTime(t, "Time", got[0].Time, events[1].Time)
		n, err := s.DeleteEventsBefore(ctx, base.Add(2*time.Second))
		mustNil(t, err)
		if n != 2 {
			t.Fatalf("retention removed %d, want 2", n)
		}
	}},
	{"RecoveryTokens/ConsumeOnce", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "u1", "alice")
		mustNil(t, s.CreateRecoveryToken(ctx, model.RecoveryToken{ID: "r1", UserID: u.ID, CreatedBy: "cli", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}))
		got, err := s.ConsumeRecoveryToken(ctx, "r1", base.Add(time.Minute))
		mustNil(t, err)
		if got.UserID != u.ID || got.CreatedBy != "cli" {
			t.Fatalf("consumed %+v", got)
		}
		if _, err := s.ConsumeRecoveryToken(ctx, "r1", base.Add(time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second use: %v", err)
		}
	}},
	{"RecoveryTokens/Expired", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "u1", "alice")
		mustNil(t, s.CreateRecoveryToken(ctx, model.RecoveryToken{ID: "r1", UserID: u.ID, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}))
		mustNil(t, s.CreateRecoveryToken(ctx, model.RecoveryToken{ID: "r2", UserID: u.ID, CreatedAt: base, ExpiresAt: base.Add(3 * time.Hour)}))
		if _, err := s.ConsumeRecoveryToken(ctx, "r1", base.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired token: %v", err)
		}
		n, err := s.DeleteExpiredRecoveryTokens(ctx, base.Add(4*time.Hour))
		mustNil(t, err)
		if n != 1 {
			t.Fatalf("removed %d expired, want 1 (r1 was consumed)", n)
		}
	}},
	{"RecoveryTokens/DeletedWithUser", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "u1", "alice")
		mustNil(t, s.CreateRecoveryToken(ctx, model.RecoveryToken{ID: "r1", UserID: u.ID, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}))
		mustNil(t, s.DeleteUser(ctx, u.ID))
		if _, err := s.ConsumeRecoveryToken(ctx, "r1", base); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("token outlived its user: %v", err)
		}
	}},
	{"RecoveryTokens/ConcurrentConsume", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		u := mustUser(t, s, "u1", "alice")
		mustNil(t, s.CreateRecoveryToken(ctx, model.RecoveryToken{ID: "r1", UserID: u.ID, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}))
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.ConsumeRecoveryToken(ctx, "r1", base); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d consumers won, want exactly 1", wins)
		}
	}},
}
