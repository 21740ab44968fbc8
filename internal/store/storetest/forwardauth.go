package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// forwardAuthCases cover API tokens and gate sessions (issue 3).
var forwardAuthCases = []testCase{
	{"APITokens/CreateGetListDelete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustUser(t, s, "u2", "bob")
		a := model.APIToken{ID: "t1", UserID: "u1", Name: "prometheus", Kind: model.TokenAPI, Hash: "h1", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
		b := model.APIToken{ID: "t2", UserID: "u2", Name: "grafana", Kind: model.TokenAppPassword, Hash: "h2", CreatedAt: base.Add(time.Second)}
		mustNil(t, s.CreateAPIToken(ctx, a))
		mustNil(t, s.CreateAPIToken(ctx, b))
		got, err := s.GetAPITokenByHash(ctx, "h1")
		mustNil(t, err)
		if got.ID != "t1" || got.UserID != "u1" || got.Name != "prometheus" || got.Kind != model.TokenAPI {
			t.Fatalf("GetAPITokenByHash = %+v", got)
		}
		checkTime(t, "CreatedAt", got.CreatedAt, a.CreatedAt)
		checkTime(t, "ExpiresAt", got.ExpiresAt, a.ExpiresAt)
		got, err = s.GetAPITokenByHash(ctx, "h2")
		mustNil(t, err)
		if !got.ExpiresAt.IsZero() {
			t.Fatalf("a token without expiry came back with %v", got.ExpiresAt)
		}
		all, err := s.ListAPITokens(ctx, "")
		mustNil(t, err)
		if len(all) != 2 || all[0].ID != "t1" || all[1].ID != "t2" {
			t.Fatalf("ListAPITokens(all) = %+v", all)
		}
		mine, err := s.ListAPITokens(ctx, "u2")
		mustNil(t, err)
		if len(mine) != 1 || mine[0].ID != "t2" {
			t.Fatalf("ListAPITokens(u2) = %+v", mine)
		}
		del, err := s.DeleteAPIToken(ctx, "t1")
		mustNil(t, err)
		if del.Hash != "h1" {
			t.Fatalf("DeleteAPIToken returned %+v", del)
		}
		if _, err := s.GetAPITokenByHash(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after delete: %v, want ErrNotFound", err)
		}
		if _, err := s.DeleteAPIToken(ctx, "t1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v, want ErrNotFound", err)
		}
	}},
	{"APITokens/Conflicts", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustNil(t, s.CreateAPIToken(ctx, model.APIToken{ID: "t1", UserID: "u1", Kind: model.TokenAPI, Hash: "h1"}))
		if err := s.CreateAPIToken(ctx, model.APIToken{ID: "t2", UserID: "u1", Kind: model.TokenAPI, Hash: "h1"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("same hash: %v, want ErrConflict", err)
		}
		if err := s.CreateAPIToken(ctx, model.APIToken{ID: "t3", UserID: "nobody", Kind: model.TokenAPI, Hash: "h3"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown user: %v, want ErrNotFound", err)
		}
	}},
	{"APITokens/GoWithTheUser", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustNil(t, s.CreateAPIToken(ctx, model.APIToken{ID: "t1", UserID: "u1", Kind: model.TokenAPI, Hash: "h1"}))
		mustNil(t, s.DeleteUser(ctx, "u1"))
		if _, err := s.GetAPITokenByHash(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("token of a deleted user: %v, want ErrNotFound", err)
		}
	}},
	{"GateSessions/BoundToSession", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustSession(t, s, "s1", "u1")
		g := model.GateSession{ID: "g1", Kind: model.GateCookie, SessionID: "s1", UserID: "u1", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
		mustNil(t, s.CreateGateSession(ctx, g))
		got, err := s.GetGateSession(ctx, "g1")
		mustNil(t, err)
		if got.SessionID != "s1" || got.UserID != "u1" || got.Kind != model.GateCookie || got.Host != "" {
			t.Fatalf("GetGateSession = %+v", got)
		}
		checkTime(t, "ExpiresAt", got.ExpiresAt, g.ExpiresAt)
		if err := s.CreateGateSession(ctx, model.GateSession{ID: "g2", Kind: model.GateCookie, SessionID: "nope", UserID: "u1", ExpiresAt: base}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown session: %v, want ErrNotFound", err)
		}
		mustNil(t, s.DeleteSession(ctx, "s1"))
		if _, err := s.GetGateSession(ctx, "g1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("gate of an ended session: %v, want ErrNotFound", err)
		}
	}},
	{"GateSessions/TakeOnce", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustSession(t, s, "s1", "u1")
		mustNil(t, s.CreateGateSession(ctx, model.GateSession{ID: "c1", Kind: model.GateCode, SessionID: "s1", UserID: "u1", Host: "app.example.org", ExpiresAt: base.Add(time.Minute)}))
		got := parallel(8, func(int) (model.GateSession, error) { return s.TakeGateSession(ctx, "c1", model.GateCode) })
		wins := 0
		for _, r := range got {
			switch {
			case r.err == nil:
				wins++
				if r.v.Host != "app.example.org" || r.v.Kind != model.GateCode {
					t.Fatalf("TakeGateSession = %+v", r.v)
				}
			case !errors.Is(r.err, store.ErrNotFound):
				t.Fatalf("TakeGateSession: %v", r.err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d callers took the one-time code, want 1", wins)
		}
		// A gate cookie presented as a code is neither returned nor deleted.
		mustNil(t, s.CreateGateSession(ctx, model.GateSession{ID: "k1", Kind: model.GateCookie, SessionID: "s1", UserID: "u1", ExpiresAt: base.Add(time.Minute)}))
		if _, err := s.TakeGateSession(ctx, "k1", model.GateCode); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("took a cookie as a code: %v", err)
		}
		if _, err := s.GetGateSession(ctx, "k1"); err != nil {
			t.Fatalf("the cookie is gone: %v", err)
		}
	}},
	{"GateSessions/DeleteExpired", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustSession(t, s, "s1", "u1")
		mustNil(t, s.CreateGateSession(ctx, model.GateSession{ID: "old", Kind: model.GateCookie, SessionID: "s1", UserID: "u1", ExpiresAt: base}))
		mustNil(t, s.CreateGateSession(ctx, model.GateSession{ID: "new", Kind: model.GateCookie, SessionID: "s1", UserID: "u1", ExpiresAt: base.Add(time.Hour)}))
		n, err := s.DeleteExpiredGateSessions(ctx, base)
		mustNil(t, err)
		if n != 1 {
			t.Fatalf("deleted %d, want 1", n)
		}
		if _, err := s.GetGateSession(ctx, "new"); err != nil {
			t.Fatalf("live gate: %v", err)
		}
	}},
}
