package storetest

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

func oidcClient(id string) model.OIDCClient {
	return model.OIDCClient{
		ClientID: id, AppSlug: id + "-app", AppName: "The " + id,
		SecretHash: "hash-" + id, SecretFromConfig: true,
		RedirectURIs:           []string{"https://" + id + ".example.com/cb"},
		PostLogoutRedirectURIs: []string{"https://" + id + ".example.com/"},
		GrantTypes:             []string{model.GrantAuthorizationCode, model.GrantRefreshToken},
		AllowGroups:            []string{"admins"},
		Consent:                model.ConsentImplicit, TokenFormat: model.TokenOpaque,
		AccessTokenLifetime: time.Minute, IDTokenLifetime: time.Hour, RefreshTokenLifetime: 24 * time.Hour,
		CreatedAt: base,
	}
}

func mustClient(t *testing.T, s store.Store, id string) model.OIDCClient {
	t.Helper()
	c := oidcClient(id)
	mustNil(t, s.PutOIDCClient(t.Context(), c))
	return c
}

func token(id, kind, family, client, subject string) model.OIDCToken {
	return model.OIDCToken{
		ID: id, Kind: kind, FamilyID: family, ClientID: client, Subject: subject, SessionID: "sess-" + subject,
		Scopes: []string{"openid", "groups"}, Audience: []string{client}, AMR: []string{"pwd"},
		AuthTime: base, CreatedAt: base, ExpiresAt: base.Add(time.Hour),
	}
}

func mustErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

