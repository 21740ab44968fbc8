package oidcop

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/secret"
	"github.com/gatehouse-sso/gatehouse/internal/store/sqlstore"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type nopPages struct{}

func (nopPages) RenderConsent(http.ResponseWriter, *http.Request, string, []string, string, string) {}
func (nopPages) RenderReauth(http.ResponseWriter, *http.Request, string, string)                    {}
func (nopPages) RenderDevice(http.ResponseWriter, *http.Request, string, string, string)            {}
func (nopPages) RenderMessage(w http.ResponseWriter, _ *http.Request, status int, _, _ string) {
	w.WriteHeader(status)
}

const testIssuer = "https://auth.example.com"

func newTestProvider(t testing.TB, clk *clock, mutate func(*Options)) (*Provider, *sqlstore.Store) {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "gh.db"), sqlstore.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	key, err := secret.Parse(strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Issuer: testIssuer, Store: st, SecretHasher: NewSecretHasher(key.Derive("t")), KeySealer: key.Sealer("k"),
		SigningAlgorithm: "ES256", KeyRotation: 10 * 24 * time.Hour, MaxTokenLifetime: time.Hour,
		CurrentSession: func(*http.Request) (model.Session, bool) { return model.Session{}, false },
		RevokeSession:  func(context.Context, string) error { return nil },
		Pages:          nopPages{}, Now: clk.Now,
	}
	if mutate != nil {
		mutate(&o)
	}
	p, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

