package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/jmespath/go-jmespath"
	"golang.org/x/oauth2"
)

// These are what the docs (docs/grafana.md, docs/argocd.md,
// docs/oidc-clients.md) tell operators to configure.
const (
	grafanaRedirect = "http://grafana.test/login/generic_oauth"
	grafanaLogout   = "http://grafana.test/login"
	argocdRedirect  = "http://localhost:8085/auth/callback"
	// grafanaRole is Grafana's role_attribute_path from docs/grafana.md.
	grafanaRole = "contains(groups[*], 'admins') && 'Admin' || 'Viewer'"
	// Characters x/oauth2 escapes in the Basic header: the server must
	// URL-decode it (RFC 6749 §2.3.1).
	grafanaSecret = "grafana+client/secret=2f8d0c1e9b7a"
	robotSecret   = "robot-client-secret-6b1f0d2c8e4a"
)

const oidcConfig = `
external_url: {{EXTERNAL}}
groups:
  - name: grafana-users
apps:
  - slug: grafana
    name: Grafana
    allow_groups: [admins, grafana-users]
    oidc:
      client_id: grafana
      client_secret_file: {{DIR}}/grafana-secret
      redirect_uris: ["` + grafanaRedirect + `"]
      post_logout_redirect_uris: ["` + grafanaLogout + `"]
  - slug: argocd-cli
    name: Argo CD CLI
    oidc:
      client_id: argocd-cli
      public: true
      redirect_uris: ["` + argocdRedirect + `"]
  - slug: short
    name: Short-lived
    oidc:
      client_id: short
      client_secret: short-lived-secret-0123456789
      redirect_uris: ["http://short.test/cb"]
      access_token_lifetime: 1s
  - slug: wiki
    name: Wiki
    oidc:
      client_id: wiki
      client_secret: wiki-client-secret-0123456789
      redirect_uris: ["http://wiki.test/cb"]
      consent: explicit
  - slug: robot
    name: Backup robot
    oidc:
      client_id: robot
      client_secret: ` + robotSecret + `
      grant_types: [client_credentials]
      groups: [robots]
  - slug: ci
    name: CI runner
    oidc:
      client_id: ci
      grant_types: [client_credentials]
  - slug: tv
    name: Living-room TV
    oidc:
      client_id: tv
      public: true
      grant_types: [device_code, refresh_token]
  - slug: tvbox
    name: Set-top box
    oidc:
      client_id: tvbox
      client_secret: ` + robotSecret + `
      grant_types: [device_code]
`

// oidcEnv is one running server with the browser-facing URL (external_url,
// on localhost) and a back-channel URL on another host name (127.0.0.1),
// as Grafana reaches Gatehouse through its in-cluster Service.
type oidcEnv struct {
	srv      *Server
	external string // http://localhost:PORT, the issuer
	internal string // http://127.0.0.1:PORT
	adminPW  string
	carolPW  string
}