var oidcCases = []testCase{
	{"OIDC/ClientPutGetListDelete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		want := mustClient(t, s, "grafana")
		mustClient(t, s, "argocd")
		got, err := s.GetOIDCClient(ctx, "grafana")
		mustNil(t, err)
		if got.UpdatedAt.IsZero() {
			t.Error("UpdatedAt not set")
		}
		got.UpdatedAt = time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetOIDCClient = %+v\nwant %+v", got, want)
		}
		list, err := s.ListOIDCClients(ctx)
		mustNil(t, err)
		if len(list) != 2 || list[0].ClientID != "argocd" || list[1].ClientID != "grafana" {
			t.Errorf("ListOIDCClients = %v", list)
		}
		mustNil(t, s.DeleteOIDCClient(ctx, "grafana"))
		_, err = s.GetOIDCClient(ctx, "grafana")
		mustErr(t, err, store.ErrNotFound)
		mustErr(t, s.DeleteOIDCClient(ctx, "grafana"), store.ErrNotFound)
	}},
	{"OIDC/ClientSecretKeptUnlessConfigOwnsIt", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		c := oidcClient("cli")
		c.SecretHash, c.SecretFromConfig = "", false
		mustNil(t, s.PutOIDCClient(ctx, c))
		mustNil(t, s.SetOIDCClientSecret(ctx, "cli", "rotated", false))
		// A reconcile without a secret keeps the rotated one.
		c.AppName = "Renamed"
		mustNil(t, s.PutOIDCClient(ctx, c))
		got, err := s.GetOIDCClient(ctx, "cli")
		mustNil(t, err)
		if got.SecretHash != "rotated" || got.AppName != "Renamed" {
			t.Errorf("after reconcile: secret %q name %q", got.SecretHash, got.AppName)
		}
		// A secret from the config wins.
		c.SecretHash, c.SecretFromConfig = "configured", true
		mustNil(t, s.PutOIDCClient(ctx, c))
		got, _ = s.GetOIDCClient(ctx, "cli")
		if got.SecretHash != "configured" || !got.SecretFromConfig {
			t.Errorf("config secret: %q %v", got.SecretHash, got.SecretFromConfig)
		}
		mustErr(t, s.SetOIDCClientSecret(ctx, "nope", "x", false), store.ErrNotFound)
	}},
	{"OIDC/AuthRequestLifecycle", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustClient(t, s, "grafana")
		ar := model.AuthRequest{
			ID: "ar1", ClientID: "grafana", RedirectURI: "https://g/cb", Scopes: []string{"openid", "groups"},
			State: "st", Nonce: "n", ResponseType: "code", CodeChallenge: "cc", CodeChallengeMethod: "S256",
			Prompt: []string{"login"}, MaxAge: -1, ClaimsGroups: true, CreatedAt: base, ExpiresAt: base.Add(10 * time.Minute),
		}
		mustNil(t, s.CreateAuthRequest(ctx, ar))
		mustErr(t, s.CreateAuthRequest(ctx, ar), store.ErrConflict)
		bad := ar
		bad.ID, bad.ClientID = "ar2", "unknown"
		mustErr(t, s.CreateAuthRequest(ctx, bad), store.ErrNotFound)

		got, err := s.GetAuthRequest(ctx, "ar1")
		mustNil(t, err)
		if !reflect.DeepEqual(got, ar) {
			t.Errorf("GetAuthRequest = %+v\nwant %+v", got, ar)
		}
		_, err = s.GetAuthRequestByCode(ctx, "codehash")
		mustErr(t, err, store.ErrNotFound)

		upd, err := s.UpdateAuthRequest(ctx, "ar1", func(a *model.AuthRequest) error {
			a.UserID, a.SessionID, a.AuthTime, a.Done, a.CodeHash = "u1", "s1", base, true, "codehash"
			return nil
		})
		mustNil(t, err)
		byCode, err := s.GetAuthRequestByCode(ctx, "codehash")
		mustNil(t, err)
		if !reflect.DeepEqual(byCode, upd) || byCode.UserID != "u1" || !byCode.Done {
			t.Errorf("by code = %+v\nwant %+v", byCode, upd)
		}
		// A second request may not take the same code.
		ar3 := ar
		ar3.ID = "ar3"
		mustNil(t, s.CreateAuthRequest(ctx, ar3))
		_, err = s.UpdateAuthRequest(ctx, "ar3", func(a *model.AuthRequest) error { a.CodeHash = "codehash"; return nil })
		mustErr(t, err, store.ErrConflict)
		// fn's error comes back and nothing changes.
		_, err = s.UpdateAuthRequest(ctx, "ar1", func(a *model.AuthRequest) error { a.Done = false; return errBoom })
		mustErr(t, err, errBoom)
		_, err = s.UpdateAuthRequest(ctx, "missing", func(*model.AuthRequest) error { return nil })
		mustErr(t, err, store.ErrNotFound)

		mustNil(t, s.DeleteAuthRequest(ctx, "ar1"))
		mustErr(t, s.DeleteAuthRequest(ctx, "ar1"), store.ErrNotFound)
	}},
	{"OIDC/TokensRotateAndRevoke", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustClient(t, s, "grafana")
		rt := token("rt1", model.TokenRefresh, "fam1", "grafana", "u1")
		at := token("at1", model.TokenAccess, "fam1", "grafana", "u1")
		other := token("at2", model.TokenAccess, "fam2", "grafana", "u2")
		for _, tk := range []model.OIDCToken{rt, at, other} {
			mustNil(t, s.CreateOIDCToken(ctx, tk))
		}
		mustErr(t, s.CreateOIDCToken(ctx, rt), store.ErrConflict)
		bad := token("x", model.TokenAccess, "f", "unknown", "u")
		mustErr(t, s.CreateOIDCToken(ctx, bad), store.ErrNotFound)

		got, err := s.GetOIDCToken(ctx, "rt1")
		mustNil(t, err)
		if !reflect.DeepEqual(got, rt) {
			t.Errorf("GetOIDCToken = %+v\nwant %+v", got, rt)
		}
		used, err := s.UseRefreshToken(ctx, "rt1", base.Add(time.Minute))
		mustNil(t, err)
		checkTime(t, "UsedAt", used.UsedAt, base.Add(time.Minute))
		again, err := s.UseRefreshToken(ctx, "rt1", base.Add(2*time.Minute))
		mustErr(t, err, store.ErrConflict)
		if again.FamilyID != "fam1" {
			t.Errorf("reuse returned family %q, want fam1", again.FamilyID)
		}
		_, err = s.UseRefreshToken(ctx, "at1", base)
		mustErr(t, err, store.ErrConflict) // an access token is never "used"
		_, err = s.UseRefreshToken(ctx, "missing", base)
		mustErr(t, err, store.ErrNotFound)

		n, err := s.RevokeOIDCFamily(ctx, "fam1", base.Add(time.Hour))
		mustNil(t, err)
		if n != 2 {
			t.Errorf("RevokeOIDCFamily revoked %d, want 2", n)
		}
		got, _ = s.GetOIDCToken(ctx, "at1")
		if got.ActiveAt(base) {
			t.Error("revoked access token still active")
		}
		got, _ = s.GetOIDCToken(ctx, "at2")
		if !got.ActiveAt(base) {
			t.Error("another family's token was revoked")
		}
		n, err = s.RevokeOIDCTokens(ctx, "u2", "grafana", "sess-u2", base)
		mustNil(t, err)
		if n != 1 {
			t.Errorf("RevokeOIDCTokens revoked %d, want 1", n)
		}
		mustNil(t, s.RevokeOIDCToken(ctx, "at2", base))
		mustErr(t, s.RevokeOIDCToken(ctx, "nope", base), store.ErrNotFound)
	}},
	{"OIDC/ConcurrentRefreshUseOnce", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustClient(t, s, "grafana")
		mustNil(t, s.CreateOIDCToken(ctx, token("rt", model.TokenRefresh, "f", "grafana", "u1")))
		results := parallel(8, func(int) (model.OIDCToken, error) { return s.UseRefreshToken(ctx, "rt", base) })
		ok := 0
		for _, r := range results {
			switch {
			case r.err == nil:
				ok++
			case !errors.Is(r.err, store.ErrConflict):
				t.Errorf("unexpected error %v", r.err)
			}
		}
		if ok != 1 {
			t.Errorf("%d concurrent uses succeeded, want exactly 1", ok)
		}
	}},
	{"OIDC/SigningKeys", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		k1 := model.SigningKey{ID: "k1", Algorithm: "RS256", Private: []byte{0, 1, 2, 255}, CreatedAt: base, ActiveAt: base}
		k2 := model.SigningKey{ID: "k2", Algorithm: "ES256", Private: []byte("sealed"), CreatedAt: base.Add(time.Hour), ActiveAt: base.Add(2 * time.Hour)}
		mustNil(t, s.CreateSigningKey(ctx, k1))
		mustNil(t, s.CreateSigningKey(ctx, k2))
		keys, err := s.ListSigningKeys(ctx)
		mustNil(t, err)
		if len(keys) != 2 || !reflect.DeepEqual(keys[0], k2) || !reflect.DeepEqual(keys[1], k1) {
			t.Fatalf("ListSigningKeys = %+v", keys)
		}
		mustNil(t, s.UpdateSigningKeyExpiry(ctx, "k1", base.Add(3*time.Hour)))
		mustErr(t, s.UpdateSigningKeyExpiry(ctx, "nope", base), store.ErrNotFound)
		n, err := s.DeleteExpiredOIDC(ctx, base.Add(3*time.Hour))
		mustNil(t, err)
		if n != 1 {
			t.Errorf("DeleteExpiredOIDC removed %d, want 1 (k1)", n)
		}
		keys, _ = s.ListSigningKeys(ctx)
		if len(keys) != 1 || keys[0].ID != "k2" {
			t.Errorf("after GC: %+v", keys)
		}
	}},
	{"OIDC/Consents", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustClient(t, s, "grafana")
		mustUser(t, s, "u1", "alice")
		_, err := s.GetConsent(ctx, "u1", "grafana")
		mustErr(t, err, store.ErrNotFound)
		c := model.Consent{UserID: "u1", ClientID: "grafana", Scopes: []string{"openid", "email"}, GrantedAt: base}
		mustNil(t, s.PutConsent(ctx, c))
		c.Scopes = append(c.Scopes, "groups")
		mustNil(t, s.PutConsent(ctx, c))
		got, err := s.GetConsent(ctx, "u1", "grafana")
		mustNil(t, err)
		if !reflect.DeepEqual(got, c) {
			t.Errorf("GetConsent = %+v, want %+v", got, c)
		}
		// Deleting the user takes the consent with it.
		mustNil(t, s.DeleteUser(ctx, "u1"))
		_, err = s.GetConsent(ctx, "u1", "grafana")
		mustErr(t, err, store.ErrNotFound)
		mustErr(t, s.DeleteConsent(ctx, "u1", "grafana"), store.ErrNotFound)
	}},
	{"OIDC/DeviceAuth", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustClient(t, s, "tv")
		d := model.DeviceAuth{ID: "dc1", UserCode: "BCDF-GHJK", ClientID: "tv", Scopes: []string{"openid"}, CreatedAt: base, ExpiresAt: base.Add(5 * time.Minute)}
		mustNil(t, s.CreateDeviceAuth(ctx, d))
		dup := d
		dup.ID = "dc2"
		mustErr(t, s.CreateDeviceAuth(ctx, dup), store.ErrConflict)
		got, err := s.GetDeviceAuthByUserCode(ctx, "BCDF-GHJK")
		mustNil(t, err)
		if !reflect.DeepEqual(got, d) {
			t.Errorf("by user code = %+v, want %+v", got, d)
		}
		upd, err := s.UpdateDeviceAuth(ctx, "dc1", func(x *model.DeviceAuth) error {
			x.UserID, x.Done, x.AuthTime = "u1", true, base
			return nil
		})
		mustNil(t, err)
		got, err = s.GetDeviceAuth(ctx, "dc1")
		mustNil(t, err)
		if !reflect.DeepEqual(got, upd) || !got.Done {
			t.Errorf("after update = %+v", got)
		}
		_, err = s.GetDeviceAuth(ctx, "nope")
		mustErr(t, err, store.ErrNotFound)
	}},
	{"OIDC/DeleteExpiredAndCascade", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustClient(t, s, "grafana")
		mustClient(t, s, "gone")
		mustNil(t, s.CreateOIDCToken(ctx, token("old", model.TokenAccess, "f", "grafana", "u")))
		fresh := token("new", model.TokenAccess, "f", "grafana", "u")
		fresh.ExpiresAt = base.Add(48 * time.Hour)
		mustNil(t, s.CreateOIDCToken(ctx, fresh))
		mustNil(t, s.CreateOIDCToken(ctx, token("of-gone", model.TokenAccess, "g", "gone", "u")))
		mustNil(t, s.CreateAuthRequest(ctx, model.AuthRequest{ID: "ar", ClientID: "grafana", MaxAge: -1, CreatedAt: base, ExpiresAt: base.Add(time.Minute)}))
		n, err := s.DeleteExpiredOIDC(ctx, base.Add(2*time.Hour))
		mustNil(t, err)
		if n != 3 {
			t.Errorf("DeleteExpiredOIDC removed %d, want 3", n)
		}
		if _, err := s.GetOIDCToken(ctx, "new"); err != nil {
			t.Errorf("unexpired token removed: %v", err)
		}
		mustNil(t, s.CreateOIDCToken(ctx, fresh2("of-gone2")))
		mustNil(t, s.DeleteOIDCClient(ctx, "gone"))
		_, err = s.GetOIDCToken(ctx, "of-gone2")
		mustErr(t, err, store.ErrNotFound)
		list, _ := s.ListOIDCClients(ctx)
		if !slices.EqualFunc(list, []string{"grafana"}, func(c model.OIDCClient, id string) bool { return c.ClientID == id }) {
			t.Errorf("clients after delete: %v", list)
		}
	}},
}

func fresh2(id string) model.OIDCToken {
	tk := token(id, model.TokenAccess, "g2", "gone", "u")
	tk.ExpiresAt = base.Add(72 * time.Hour)
	return tk
}
