package forwardauth

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

func TestNginxDialect(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.gateFor(t, "alice"), e.gateFor(t, "bob")
	cases := []struct {
		name    string
		url     string
		cookie  string
		status  int
		headers map[string]string // "" value: must be absent
	}{
		{"anonymous", "https://sonarr.homelab.local/calendar?x=1", "", 401, map[string]string{
			"Location":    "https://auth.homelab.local/gate/start?rd=" + url.QueryEscape("https://sonarr.homelab.local/calendar?x=1"),
			"Remote-User": "", "Set-Cookie": ""}},
		{"member", "https://sonarr.homelab.local/", alice, 200, map[string]string{
			"Remote-User": "alice", "Remote-Groups": "media,users", "Remote-Email": "alice@example.com", "Remote-Name": "Alice L",
			"X-Authentik-Username": "alice", "X-Authentik-Groups": "media|users", "X-Authentik-Email": "alice@example.com",
			"X-Authentik-Name": "Alice L", "X-Authentik-Uid": "u-alice", "Location": ""}},
		{"non-member", "https://sonarr.homelab.local/", bob, 403, map[string]string{"Remote-User": ""}},
		{"skip path anonymous", "https://sonarr.homelab.local/api/v3/queue", "", 200, map[string]string{"Remote-User": ""}},
		{"skip path cannot be reached by dot segments", "https://sonarr.homelab.local/api/../admin", "", 401, nil},
		{"catch-all, authentik headers only", "https://radarr.homelab.local/", bob, 200, map[string]string{
			"X-Authentik-Username": "bob", "Remote-User": "", "X-Authentik-Email": ""}},
		{"unclaimed host denied", "https://evil.example.com/", alice, 403, nil},
		{"domain cookie does not open a host outside the domain", "https://media.example.org/", alice, 401, nil},
		{"garbage cookie", "https://sonarr.homelab.local/", "x" + alice[1:], 401, nil},
		{"upper-case host", "https://SONARR.homelab.local:8443/", alice, 200, map[string]string{"Remote-User": "alice"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.cookie != "" {
				hdr = []string{"Cookie", "other=1; gatehouse_gate=" + c.cookie}
			}
			w := e.nginx(c.url, hdr...)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			for k, want := range c.headers {
				if got := w.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestNginxNeverRedirects(t *testing.T) {
	e := newEnv(t)
	w := e.nginx("https://sonarr.homelab.local/", "Accept", "text/html")
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401 (nginx turns a 3xx into a 500)", w.Code)
	}
}

func TestNginxBadRequests(t *testing.T) {
	e := newEnv(t)
	for _, u := range []string{"", "sonarr.homelab.local/", "ftp://sonarr.homelab.local/", "https://user@sonarr.homelab.local/", "https://sonarr.homelab.local:99999/", "https://sonarr homelab/"} {
		if w := e.nginx(u); w.Code != http.StatusBadRequest {
			t.Errorf("X-Original-URL %q: status %d, want 400", u, w.Code)
		}
	}
	r := httptest.NewRequest("GET", "/api/authz/nginx", nil)
	// Only X-Original-URL counts: forwarded headers from the client are
	// ignored on this endpoint.
	r.Header.Set("X-Forwarded-Host", "sonarr.homelab.local")
	r.Header.Set("X-Forwarded-Uri", "/")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("without X-Original-URL: %d, want 400", w.Code)
	}
}

func TestAllAliasesAnswerAlike(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/api/authz/nginx", "/api/authz/auth-request", "/outpost.goauthentik.io/auth/nginx"} {
		r := httptest.NewRequest("GET", p, nil)
		r.Header.Set("X-Original-URL", "https://sonarr.homelab.local/")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != 401 {
			t.Errorf("%s: %d, want 401", p, w.Code)
		}
	}
}

// forward asks the Traefik/Caddy endpoint from peer.
func (e *env) forward(path, peer, method, host, uri string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "http://gatehouse:9000"+path, nil)
	r.RemoteAddr = peer + ":41234"
	r.Header.Set("X-Forwarded-Proto", "https")
	r.Header.Set("X-Forwarded-Host", host)
	r.Header.Set("X-Forwarded-Uri", uri)
	r.Header.Set("X-Forwarded-Method", method)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func TestForwardDialect(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.gateFor(t, "alice"), e.gateFor(t, "bob")
	html := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	start := "https://auth.homelab.local/gate/start?rd=" + url.QueryEscape("https://sonarr.homelab.local/x?y=1")
	cases := []struct {
		name, path, peer, method string
		hdr                      []string
		status                   int
		location                 string
	}{
		{"traefik page load", "/outpost.goauthentik.io/auth/traefik", "127.0.0.1", "GET", []string{"Accept", html}, 302, start},
		{"caddy page load", "/outpost.goauthentik.io/auth/caddy", "127.0.0.1", "GET", []string{"Accept", html}, 302, start},
		{"native HEAD", "/api/authz/forward-auth", "127.0.0.1", "HEAD", []string{"Accept", html}, 302, start},
		{"form post", "/api/authz/forward-auth", "127.0.0.1", "POST", []string{"Accept", html}, 303, start},
		{"xhr", "/api/authz/forward-auth", "127.0.0.1", "GET", []string{"Accept", html, "X-Requested-With", "XMLHttpRequest"}, 401, start},
		{"json client", "/api/authz/forward-auth", "127.0.0.1", "GET", []string{"Accept", "application/json"}, 401, start},
		{"member", "/api/authz/forward-auth", "127.0.0.1", "GET", []string{"Cookie", "gatehouse_gate=" + alice}, 200, ""},
		{"non-member", "/api/authz/forward-auth", "127.0.0.1", "GET", []string{"Cookie", "gatehouse_gate=" + bob}, 403, ""},
		{"untrusted peer", "/api/authz/forward-auth", "192.0.2.1", "GET", []string{"Cookie", "gatehouse_gate=" + alice}, 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := e.forward(c.path, c.peer, c.method, "sonarr.homelab.local", "/x?y=1", c.hdr...)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			if got := w.Header().Get("Location"); c.location != "" && got != c.location {
				t.Fatalf("Location %q, want %q", got, c.location)
			}
			if c.status == 200 && w.Header().Get("Remote-User") != "alice" {
				t.Fatalf("no identity headers: %v", w.Header())
			}
		})
	}
}

func TestEnvoyDialect(t *testing.T) {
	e := newEnv(t)
	alice := e.gateFor(t, "alice")
	cases := []struct {
		name, path, host, cookie string
		status                   int
		location                 string
	}{
		{"native prefix", "/api/authz/ext-authz/calendar?x=1", "sonarr.homelab.local", "", 302,
			"https://auth.homelab.local/gate/start?rd=" + url.QueryEscape("https://sonarr.homelab.local/calendar?x=1")},
		{"authentik prefix", "/outpost.goauthentik.io/auth/envoy/calendar", "sonarr.homelab.local", "", 302,
			"https://auth.homelab.local/gate/start?rd=" + url.QueryEscape("https://sonarr.homelab.local/calendar")},
		{"skip path below prefix", "/api/authz/ext-authz/api/v3/queue", "sonarr.homelab.local", "", 200, ""},
		{"signed in", "/api/authz/ext-authz/", "sonarr.homelab.local", alice, 200, ""},
		{"unclaimed host", "/api/authz/ext-authz/", "evil.example.com", alice, 403, ""},
		// The path is decoded exactly once: an encoded "?" or a doubly
		// encoded dot segment must not reach a skip path.
		{"encoded question mark", "/api/authz/ext-authz/api/%3F/../../admin", "sonarr.homelab.local", "", 302, ""},
		{"double encoding", "/api/authz/ext-authz/admin/%252e%252e/api/x", "sonarr.homelab.local", "", 302, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://x"+c.path, nil)
			r.Host = c.host
			r.Header.Set("Accept", "text/html")
			if c.cookie != "" {
				r.Header.Set("Cookie", "gatehouse_gate="+c.cookie)
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			if c.location != "" && w.Header().Get("Location") != c.location {
				t.Fatalf("Location %q, want %q", w.Header().Get("Location"), c.location)
			}
		})
	}
}

func TestStart(t *testing.T) {
	e := newEnv(t)
	get := func(u, cookie string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", u, nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		e.mux.ServeHTTP(w, r)
		return w
	}
	rd := "https://sonarr.homelab.local/calendar?x=1"

	w := get("https://auth.homelab.local/outpost.goauthentik.io/start?rd="+url.QueryEscape(rd), "")
	want := "https://auth.homelab.local/login?rd=" + url.QueryEscape("/gate/start?rd="+url.QueryEscape(rd))
	if w.Code != 302 || w.Header().Get("Location") != want {
		t.Fatalf("signed out: %d %q, want 302 %q", w.Code, w.Header().Get("Location"), want)
	}
	if len(w.Result().Cookies()) != 0 {
		t.Fatal("start set a cookie for a signed-out browser")
	}

	w = get("https://auth.homelab.local/gate/start?rd="+url.QueryEscape(rd), "gatehouse_session=tok-alice")
	if w.Code != 302 || w.Header().Get("Location") != rd {
		t.Fatalf("signed in: %d %q", w.Code, w.Header().Get("Location"))
	}
	c := w.Result().Cookies()[0]
	if c.Name != "gatehouse_gate" || c.Domain != "homelab.local" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge <= 0 {
		t.Fatalf("gate cookie %+v", c)
	}
	if c.Value == "tok-alice" || strings.Contains(c.Value, "alice") {
		t.Fatal("gate cookie reuses the session token")
	}

	// Holding a live gate: no second one.
	before := len(e.st.gates)
	w = get("https://auth.homelab.local/gate/start?rd="+url.QueryEscape(rd), "gatehouse_session=tok-alice; gatehouse_gate="+c.Value)
	if w.Code != 302 || len(w.Result().Cookies()) != 0 || len(e.st.gates) != before {
		t.Fatalf("second start minted again: %d %v", w.Code, w.Result().Cookies())
	}
}

func TestStartRefusesForeignReturnAddresses(t *testing.T) {
	e := newEnv(t)
	for _, rd := range []string{
		"", "/account", "//evil.com/", "https://evil.com/", "https://evil.homelab.local.attacker.com/",
		"https://evilhomelab.local/", `https:\\evil.com`, `/\evil.com`, "https://evil.com%2ehomelab.local/",
		"https://sonarr.homelab.local@evil.com/", "javascript:alert(1)", "http://sonarr.homelab.local/",
		"https://sonarr.homelab.local/\n", "https://%73onarr.homelab.local/", "HTTPS://evil.com/",
		"https://media.example.org.evil.com/", "https://[::1]/",
	} {
		r := httptest.NewRequest("GET", "https://auth.homelab.local/gate/start?rd="+url.QueryEscape(rd), nil)
		r.Header.Set("Cookie", "gatehouse_session=tok-alice")
		w := httptest.NewRecorder()
		e.mux.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" {
			t.Errorf("rd %q: %d Location %q, want 400", rd, w.Code, w.Header().Get("Location"))
		}
	}
}