func startOIDC(t *testing.T) *oidcEnv {
	t.Helper()
	port := oidcFreePort(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "grafana-secret"), []byte(grafanaSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	external := fmt.Sprintf("http://localhost:%d", port)
	srv := StartServer(t, ServerOptions{
		Dir:        dir,
		ConfigYAML: strings.ReplaceAll(oidcConfig, "{{EXTERNAL}}", external),
		// The harness sets its own listen address and external URL; ours
		// come later and win.
		Env: []string{fmt.Sprintf("GATEHOUSE_LISTEN=127.0.0.1:%d", port), "GATEHOUSE_EXTERNAL_URL=" + external},
	})
	e := &oidcEnv{srv: srv, external: external, internal: srv.URL, adminPW: srv.BootstrapPassword(), carolPW: "carol horse battery"}
	if !strings.HasSuffix(srv.URL, fmt.Sprint(port)) {
		t.Fatalf("server listens on %s, want port %d", srv.URL, port)
	}
	srv.MustCLI(e.carolPW+"\n", "user", "create", "carol", "--email", "carol@example.com", "--name", "Carol Danvers", "--group", "grafana-users", "--password-stdin")
	srv.MustCLI("dave horse battery\n", "user", "create", "dave", "--email", "dave@example.com", "--password-stdin")
	return e
}

func oidcFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// authorize drives the browser from authURL through the sign-in form (when
// needed) to the client's redirect URI and returns that URL. The last
// response is returned too when the flow stops on a Gatehouse page.
func (e *oidcEnv) authorize(t *testing.T, b *Browser, authURL, username, password string) (*url.URL, *http.Response, string) {
	t.Helper()
	next := authURL
	for range 10 {
		resp, body := b.Get(next)
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			return nil, resp, body
		}
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(loc.String(), e.external) {
			return loc, resp, body
		}
		if loc.Path == "/login" {
			resp, body := b.SignIn(e.external, username, password, loc.Query().Get("rd"))
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("sign-in: %d\n%s", resp.StatusCode, body)
			}
			l, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
			next = l.String()
			continue
		}
		next = loc.String()
	}
	t.Fatal("too many redirects")
	return nil, nil, ""
}

// code runs authorize and returns the code, checking state.
func (e *oidcEnv) code(t *testing.T, b *Browser, authURL, username, password, state string) string {
	t.Helper()
	u, resp, body := e.authorize(t, b, authURL, username, password)
	if u == nil {
		t.Fatalf("flow stopped at %s with %d:\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	q := u.Query()
	if q.Get("error") != "" {
		t.Fatalf("authorization error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("callback %s: want state %q and a code", u, state)
	}
	return q.Get("code")
}

func (e *oidcEnv) grafana(provider *oidc.Provider) *oauth2.Config {
	// Grafana's generic_oauth: auth_url external, token_url internal, and
	// client_secret_basic (x/oauth2 AutoDetect, as Grafana's default).
	return &oauth2.Config{
		ClientID:     "grafana",
		ClientSecret: grafanaSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:  provider.Endpoint().AuthURL,
			TokenURL: e.internal + "/oauth2/token",
		},
		RedirectURL: grafanaRedirect,
		Scopes:      []string{oidc.ScopeOpenID, "profile", "email", "groups", oidc.ScopeOfflineAccess},
	}
}

type idClaims struct {
	Sub               string   `json:"sub"`
	PreferredUsername string   `json:"preferred_username"`
	Email             string   `json:"email"`
	EmailVerified     bool     `json:"email_verified"`
	Name              string   `json:"name"`
	Groups            []string `json:"groups"`
	Nonce             string   `json:"nonce"`
}

// verifyID verifies the ID token with keys fetched from the internal host
// and the external issuer, as split-URL deployments do.
func (e *oidcEnv) verifyID(t *testing.T, ctx context.Context, clientID string, tok *oauth2.Token) (*oidc.IDToken, map[string]any, idClaims) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no id_token in the token response")
	}
	keys := oidc.NewRemoteKeySet(ctx, e.internal+"/oauth2/keys")
	idt, err := oidc.NewVerifier(e.external, keys, &oidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token does not verify: %v", err)
	}
	var m map[string]any
	var c idClaims
	if err := idt.Claims(&m); err != nil {
		t.Fatal(err)
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return idt, m, c
}

func (e *oidcEnv) userinfo(ctx context.Context, accessToken string) (int, map[string]any) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.internal+"/oauth2/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func role(t *testing.T, claims map[string]any) any {
	t.Helper()
	r, err := jmespath.Search(grafanaRole, claims)
	if err != nil {
		t.Fatalf("JMESPath: %v", err)
	}
	return r
}

func oauthErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestOIDC(t *testing.T) {
	e := startOIDC(t)
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, e.external)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}

	t.Run("issuer is fixed, discovery lists external URLs on any host", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.internal+"/.well-known/openid-configuration", nil)
		req.Host = "evil.example.com"
		req.Header.Set("X-Forwarded-Host", "evil.example.com")
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			t.Fatal(err)
		}
		if d["issuer"] != e.external || d["token_endpoint"] != e.external+"/oauth2/token" || d["jwks_uri"] != e.external+"/oauth2/keys" {
			t.Errorf("discovery on another host: issuer %v token %v jwks %v", d["issuer"], d["token_endpoint"], d["jwks_uri"])
		}
		if fmt.Sprint(d["code_challenge_methods_supported"]) != "[S256]" || fmt.Sprint(d["response_types_supported"]) != "[code]" {
			t.Errorf("PKCE methods %v, response types %v", d["code_challenge_methods_supported"], d["response_types_supported"])
		}
	})

	grafana := e.grafana(provider)
	var adminTok *oauth2.Token
	admin := NewBrowser(t)

	t.Run("Grafana: admin gets Admin", func(t *testing.T) {
		code := e.code(t, admin, grafana.AuthCodeURL("st-1", oidc.Nonce("n-1")), "admin", e.adminPW, "st-1")
		tok, err := grafana.Exchange(ctx, code)
		if err != nil {
			t.Fatalf("token exchange on the internal host: %v", err)
		}
		idt, m, c := e.verifyID(t, ctx, "grafana", tok)
		if idt.Issuer != e.external || len(idt.Audience) != 1 || idt.Audience[0] != "grafana" || c.Nonce != "n-1" {
			t.Errorf("iss %q aud %v nonce %q", idt.Issuer, idt.Audience, c.Nonce)
		}
		if c.PreferredUsername != "admin" || c.Sub == "" || c.Sub == "admin" || len(c.Groups) == 0 {
			t.Errorf("claims %+v: want preferred_username admin, an opaque sub and groups", c)
		}
		if got := role(t, m); got != "Admin" {
			t.Errorf("Grafana role = %v, want Admin (claims %v)", got, m)
		}
		if tok.RefreshToken == "" {
			t.Error("no refresh token for offline_access")
		}
		status, ui := e.userinfo(ctx, tok.AccessToken)
		if status != http.StatusOK || ui["sub"] != c.Sub || fmt.Sprint(ui["groups"]) != fmt.Sprint(c.Groups) || ui["preferred_username"] != "admin" {
			t.Errorf("userinfo on the internal host: %d %v", status, ui)
		}
		adminTok = tok
	})

	t.Run("Grafana: another user gets Viewer", func(t *testing.T) {
		b := NewBrowser(t)
		code := e.code(t, b, grafana.AuthCodeURL("st-2"), "carol", e.carolPW, "st-2")
		tok, err := grafana.Exchange(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		_, m, c := e.verifyID(t, ctx, "grafana", tok)
		if got := role(t, m); got != "Viewer" {
			t.Errorf("Grafana role = %v, want Viewer", got)
		}
		if c.Email != "carol@example.com" || !c.EmailVerified || c.Name != "Carol Danvers" || fmt.Sprint(c.Groups) != "[grafana-users]" {
			t.Errorf("claims %+v", c)
		}
	})

	t.Run("ArgoCD CLI: public client, PKCE, loopback redirect, groups", func(t *testing.T) {
		// argocd login --sso runs its own discovery from the laptop.
		p, err := oidc.NewProvider(ctx, e.external)
		if err != nil {
			t.Fatal(err)
		}
		cli := &oauth2.Config{ClientID: "argocd-cli", Endpoint: p.Endpoint(), RedirectURL: argocdRedirect,
			Scopes: []string{oidc.ScopeOpenID, "profile", "email", "groups", oidc.ScopeOfflineAccess}}
		verifier := oauth2.GenerateVerifier()
		claims := oauth2.SetAuthURLParam("claims", `{"id_token":{"groups":{"essential":true}}}`)
		code := e.code(t, admin, cli.AuthCodeURL("st-3", oauth2.S256ChallengeOption(verifier), claims), "", "", "st-3")
		tok, err := cli.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("public client exchange: %v", err)
		}
		_, _, c := e.verifyID(t, ctx, "argocd-cli", tok)
		if len(c.Groups) == 0 || c.Groups[0] != "admins" {
			t.Errorf("groups in ID token = %v", c.Groups)
		}
		// RFC 8252: any port on the loopback interface.
		cli.RedirectURL = "http://127.0.0.1:54321/auth/callback"
		verifier = oauth2.GenerateVerifier()
		code = e.code(t, admin, cli.AuthCodeURL("st-4", oauth2.S256ChallengeOption(verifier)), "", "", "st-4")
		if _, err := cli.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
			t.Errorf("loopback redirect on another port: %v", err)
		}
	})

	t.Run("claims parameter alone asks for groups", func(t *testing.T) {
		cli := &oauth2.Config{ClientID: "argocd-cli", Endpoint: provider.Endpoint(), RedirectURL: argocdRedirect, Scopes: []string{oidc.ScopeOpenID}}
		verifier := oauth2.GenerateVerifier()
		code := e.code(t, admin, cli.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier),
			oauth2.SetAuthURLParam("claims", `{"id_token":{"groups":{"essential":true}},"userinfo":{"nickname":null}}`)), "", "", "st")
		tok, err := cli.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, c := e.verifyID(t, ctx, "argocd-cli", tok); len(c.Groups) == 0 {
			t.Error("no groups although the claims parameter asked for them")
		}
	})

	t.Run("security", func(t *testing.T) {
		t.Run("code replay fails and revokes what the code issued", func(t *testing.T) {
			code := e.code(t, admin, grafana.AuthCodeURL("s"), "", "", "s")
			tok, err := grafana.Exchange(ctx, code)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := grafana.Exchange(ctx, code); oauthErr(err) != "invalid_grant" {
				t.Fatalf("replayed code: %v, want invalid_grant", err)
			}
			if status, _ := e.userinfo(ctx, tok.AccessToken); status != http.StatusUnauthorized && status != http.StatusForbidden {
				t.Errorf("access token of a replayed code still works at userinfo: %d", status)
			}
			if _, err := grafana.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthErr(err) != "invalid_grant" {
				t.Errorf("refresh token of a replayed code: %v, want invalid_grant", err)
			}
		})

		t.Run("wrong redirect_uri", func(t *testing.T) {
			bad := *grafana
			bad.RedirectURL = "http://evil.test/login/generic_oauth"
			resp, body := admin.Get(bad.AuthCodeURL("s"))
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("authorize with an unregistered redirect_uri: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
			code := e.code(t, admin, grafana.AuthCodeURL("s"), "", "", "s")
			if _, err := bad.Exchange(ctx, code); oauthErr(err) != "invalid_grant" {
				t.Errorf("exchange with another redirect_uri: %v, want invalid_grant", err)
			}
		})

		cli := &oauth2.Config{ClientID: "argocd-cli", Endpoint: oauth2.Endpoint{AuthURL: provider.Endpoint().AuthURL, TokenURL: e.internal + "/oauth2/token"},
			RedirectURL: argocdRedirect, Scopes: []string{oidc.ScopeOpenID}}
		authError := func(t *testing.T, u string) string {
			t.Helper()
			loc, resp, body := e.authorize(t, admin, u, "", "")
			if loc == nil {
				t.Fatalf("no redirect: %d %s", resp.StatusCode, body)
			}
			return loc.Query().Get("error")
		}

		t.Run("public client without PKCE is refused", func(t *testing.T) {
			if got := authError(t, cli.AuthCodeURL("s")); got != "invalid_request" {
				t.Errorf("error = %q, want invalid_request", got)
			}
		})
		t.Run("plain PKCE is refused", func(t *testing.T) {
			plain := cli.AuthCodeURL("s", oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)), oauth2.SetAuthURLParam("code_challenge_method", "plain"))
			if got := authError(t, plain); got != "invalid_request" {
				t.Errorf("plain: error = %q, want invalid_request", got)
			}
			noMethod := cli.AuthCodeURL("s", oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)))
			if got := authError(t, noMethod); got != "invalid_request" {
				t.Errorf("challenge without method (plain): error = %q, want invalid_request", got)
			}
		})
		t.Run("missing or wrong PKCE verifier", func(t *testing.T) {
			verifier := oauth2.GenerateVerifier()
			code := e.code(t, admin, cli.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "", "", "s")
			if _, err := cli.Exchange(ctx, code); err == nil {
				t.Error("exchange without the verifier succeeded")
			}
			if _, err := cli.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); oauthErr(err) != "invalid_grant" {
				t.Errorf("wrong verifier: %v, want invalid_grant", err)
			}
			if _, err := cli.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
				t.Errorf("the right verifier after failed attempts: %v", err)
			}
		})

		t.Run("wrong client secret is refused before the code is spent", func(t *testing.T) {
			code := e.code(t, admin, grafana.AuthCodeURL("s"), "", "", "s")
			for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
				bad := *grafana
				bad.ClientSecret, bad.Endpoint.AuthStyle = "not-the-secret", style
				if _, err := bad.Exchange(ctx, code); oauthErr(err) != "invalid_client" {
					t.Errorf("style %d, wrong secret: %v, want invalid_client", style, err)
				}
			}
			post := *grafana
			post.Endpoint.AuthStyle = oauth2.AuthStyleInParams // client_secret_post
			if _, err := post.Exchange(ctx, code); err != nil {
				t.Errorf("the right secret (client_secret_post) after failed attempts: %v", err)
			}
		})

		t.Run("refresh rotates; reuse revokes the family", func(t *testing.T) {
			code := e.code(t, admin, grafana.AuthCodeURL("s"), "", "", "s")
			tok, err := grafana.Exchange(ctx, code)
			if err != nil {
				t.Fatal(err)
			}
			first := tok.RefreshToken
			tok2, err := grafana.TokenSource(ctx, &oauth2.Token{RefreshToken: first}).Token()
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if tok2.RefreshToken == "" || tok2.RefreshToken == first {
				t.Fatal("refresh token not rotated")
			}
			if _, _, c := e.verifyID(t, ctx, "grafana", tok2); len(c.Groups) == 0 {
				t.Error("refreshed ID token lacks groups")
			}
			if _, err := grafana.TokenSource(ctx, &oauth2.Token{RefreshToken: first}).Token(); oauthErr(err) != "invalid_grant" {
				t.Fatalf("reused refresh token: %v, want invalid_grant", err)
			}
			if _, err := grafana.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token(); oauthErr(err) != "invalid_grant" {
				t.Errorf("the rotated token after a reuse: %v, want invalid_grant (family revoked)", err)
			}
			for _, at := range []string{tok.AccessToken, tok2.AccessToken} {
				if status, _ := e.userinfo(ctx, at); status == http.StatusOK {
					t.Error("an access token of the revoked family still works")
				}
			}
		})

		t.Run("expired access token", func(t *testing.T) {
			short := &oauth2.Config{ClientID: "short", ClientSecret: "short-lived-secret-0123456789", Endpoint: provider.Endpoint(),
				RedirectURL: "http://short.test/cb", Scopes: []string{oidc.ScopeOpenID, "profile"}}
			tok, err := short.Exchange(ctx, e.code(t, admin, short.AuthCodeURL("s"), "", "", "s"))
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			if status, _ := e.userinfo(ctx, tok.AccessToken); status == http.StatusOK {
				t.Error("expired access token accepted at userinfo")
			}
		})

		t.Run("user removed from the allowed group", func(t *testing.T) {
			b := NewBrowser(t)
			tok, err := grafana.Exchange(ctx, e.code(t, b, grafana.AuthCodeURL("s"), "carol", e.carolPW, "s"))
			if err != nil {
				t.Fatal(err)
			}
			e.srv.MustCLI("", "group", "remove-member", "grafana-users", "carol")
			if _, err := grafana.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthErr(err) != "invalid_grant" {
				t.Errorf("refresh after losing access: %v, want invalid_grant", err)
			}
			u, resp, body := e.authorize(t, b, grafana.AuthCodeURL("s"), "carol", e.carolPW)
			if u != nil || resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "No access to Grafana") {
				t.Errorf("sign-in after losing access: %v %d\n%s", u, resp.StatusCode, body)
			}
			// prompt=none shows no page: the refusal goes back to the client.
			u, _, _ = e.authorize(t, b, grafana.AuthCodeURL("s", oauth2.SetAuthURLParam("prompt", "none")), "carol", e.carolPW)
			if u == nil || u.Query().Get("error") != "access_denied" || u.Query().Get("state") != "s" {
				t.Errorf("prompt=none after losing access: %v", u)
			}
			// dave was never in an allowed group.
			u, resp, body = e.authorize(t, NewBrowser(t), grafana.AuthCodeURL("s"), "dave", "dave horse battery")
			if u != nil || resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not allowed to use Grafana") {
				t.Errorf("user outside allow_groups: %v %d\n%s", u, resp.StatusCode, body)
			}
		})

		t.Run("logout with id_token_hint ends the IdP session and its tokens", func(t *testing.T) {
			b := NewBrowser(t)
			tok, err := grafana.Exchange(ctx, e.code(t, b, grafana.AuthCodeURL("s"), "admin", e.adminPW, "s"))
			if err != nil {
				t.Fatal(err)
			}
			hint := tok.Extra("id_token").(string)
			// An unregistered post_logout_redirect_uri is refused.
			resp, _ := b.Get(e.external + "/oauth2/end_session?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://evil.test/"}}.Encode())
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("unregistered post_logout_redirect_uri: %d", resp.StatusCode)
			}
			// Without a hint nobody is signed out by a bare link.
			resp, _ = b.Get(e.external + "/oauth2/end_session")
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/logout" {
				t.Errorf("logout without hint: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			resp, _ = b.Get(e.external + "/oauth2/end_session?" + url.Values{"client_id": {"grafana"}, "post_logout_redirect_uri": {grafanaLogout}}.Encode())
			if want := "/logout?rd=" + url.QueryEscape(grafanaLogout); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
				t.Errorf("logout with client_id, no hint: %d %q, want the sign-out page with rd", resp.StatusCode, resp.Header.Get("Location"))
			}
			resp, _ = b.Get(e.external + "/oauth2/end_session?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {grafanaLogout}, "state": {"bye"}}.Encode())
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != grafanaLogout+"?state=bye" {
				t.Fatalf("logout: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if resp, _ := b.Get(e.external + "/"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
				t.Errorf("IdP session still alive after logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if status, _ := e.userinfo(ctx, tok.AccessToken); status == http.StatusOK {
				t.Error("access token from the ended session still works")
			}
			// The admin's other browser (another session) is untouched.
			if status, _ := e.userinfo(ctx, adminTok.AccessToken); status != http.StatusOK {
				t.Errorf("another session's token: %d", status)
			}
		})
	})

	t.Run("explicit consent is asked once and remembered", func(t *testing.T) {
		wiki := &oauth2.Config{ClientID: "wiki", ClientSecret: "wiki-client-secret-0123456789", Endpoint: provider.Endpoint(),
			RedirectURL: "http://wiki.test/cb", Scopes: []string{oidc.ScopeOpenID, "email"}}
		b := NewBrowser(t)
		u, resp, body := e.authorize(t, b, wiki.AuthCodeURL("s"), "carol", e.carolPW)
		if u != nil || resp.StatusCode != http.StatusOK || !strings.Contains(body, "Allow Wiki?") {
			t.Fatalf("want the consent page, got %v %d", u, resp.StatusCode)
		}
		id := formValue(t, body, "id")
		resp, body = b.PostForm(e.external+"/oauth2/consent", url.Values{"csrf_token": {CSRFToken(t, body)}, "id": {id}, "decision": {"allow"}})
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "http://wiki.test/cb?code=") {
			t.Fatalf("after consent: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		// Remembered: straight to the app next time.
		e.code(t, b, wiki.AuthCodeURL("s2"), "", "", "s2")
	})

	t.Run("client credentials: a service account with groups", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"groups"}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.internal+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("robot", robotSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var tr struct {
			AccessToken string `json:"access_token"`
			IDToken     string `json:"id_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&tr)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || tr.AccessToken == "" || tr.IDToken != "" {
			t.Fatalf("client_credentials: %d %+v", resp.StatusCode, tr)
		}
		status, ui := e.userinfo(ctx, tr.AccessToken)
		if status != http.StatusOK || ui["sub"] != "client/robot" || fmt.Sprint(ui["groups"]) != "[robots]" {
			t.Errorf("service account userinfo: %d %v", status, ui)
		}
		// Introspection, authenticated as another confidential client.
		ireq, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.internal+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tr.AccessToken}}.Encode()))
		ireq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// client_secret_basic form-encodes id and secret first (RFC 6749
		// §2.3.1), as x/oauth2 does.
		ireq.SetBasicAuth("grafana", url.QueryEscape(grafanaSecret))
		iresp, err := http.DefaultClient.Do(ireq)
		if err != nil {
			t.Fatal(err)
		}
		var in map[string]any
		_ = json.NewDecoder(iresp.Body).Decode(&in)
		iresp.Body.Close()
		if in["active"] != true || in["client_id"] != "robot" || in["iss"] != e.external {
			t.Errorf("introspection: %v", in)
		}
		// Revocation (RFC 7009), then the token is dead.
		rreq, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.internal+"/oauth2/revoke", strings.NewReader(url.Values{"token": {tr.AccessToken}}.Encode()))
		rreq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rreq.SetBasicAuth("robot", robotSecret)
		rresp, err := http.DefaultClient.Do(rreq)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, rresp.Body)
		rresp.Body.Close()
		if rresp.StatusCode != http.StatusOK {
			t.Errorf("revoke: %d", rresp.StatusCode)
		}
		if status, _ := e.userinfo(ctx, tr.AccessToken); status == http.StatusOK {
			t.Error("revoked token still works")
		}
		// A wrong secret gets nothing.
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, e.internal+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("robot", "wrong")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("wrong secret: %d", resp.StatusCode)
		}
	})

	t.Run("device flow for a confidential client with client_secret_post", func(t *testing.T) {
		box := &oauth2.Config{ClientID: "tvbox", ClientSecret: robotSecret, Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID}}
		box.Endpoint.AuthStyle = oauth2.AuthStyleInParams
		wrong := *box
		wrong.ClientSecret = "not-the-secret"
		da, err := box.DeviceAuth(ctx)
		if err != nil {
			t.Fatalf("device authorization with client_secret_post: %v", err)
		}
		b := NewBrowser(t)
		_, _, body := e.authorize(t, b, da.VerificationURIComplete, "admin", e.adminPW)
		b.PostForm(e.external+"/device", url.Values{"csrf_token": {CSRFToken(t, body)}, "user_code": {da.UserCode}, "decision": {"allow"}})
		poll := func(c *oauth2.Config) (*oauth2.Token, error) {
			return c.Exchange(ctx, "", oauth2.SetAuthURLParam("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), oauth2.SetAuthURLParam("device_code", da.DeviceCode))
		}
		// Someone holding the device code but not the secret cannot spend it.
		if _, err := poll(&wrong); oauthErr(err) != "invalid_client" {
			t.Fatalf("poll with a wrong secret: %v", err)
		}
		if tok, err := poll(box); err != nil || tok.AccessToken == "" {
			t.Fatalf("poll with the secret after a failed one: %v", err)
		}
	})

	t.Run("unknown scopes are refused, not written into tokens", func(t *testing.T) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"groups admin:everything"}}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.internal+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("robot", robotSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_scope" {
			t.Fatalf("client_credentials with an unknown scope: %d %v", resp.StatusCode, body)
		}
	})

	t.Run("device authorization (RFC 8628)", func(t *testing.T) {
		tv := &oauth2.Config{ClientID: "tv", Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", "groups"}}
		da, err := tv.DeviceAuth(ctx)
		if err != nil {
			t.Fatalf("device authorization: %v", err)
		}
		if !strings.HasPrefix(da.VerificationURI, e.external+"/device") {
			t.Errorf("verification_uri %q", da.VerificationURI)
		}
		if _, err := tv.Exchange(ctx, "", oauth2.SetAuthURLParam("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), oauth2.SetAuthURLParam("device_code", da.DeviceCode)); oauthErr(err) != "authorization_pending" {
			t.Errorf("poll before approval: %v", err)
		}
		b := NewBrowser(t)
		u, resp, body := e.authorize(t, b, da.VerificationURIComplete, "admin", e.adminPW)
		if u != nil || resp.StatusCode != http.StatusOK || !strings.Contains(body, da.UserCode) {
			t.Fatalf("device page: %v %d\n%s", u, resp.StatusCode, body)
		}
		resp, body = b.PostForm(e.external+"/device", url.Values{"csrf_token": {CSRFToken(t, body)}, "user_code": {strings.ToLower(da.UserCode)}, "decision": {"allow"}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Device connected") {
			t.Fatalf("approve: %d\n%s", resp.StatusCode, body)
		}
		tok, err := tv.DeviceAccessToken(ctx, da)
		if err != nil {
			t.Fatalf("device token: %v", err)
		}
		if _, _, c := e.verifyID(t, ctx, "tv", tok); c.PreferredUsername != "admin" {
			t.Errorf("device ID token: %+v", c)
		}
		if _, err := tv.Exchange(ctx, "", oauth2.SetAuthURLParam("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), oauth2.SetAuthURLParam("device_code", da.DeviceCode)); err == nil {
			t.Error("the device code was accepted twice")
		}
	})

	t.Run("app CLI", func(t *testing.T) {
		out := e.srv.MustCLI("", "app", "list")
		for _, want := range []string{"grafana", "from config", "argocd-cli", "public"} {
			if !strings.Contains(out, want) {
				t.Errorf("app list lacks %q:\n%s", want, out)
			}
		}
		if out, err := e.srv.CLI("", "app", "rotate-secret", "grafana"); err == nil {
			t.Errorf("rotating a secret set in the file should fail:\n%s", out)
		}
		if !strings.Contains(out, "NOT SET") {
			t.Errorf("the ci client has no secret yet:\n%s", out)
		}
		out = e.srv.MustCLI("", "app", "rotate-secret", "ci")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		secret := lines[len(lines)-1]
		cc := func(secret string) int {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.internal+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("ci", url.QueryEscape(secret))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if status := cc(secret); status != http.StatusOK {
			t.Errorf("the rotated secret on the running server: %d\n%s", status, out)
		}
		e.srv.MustCLI("", "app", "rotate-secret", "ci")
		waitFor(t, func() bool { return cc(secret) == http.StatusUnauthorized })
	})

	t.Run("token issuance, revocation and RP logout are audited", func(t *testing.T) {
		out := e.srv.MustCLI("", "events", "--limit", "1000")
		for _, want := range []string{"token.issued", "grant=authorization_code", "grant=refresh_token", "grant=client_credentials",
			"token.revoked", "reason=refresh token reuse", "via=end_session", "app.secret_rotated"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in the audit log", want)
			}
		}
	})
}

func formValue(t testing.TB, html, name string) string {
	t.Helper()
	i := strings.Index(html, `name="`+name+`" value="`)
	if i < 0 {
		t.Fatalf("no %s field in:\n%s", name, html)
	}
	rest := html[i+len(`name="`+name+`" value="`):]
	return rest[:strings.IndexByte(rest, '"')]
}