func TestSecretHasher(t *testing.T) {
	h := NewSecretHasher([]byte("key-one"))
	other := NewSecretHasher([]byte("key-two"))
	stored := h.Hash("s3cret-value")
	for _, tc := range []struct {
		name   string
		h      *SecretHasher
		secret string
		hash   string
		want   bool
	}{
		{"right secret", h, "s3cret-value", stored, true},
		{"wrong secret", h, "s3cret-valuf", stored, false},
		{"another key", other, "s3cret-value", stored, false},
		{"no secret set", h, "", "", false},
		{"empty secret", h, "", h.Hash(""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.h.Verify(tc.secret, tc.hash); got != tc.want {
				t.Errorf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
	if !strings.HasPrefix(stored, "hmac256:") || strings.Contains(stored, "s3cret") {
		t.Errorf("hash %q", stored)
	}
	if a, b := NewClientSecret(), NewClientSecret(); a == b || len(a) < 43 {
		t.Errorf("secrets %q %q", a, b)
	}
}

func kids(t *testing.T, p *Provider) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(p.keys.jwksJSON(), &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestKeyRotation(t *testing.T) {
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	p, st := newTestProvider(t, clk, nil)
	ctx := t.Context()
	first := p.keys.signingKey().ID()
	if got := kids(t, p); len(got) != 1 || got[0] != first {
		t.Fatalf("first start: JWKS %v, signing %s", got, first)
	}
	if p.keys.signingKey().SignatureAlgorithm() != jose.ES256 {
		t.Errorf("alg %s", p.keys.signingKey().SignatureAlgorithm())
	}

	// A restart reuses the key.
	p2, _ := newTestProvider(t, clk, func(o *Options) { o.Store = st })
	if p2.keys.signingKey().ID() != first {
		t.Error("a second start made a new key")
	}

	// Before the rotation is due, minus the pre-publication window: the
	// successor is published but does not sign yet.
	clk.Add(10*24*time.Hour - p.keys.prepublish)
	mustEnsure(t, p)
	if got := kids(t, p); len(got) != 2 {
		t.Fatalf("pre-published: JWKS %v", got)
	}
	if p.keys.signingKey().ID() != first {
		t.Error("the pre-published key signs too early")
	}

	// Due: the new key signs, the old one stays published.
	clk.Add(p.keys.prepublish)
	mustEnsure(t, p)
	second := p.keys.signingKey().ID()
	if second == first || len(kids(t, p)) != 2 {
		t.Fatalf("after rotation: signing %s, JWKS %v", second, kids(t, p))
	}
	mustEnsure(t, p) // sets the old key's expiry
	keys, err := st.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ID == first && !k.ExpiresAt.Equal(clk.Now().Add(time.Hour)) {
			t.Errorf("old key expires at %v, want now+MaxTokenLifetime", k.ExpiresAt)
		}
	}

	// Once its tokens have expired it leaves the key set and the store.
	clk.Add(time.Hour + time.Second)
	if err := p.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kids(t, p); len(got) != 1 || got[0] != second {
		t.Errorf("after expiry: JWKS %v, want [%s]", got, second)
	}
	if keys, _ := st.ListSigningKeys(ctx); len(keys) != 1 {
		t.Errorf("store still has %d keys", len(keys))
	}
}

func mustEnsure(t *testing.T, p *Provider) {
	t.Helper()
	if err := p.keys.ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestKeysSealedAtRest(t *testing.T) {
	clk := &clock{t: time.Now()}
	p, st := newTestProvider(t, clk, func(o *Options) { o.SigningAlgorithm = "RS256" })
	keys, err := st.ListSigningKeys(t.Context())
	if err != nil || len(keys) != 1 {
		t.Fatal(keys, err)
	}
	if strings.Contains(string(keys[0].Private), "PRIVATE") || len(keys[0].Private) < 1000 {
		t.Errorf("stored key does not look sealed: %d bytes", len(keys[0].Private))
	}
	other, _ := secret.Parse(strings.Repeat("cd", 32))
	if _, err := other.Sealer("k").Open(keys[0].Private, []byte(keys[0].ID)); err == nil {
		t.Error("another secret key opened the signing key")
	}
	if p.keys.signingKey().SignatureAlgorithm() != jose.RS256 {
		t.Error("want RS256")
	}
}

func TestCreateAuthRequestPKCE(t *testing.T) {
	clk := &clock{t: time.Now()}
	p, st := newTestProvider(t, clk, nil)
	ctx := t.Context()
	for _, c := range []model.OIDCClient{
		{ClientID: "public", AppSlug: "a", Public: true, GrantTypes: []string{model.GrantAuthorizationCode}},
		{ClientID: "conf", AppSlug: "b", SecretHash: "x", SecretFromConfig: true, GrantTypes: []string{model.GrantAuthorizationCode}},
	} {
		if err := st.PutOIDCClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	challenge := strings.Repeat("A", 43)
	for _, tc := range []struct {
		name, client, challenge string
		method                  oidc.CodeChallengeMethod
		ok                      bool
	}{
		{"public with S256", "public", challenge, oidc.CodeChallengeMethodS256, true},
		{"public without PKCE", "public", "", "", false},
		{"public with plain", "public", challenge, oidc.CodeChallengeMethodPlain, false},
		{"challenge without method means plain", "public", challenge, "", false},
		{"confidential without PKCE", "conf", "", "", true},
		{"confidential with S256", "conf", challenge, oidc.CodeChallengeMethodS256, true},
		{"confidential with plain", "conf", challenge, oidc.CodeChallengeMethodPlain, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.st.CreateAuthRequest(ctx, &oidc.AuthRequest{
				ClientID: tc.client, RedirectURI: "http://localhost/cb", Scopes: []string{"openid"},
				ResponseType: oidc.ResponseTypeCode, CodeChallenge: tc.challenge, CodeChallengeMethod: tc.method,
			}, "")
			if (err == nil) != tc.ok {
				t.Errorf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestNeedsFreshLogin(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	req := model.AuthRequest{CreatedAt: now.Add(-time.Minute), MaxAge: -1}
	old := model.Session{CreatedAt: now.Add(-2 * time.Hour)}
	fresh := model.Session{CreatedAt: now.Add(-30 * time.Second)}
	withPrompt := req
	withPrompt.Prompt = []string{oidc.PromptLogin}
	maxAge := req
	maxAge.MaxAge = 3600
	for _, tc := range []struct {
		name string
		ar   model.AuthRequest
		s    model.Session
		want bool
	}{
		{"no constraint", req, old, false},
		{"prompt=login, old session", withPrompt, old, true},
		{"prompt=login, signed in for this request", withPrompt, fresh, false},
		{"max_age exceeded", maxAge, old, true},
		{"max_age met", maxAge, fresh, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := needsFreshLogin(tc.ar, tc.s, now); got != tc.want {
				t.Errorf("needsFreshLogin = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNormalizeUserCode(t *testing.T) {
	for in, want := range map[string]string{
		"BCDF-GHJK": "BCDF-GHJK", "bcdfghjk": "BCDF-GHJK", " bcdf ghjk ": "BCDF-GHJK", "BC": "BC", "": "",
	} {
		if got := normalizeUserCode(in); got != want {
			t.Errorf("normalizeUserCode(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestClientCredentialsAndBearer runs the token endpoint in process and
// checks what forward auth will rely on: VerifyBearer accepts our live
// tokens only.
func TestClientCredentialsAndBearer(t *testing.T) {
	clk := &clock{t: time.Now()}
	p, st := newTestProvider(t, clk, nil)
	ctx := t.Context()
	for _, format := range []string{model.TokenOpaque, model.TokenJWT} {
		t.Run(format, func(t *testing.T) {
			id := "robot-" + format
			if err := st.PutOIDCClient(ctx, model.OIDCClient{ClientID: id, AppSlug: id, SecretHash: p.o.SecretHasher.Hash("pw-0123456789abcdef"), SecretFromConfig: true,
				GrantTypes: []string{model.GrantClientCredentials}, Groups: []string{"robots"}, TokenFormat: format}); err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			p.RegisterBackChannel(mux)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			token := func(secret string) (int, string) {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"groups"}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(id, secret)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var tr struct {
					AccessToken string `json:"access_token"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&tr)
				return resp.StatusCode, tr.AccessToken
			}
			if status, _ := token("wrong"); status != http.StatusUnauthorized {
				t.Errorf("wrong secret: %d", status)
			}
			status, at := token("pw-0123456789abcdef")
			if status != http.StatusOK || at == "" {
				t.Fatalf("token: %d", status)
			}
			ident, ok, err := p.Bearer(ctx, at)
			if err != nil || !ok || ident.Subject != "client/"+id || !ident.ServiceAccount || len(ident.Groups) != 1 || ident.Groups[0] != "robots" {
				t.Errorf("Bearer = %+v %v %v", ident, ok, err)
			}
			if _, _, ok, err := p.VerifyBearer(ctx, at); ok || err != nil {
				t.Errorf("VerifyBearer accepted a service account's token as a user: %v %v", ok, err)
			}
			for _, bad := range []string{"", "garbage", at + "x", strings.Repeat("a", 9000)} {
				if _, _, ok, err := p.VerifyBearer(ctx, bad); ok || err != nil {
					t.Errorf("VerifyBearer(%.20q) = %v, %v", bad, ok, err)
				}
			}
			clk.Add(11 * time.Minute) // past the default access token lifetime
			if _, _, ok, _ := p.VerifyBearer(ctx, at); ok {
				t.Error("expired token accepted")
			}
		})
	}
}