func TestPerAppCallback(t *testing.T) {
	e := newEnv(t)
	rd := "https://media.example.org/library"

	// The app host's check sends the browser to sign in with a nonce, and
	// gives that browser the nonce cookie.
	check := e.nginx(rd)
	if check.Code != 401 {
		t.Fatalf("check: %d", check.Code)
	}
	startURL, _ := url.Parse(check.Header().Get("Location"))
	nonce := startURL.Query().Get("n")
	var nonceCookie *http.Cookie
	for _, c := range check.Result().Cookies() {
		if c.Name == "gatehouse_gate_nonce" {
			nonceCookie = c
		}
	}
	if nonce == "" || nonceCookie == nil || nonceCookie.Value != nonce || nonceCookie.Domain != "" || !nonceCookie.HttpOnly {
		t.Fatalf("per-app login: Location %q, nonce cookie %+v", startURL, nonceCookie)
	}
	if c := e.nginx("https://sonarr.homelab.local/").Result().Cookies(); len(c) != 0 {
		t.Fatalf("a cookie-domain host got a nonce cookie: %v", c)
	}

	start := func() *url.URL {
		r := httptest.NewRequest("GET", startURL.String(), nil)
		r.Header.Set("Cookie", "gatehouse_session=tok-alice")
		w := httptest.NewRecorder()
		e.mux.ServeHTTP(w, r)
		loc, _ := url.Parse(w.Header().Get("Location"))
		if w.Code != 302 || loc.Host != "media.example.org" || loc.Path != "/outpost.goauthentik.io/callback" || loc.Query().Get("rd") != rd {
			t.Fatalf("start: %d %v", w.Code, loc)
		}
		if len(w.Result().Cookies()) != 0 {
			t.Fatal("per-app start set a cookie on the auth host")
		}
		return loc
	}
	callback := func(loc *url.URL, host, nonce string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", loc.String(), nil)
		r.Host = host
		if nonce != "" {
			r.Header.Set("Cookie", "gatehouse_gate_nonce="+nonce)
		}
		w := httptest.NewRecorder()
		e.mux.ServeHTTP(w, r)
		return w
	}

	// Without a nonce (a link typed by hand) start sends the browser to
	// the app, whose check hands one out.
	r := httptest.NewRequest("GET", "https://auth.homelab.local/gate/start?rd="+url.QueryEscape(rd), nil)
	r.Header.Set("Cookie", "gatehouse_session=tok-alice")
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	if w.Code != 302 || w.Header().Get("Location") != rd {
		t.Fatalf("start without a nonce: %d %q", w.Code, w.Header().Get("Location"))
	}

	if w := callback(start(), "sonarr.homelab.local", nonce); w.Code != 400 {
		t.Fatalf("callback on another host: %d, want 400", w.Code)
	}
	// Login CSRF: a callback link made in another browser (no nonce cookie,
	// or another nonce) is refused.
	if w := callback(start(), "media.example.org", ""); w.Code != 400 {
		t.Fatalf("callback without the nonce cookie: %d, want 400", w.Code)
	}
	if w := callback(start(), "media.example.org", newNonce()); w.Code != 400 {
		t.Fatalf("callback with another browser's nonce: %d, want 400", w.Code)
	}

	loc := start()
	w = callback(loc, "media.example.org", nonce)
	if w.Code != 302 || w.Header().Get("Location") != rd {
		t.Fatalf("callback: %d %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	var c *http.Cookie
	for _, rc := range w.Result().Cookies() {
		if rc.Name == "gatehouse_gate" {
			c = rc
		}
	}
	if c == nil || c.Domain != "" || !c.HttpOnly {
		t.Fatalf("per-app cookie must be host-only: %+v", c)
	}
	if w := callback(loc, "media.example.org", nonce); w.Code != 400 {
		t.Fatalf("code replay: %d, want 400", w.Code)
	}
	if w := e.nginx(rd, "Cookie", "gatehouse_gate="+c.Value); w.Code != 200 || w.Header().Get("Remote-User") != "alice" {
		t.Fatalf("per-app cookie on its host: %d", w.Code)
	}
	if w := e.nginx("https://sonarr.homelab.local/", "Cookie", "gatehouse_gate="+c.Value); w.Code != 401 {
		t.Fatalf("per-app cookie on another host: %d, want 401", w.Code)
	}
}

func TestSignOutEndsEveryGate(t *testing.T) {
	e := newEnv(t)
	g := e.gateFor(t, "alice")
	if w := e.nginx("https://sonarr.homelab.local/", "Cookie", "gatehouse_gate="+g); w.Code != 200 {
		t.Fatalf("before: %d", w.Code)
	}
	// sign_out itself only leads to the CSRF-protected confirmation: a
	// link on any page must not be able to sign the user out.
	for _, m := range []string{"GET", "POST"} {
		r := httptest.NewRequest(m, "https://sonarr.homelab.local/outpost.goauthentik.io/sign_out?rd="+url.QueryEscape("https://sonarr.homelab.local/x"), nil)
		r.Header.Set("Cookie", "gatehouse_gate="+g)
		w := httptest.NewRecorder()
		e.mux.ServeHTTP(w, r)
		want := "https://auth.homelab.local/logout?rd=" + url.QueryEscape("/gate/start?rd="+url.QueryEscape("https://sonarr.homelab.local/x"))
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != want {
			t.Fatalf("%s sign_out: %d %q, want 303 %q", m, w.Code, w.Header().Get("Location"), want)
		}
	}
	if w := e.nginx("https://sonarr.homelab.local/", "Cookie", "gatehouse_gate="+g); w.Code != 200 {
		t.Fatalf("sign_out without confirmation ended access: %d", w.Code)
	}
	// Ending the IdP session (what the confirmation does) ends every gate.
	if err := e.sess.RevokeUser(t.Context(), "u-alice"); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"sonarr", "radarr"} {
		if w := e.nginx("https://"+host+".homelab.local/", "Cookie", "gatehouse_gate="+g); w.Code != 401 {
			t.Fatalf("%s after sign-out: %d, want 401", host, w.Code)
		}
	}
}

func TestAllowPathTouchesNoStore(t *testing.T) {
	e := newEnv(t)
	g := e.gateFor(t, "alice")
	e.nginx("https://sonarr.homelab.local/", "Cookie", "gatehouse_gate="+g)
	q, d := e.st.count(), e.dir.calls
	for range 100 {
		if w := e.nginx("https://sonarr.homelab.local/", "Cookie", "gatehouse_gate="+g); w.Code != 200 {
			t.Fatal(w.Code)
		}
		if w := e.nginx("https://sonarr.homelab.local/", "Cookie", "gatehouse_gate=garbage"); w.Code != 401 {
			t.Fatal(w.Code)
		}
	}
	if e.st.count() != q || e.dir.calls != d {
		t.Fatalf("the hot path queried: store %d→%d, directory %d→%d", q, e.st.count(), d, e.dir.calls)
	}
	if len(e.h.gates.m) != 1 {
		t.Fatalf("gate cache holds %d entries; garbage cookies must not add any", len(e.h.gates.m))
	}
}

func basic(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

func TestMachineCredentials(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	api, _, err := e.tokens.Create(ctx, "u-alice", "grafana", model.TokenAPI, 0)
	if err != nil {
		t.Fatal(err)
	}
	appPW, _, err := e.tokens.Create(ctx, "u-alice", "scraper", model.TokenAppPassword, 0)
	if err != nil {
		t.Fatal(err)
	}
	prom := "https://prometheus.homelab.local/api/v1/query"
	cases := []struct {
		name, url, auth string
		status          int
		user            string
	}{
		{"bearer", prom, "Bearer " + api, 200, "alice"},
		{"bearer lower-case scheme", prom, "bearer " + api, 200, "alice"},
		{"basic app password", prom, basic("alice", appPW), 200, "alice"},
		{"basic authentik token user", prom, basic("goauthentik.io/token", api), 200, "alice"},
		{"app password as bearer", prom, "Bearer " + appPW, 401, ""},
		{"api token with a username", prom, basic("alice", api), 401, ""},
		{"app password of someone else", prom, basic("bob", appPW), 401, ""},
		{"forged token", prom, "Bearer gh_" + strings.Repeat("A", 54), 401, ""},
		{"not allowed on this app", "https://sonarr.homelab.local/", "Bearer " + api, 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := e.nginx(c.url, "Authorization", c.auth)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			if got := w.Header().Get("Remote-User"); got != c.user {
				t.Fatalf("Remote-User %q, want %q", got, c.user)
			}
			if c.status == 200 && w.Header().Get("X-Authentik-Username") != "" {
				t.Fatal("app asked for remote headers only")
			}
			if c.status == 401 && strings.Contains(c.url, "prometheus") && w.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("no challenge on a refused credential")
			}
		})
	}
	if w := e.nginx("https://sonarr.homelab.local/", "Authorization", "Bearer "+api); w.Header().Get("Location") == "" {
		t.Fatal("an app that takes no tokens should send the browser to sign in")
	}
}

func TestMachineFailuresAreThrottled(t *testing.T) {
	e := newEnv(t)
	api, _, err := e.tokens.Create(t.Context(), "u-alice", "grafana", model.TokenAPI, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A revoked app password is well formed (ours) but no longer valid:
	// it is looked up and each failure counts.
	revoked, rt, err := e.tokens.Create(t.Context(), "u-alice", "old", model.TokenAppPassword, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.tokens.Revoke(t.Context(), rt.ID); err != nil {
		t.Fatal(err)
	}
	prom := "https://prometheus.homelab.local/"
	// Garbage never reaches the store nor the counters.
	q0 := e.st.count()
	for range 5 {
		e.nginx(prom, "Authorization", basic("alice", "ghp_wrong"))
	}
	if e.st.count() != q0 {
		t.Fatal("a malformed credential reached the store")
	}
	for range 3 {
		e.nginx(prom, "Authorization", basic("alice", revoked))
	}
	// Locked: even a valid (not yet cached) token is refused unseen.
	q := e.st.count()
	if w := e.nginx(prom, "Authorization", "Bearer "+api); w.Code != 401 {
		t.Fatalf("locked client: %d, want 401", w.Code)
	}
	if e.st.count() != q {
		t.Fatal("a locked client's credential was looked up")
	}
}

// A browser app that sends its own Authorization header (its API's bearer
// token, Negotiate) is still let in by the gate cookie on an app that also
// takes machine credentials.
func TestForeignAuthorizationFallsBackToTheCookie(t *testing.T) {
	e := newEnv(t)
	gate := e.gateFor(t, "alice")
	prom := "https://prometheus.homelab.local/"
	for _, auth := range []string{"Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig", "Negotiate abc", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:her-real-password"))} {
		w := e.nginx(prom, "Authorization", auth, "Cookie", "gatehouse_gate="+gate)
		if w.Code != 200 || w.Header().Get("Remote-User") != "alice" {
			t.Errorf("%q with a valid gate cookie: %d %q", auth, w.Code, w.Header().Get("Remote-User"))
		}
	}
}

// OAuth access tokens count only at apps that name their client: a token a
// user gave the wiki does not open Prometheus.
func TestOAuthBearerAudience(t *testing.T) {
	e := newEnv(t)
	prom := "https://prometheus.homelab.local/"
	if w := e.nginx(prom, "Authorization", "Bearer oauth-grafana-alice"); w.Code != 200 || w.Header().Get("Remote-User") != "alice" {
		t.Fatalf("token of an allowed client: %d %q", w.Code, w.Header().Get("Remote-User"))
	}
	if w := e.nginx(prom, "Authorization", "Bearer oauth-wiki-alice"); w.Code != 401 {
		t.Fatalf("token of another client: %d, want 401", w.Code)
	}
}
