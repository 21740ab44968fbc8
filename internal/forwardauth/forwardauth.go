// Package forwardauth is the forward-auth edge: the endpoints reverse
// proxies (nginx auth_request, ingress-nginx, Traefik forwardAuth, Caddy
// forward_auth, Envoy ext_authz) ask before every request to a protected
// app, and the browser endpoints that sign a user in to those apps (start,
// the per-app callback) and out again.
//
// The check endpoints are the hot path. Allowing a request with a valid
// gate cookie takes memory lookups only: the gate, the IdP session and the
// user come from in-process caches with revocation, and the rules from the
// precompiled policy.Table. Nothing is written synchronously, and a request
// without valid credentials creates no state at all.
package forwardauth

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/apitoken"
	"github.com/gatehouse-sso/gatehouse/internal/httpx"
	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/policy"
	"github.com/gatehouse-sso/gatehouse/internal/redirect"
	"github.com/gatehouse-sso/gatehouse/internal/session"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// Sessions is what forward auth needs of the IdP's session manager.
type Sessions interface {
	// Lookup resolves the IdP session cookie (on the auth host).
	Lookup(ctx context.Context, token string) (model.Session, error)
	// LookupID resolves a session by id, from the cache; it must not write
	// synchronously.
	LookupID(ctx context.Context, id string) (model.Session, error)
	// RevokeUser ends every session of the user (sign out everywhere).
	RevokeUser(ctx context.Context, userID string) error
}

// Directory reads users and their group names.
type Directory interface {
	GetUser(ctx context.Context, id string) (model.User, error)
	GroupNames(ctx context.Context, userID string) ([]string, error)
}

// Tokens verifies API tokens and app passwords (internal/apitoken).
type Tokens interface {
	// WellFormed checks shape and MAC without I/O: false means the secret
	// was never issued by Gatehouse.
	WellFormed(secret string) bool
	// Cached answers from memory only; ok is false when the store must be
	// asked.
	Cached(secret string) (model.APIToken, bool)
	Verify(ctx context.Context, secret string) (model.APIToken, error)
}

// TokenVerifier accepts bearer tokens issued elsewhere, such as OAuth
// access tokens of Gatehouse's own OIDC provider. ok false with a nil
// error means "not mine / not valid".
type TokenVerifier interface {
	// VerifyBearer returns the token's user and the client it was issued
	// to; the app's BearerClients decide whether that client counts here.
	VerifyBearer(ctx context.Context, token string) (userID, clientID string, ok bool, err error)
}

// Throttle counts failed machine credentials like failed sign-ins
// (authn.Regulator). An empty username counts only the client IP.
type Throttle interface {
	Check(ctx context.Context, username, ip string) error
	Fail(ctx context.Context, username, ip string) error
}

// Recorder keeps the audit record.
type Recorder interface {
	Record(ctx context.Context, e model.AuditEvent)
}

// AppOptions are the per-app settings the policy does not cover, in the
// order of policy.Spec.Apps.
type AppOptions struct {
	// Headers are the identity header families sent on 200 (0 = all).
	Headers HeaderFamily
	// AllowBearer accepts "Authorization: Bearer" API tokens (and tokens
	// of the TokenVerifiers).
	AllowBearer bool
	// AllowBasic accepts "Authorization: Basic" with an app password.
	AllowBasic bool
	// BearerClients are the OAuth clients whose access tokens count here
	// (audience restriction); tokens of any other client are refused.
	BearerClients []string
}

// Options wires a Handler.
type Options struct {
	Policy *policy.Table
	Apps   []AppOptions
	// Sessions, Directory, Gates are required; Tokens and Throttle are
	// needed when any app allows machine credentials.
	Sessions  Sessions
	Directory Directory
	Gates     store.GateSessions
	Tokens    Tokens
	Verifiers []TokenVerifier
	Throttle  Throttle
	// Audit records sign-outs; may be nil.
	Audit Recorder
	IPs   *httpx.IPResolver
	// Redirects decides which rd values /start accepts: the cookie domain
	// and the declared app hosts.
	Redirects *redirect.Policy
	// ExternalURL is Gatehouse's public URL (the sign-in portal).
	ExternalURL *url.URL
	// CookieDomain is where the gate cookie lives; apps outside it use
	// the per-app callback. Empty: every app is per-app.
	CookieDomain string
	// GateCookieName defaults to "gatehouse_gate"; SessionCookieName is
	// the IdP's own (host-only) session cookie.
	GateCookieName    string
	SessionCookieName string
	Secure            bool
	// GateKey authenticates gate cookie values (secret.Key.Derive).
	GateKey []byte
	// CacheTTL bounds how long gates and users are served from memory
	// (default 10s). The IdP session itself is re-checked through
	// Sessions.LookupID, whose own cache decides revocation latency.
	CacheTTL time.Duration
	// CodeTTL is the lifetime of a per-app one-time code (default 60s).
	CodeTTL time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Handler serves forward auth.
type Handler struct {
	o     Options
	tab   *policy.Table
	gates *gates
	ids   *identities
	// Precomputed pieces of responses.
	startBase string // external URL + "/gate/start?rd="
	loginURL  string
	logoutURL string
	gateName  string
	nonceName string // per-app sign-in nonce cookie
	cookieSfx string // ".homelab.local"
	logLimit  limiter
}

// limiter allows one event per 10 seconds.
type limiter struct{ last atomic.Int64 }

func (l *limiter) allow(now time.Time) bool {
	n, prev := now.UnixNano(), l.last.Load()
	return n-prev >= int64(10*time.Second) && l.last.CompareAndSwap(prev, n)
}

// New checks the options and returns the handler.
func New(o Options) (*Handler, error) {
	if o.Policy == nil || o.Sessions == nil || o.Directory == nil || o.Gates == nil || o.ExternalURL == nil || o.Redirects == nil || o.IPs == nil {
		return nil, errors.New("forwardauth: Policy, Sessions, Directory, Gates, ExternalURL, Redirects and IPs are required")
	}
	if len(o.GateKey) < 16 {
		return nil, errors.New("forwardauth: GateKey is required")
	}
	if o.GateCookieName == "" {
		o.GateCookieName = "gatehouse_gate"
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 10 * time.Second
	}
	if o.CodeTTL <= 0 {
		o.CodeTTL = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.CookieDomain = strings.TrimPrefix(strings.ToLower(o.CookieDomain), ".")
	ext := strings.TrimRight(o.ExternalURL.String(), "/")
	h := &Handler{
		o:         o,
		tab:       o.Policy,
		gates:     &gates{st: o.Gates, key: o.GateKey, ttl: o.CacheTTL, max: 100000, now: o.Now, m: map[string]gateEntry{}},
		ids:       &identities{dir: o.Directory, ttl: o.CacheTTL, max: 100000, now: o.Now, m: map[string]*identity{}},
		startBase: ext + StartPath + "?rd=",
		loginURL:  ext + "/login",
		logoutURL: ext + "/logout",
		gateName:  o.GateCookieName,
		nonceName: o.GateCookieName + "_nonce",
	}
	if o.CookieDomain != "" {
		h.cookieSfx = "." + o.CookieDomain
	}
	return h, nil
}

// Paths of the endpoints. The /outpost.goauthentik.io/ and /api/authz/
// ones are what Authentik's and Authelia's users already have in their
// ingress annotations and proxy configurations.
const (
	NginxPath        = "/api/authz/nginx"
	ForwardAuthPath  = "/api/authz/forward-auth"
	ExtAuthzPrefix   = "/api/authz/ext-authz/"
	StartPath        = "/gate/start"
	SignOutPath      = "/gate/sign_out"
	CallbackPath     = "/gate/callback"
	outpost          = "/outpost.goauthentik.io"
	outpostEnvoy     = outpost + "/auth/envoy"
	outpostCallback  = outpost + "/callback"
	authzAuthRequest = "/api/authz/auth-request"
)

// dialectOf maps a check endpoint's path to its dialect; ok is false for
// every other path. For Envoy it also returns the request path below the
// endpoint.
func dialectOf(p string) (d dialect, rest string, ok bool) {
	switch p {
	case NginxPath, authzAuthRequest, outpost + "/auth/nginx":
		return nginxDialect, "", true
	case ForwardAuthPath, outpost + "/auth/traefik", outpost + "/auth/caddy":
		return forwardDialect, "", true
	}
	if r, ok := strings.CutPrefix(p, ExtAuthzPrefix); ok {
		return envoyDialect, "/" + r, true
	}
	if r, ok := strings.CutPrefix(p, outpostEnvoy); ok && (r == "" || r[0] == '/' || r[0] == '?') {
		return envoyDialect, r, true
	}
	return 0, "", false
}

// IsCheck reports whether the request is for a check endpoint, which the
// composition root serves ahead of the access log and page middleware.
func IsCheck(r *http.Request) bool {
	_, _, ok := dialectOf(r.URL.Path)
	return ok
}

// Register mounts the browser endpoints (start, callback, sign-out) on mux.
// The check endpoints are served by ServeHTTP.
func (h *Handler) Register(mux *http.ServeMux) {
	for _, p := range []string{StartPath, outpost + "/start"} {
		mux.HandleFunc("GET "+p, h.start)
	}
	for _, p := range []string{CallbackPath, outpostCallback} {
		mux.HandleFunc("GET "+p, h.callback)
	}
	for _, p := range []string{SignOutPath, outpost + "/sign_out"} {
		mux.HandleFunc(p, h.signOut)
	}
}

// ServeHTTP answers a check endpoint. Requests for other paths get 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var d dialect
	var ok bool
	if d, _, ok = dialectOf(r.URL.Path); !ok {
		http.NotFound(w, r)
		return
	}
	var t target
	if err := h.parse(r, d, &t); err != nil {
		// The proxy is misconfigured; nginx shows this as a 500, which is
		// right: nobody should pass.
		if h.logLimit.allow(h.o.Now()) { // anyone can send these: no log flood
			h.o.Logger.Warn("forward auth: bad request from the proxy (further ones for 10s not logged)", "path", r.URL.Path, "err", err)
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.decide(w, r, d, &t)
}

// parse reads the target the proxy asks about, per dialect.
func (h *Handler) parse(r *http.Request, d dialect, t *target) error {
	switch d {
	case nginxDialect:
		// Only X-Original-URL/-Method: ingress-nginx passes every client
		// header through, so X-Forwarded-Host and friends may be forged,
		// while these two nginx always sets itself.
		raw := header(r.Header, "X-Original-Url")
		if raw == "" {
			return errNoTarget
		}
		if err := parseAbsolute(raw, t); err != nil {
			return err
		}
		return parseMethod(header(r.Header, "X-Original-Method"), t)
	case forwardDialect:
		if !h.trustedPeer(r) {
			return errUntrusted
		}
		host := header(r.Header, "X-Forwarded-Host")
		if host == "" {
			return errNoTarget
		}
		if i := strings.IndexByte(host, ','); i >= 0 {
			host = strings.TrimSpace(host[:i])
		}
		switch p := strings.ToLower(header(r.Header, "X-Forwarded-Proto")); p {
		case "https", "http":
			t.scheme = p
		case "":
			t.scheme = h.o.ExternalURL.Scheme
		default:
			return errBadTarget
		}
		if err := parseHostPort(host, t); err != nil {
			return err
		}
		if err := parseURI(header(r.Header, "X-Forwarded-Uri"), t); err != nil {
			return err
		}
		return parseMethod(header(r.Header, "X-Forwarded-Method"), t)
	default: // Envoy: the original request, its path below our prefix
		t.scheme = h.o.ExternalURL.Scheme
		if h.trustedPeer(r) {
			if p := strings.ToLower(header(r.Header, "X-Forwarded-Proto")); p == "http" || p == "https" {
				t.scheme = p
			}
		}
		if err := parseHostPort(r.Host, t); err != nil {
			return err
		}
		// The remainder of the path as sent, still percent-encoded:
		// r.URL.Path is already decoded, and decoding it again would let
		// "%253F" or "%3F" change which path the rules see.
		_, uri, ok := dialectOf(r.URL.EscapedPath())
		if !ok {
			return errBadTarget // the endpoint itself was percent-encoded
		}
		if r.URL.RawQuery != "" {
			uri += "?" + r.URL.RawQuery
		}
		if err := parseURI(uri, t); err != nil {
			return err
		}
		return parseMethod(r.Method, t)
	}
}

func (h *Handler) trustedPeer(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && h.o.IPs.Trusted(ap.Addr())
}

// who is the caller of one check.
type who struct {
	sub policy.Subject
	id  *identity
	// badCredential is set when an Authorization header was presented for
	// an app that accepts it and did not verify: the answer is a plain 401
	// (a machine will not follow a sign-in redirect).
	badCredential string // WWW-Authenticate challenge
}

func (h *Handler) decide(w http.ResponseWriter, r *http.Request, d dialect, t *target) {
	app := h.tab.App(t.host)
	var ao AppOptions
	if app != nil && app.Index < len(h.o.Apps) {
		ao = h.o.Apps[app.Index]
	}
	var c who
	if err := h.identify(r, t, app, &ao, &c); err != nil {
		h.o.Logger.Error("forward auth: resolving the caller", "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if c.badCredential != "" {
		w.Header()["Www-Authenticate"] = []string{c.badCredential}
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
		return
	}
	req := policy.Request{Path: t.path, Method: t.method}
	if app.NeedsIP() {
		req.IP = h.o.IPs.ClientIP(r)
	}
	switch h.tab.Decide(app, req, &c.sub) {
	case policy.Allow:
		if c.id != nil {
			f := ao.Headers
			if f == 0 {
				f = AllHeaders
			}
			c.id.set(w.Header(), f)
		}
		w.WriteHeader(http.StatusOK)
	case policy.Login:
		h.login(w, r, d, t)
	default:
		w.Header()["Content-Type"] = textPlain
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(forbiddenBody)
	}
}

var (
	textPlain     = []string{"text/plain; charset=utf-8"}
	forbiddenBody = []byte("Forbidden: your account may not use this application.\n")
	loginBody     = []byte("Sign-in required.\n")
)

// login answers "sign in first" in the dialect's way.
func (h *Handler) login(w http.ResponseWriter, r *http.Request, d dialect, t *target) {
	loc := h.startBase + url.QueryEscape(t.url())
	hd := w.Header()
	if !h.underCookieDomain(t.host) {
		// Per-app mode: a nonce cookie on the app's host binds the one-time
		// code of this sign-in to this browser, so a callback link made in
		// another browser (login CSRF) is refused. Only a cookie, no state.
		n := newNonce()
		loc += "&n=" + n
		hd["Set-Cookie"] = []string{(&http.Cookie{Name: h.nonceName, Value: n, Path: outpost + "/", MaxAge: 600,
			HttpOnly: true, Secure: t.scheme == "https", SameSite: http.SameSiteLaxMode}).String()}
	}
	hd["Location"] = []string{loc}
	hd["Content-Type"] = textPlain
	status := http.StatusUnauthorized
	if d != nginxDialect && wantsPage(r) {
		status = http.StatusFound
		if t.method != http.MethodGet && t.method != http.MethodHead {
			status = http.StatusSeeOther
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(loginBody)
}

// wantsPage reports whether the original request was a page load a
// browser can follow to the sign-in page, rather than an XHR/fetch or an
// API client that needs a plain 401.
func wantsPage(r *http.Request) bool {
	if strings.EqualFold(header(r.Header, "X-Requested-With"), "XMLHttpRequest") {
		return false
	}
	accept := header(r.Header, "Accept")
	return accept == "" || strings.Contains(accept, "text/html") || strings.Contains(accept, "*/*") && !strings.Contains(accept, "application/json")
}

// identify finds the caller: a machine credential when the app accepts one
// and it is one of ours, else the gate cookie.
func (h *Handler) identify(r *http.Request, t *target, app *policy.App, ao *AppOptions, c *who) error {
	ctx := r.Context()
	if auth := header(r.Header, "Authorization"); auth != "" && (ao.AllowBearer || ao.AllowBasic) {
		handled, err := h.machine(ctx, r, auth, ao, c)
		if err != nil || handled {
			return err
		}
		// Not a credential Gatehouse issued (an app's own token, another
		// scheme): the browser's gate cookie still decides. Without one, a
		// machine gets a plain 401 with the challenge, not a sign-in page.
		challenge := c.badCredential
		c.badCredential = ""
		if err := h.cookieIdentity(ctx, r, t, c); err != nil || c.id != nil {
			return err
		}
		c.badCredential = challenge
		return nil
	}
	return h.cookieIdentity(ctx, r, t, c)
}

// cookieIdentity finds the caller from the gate cookie.
func (h *Handler) cookieIdentity(ctx context.Context, r *http.Request, t *target, c *who) error {
	v := cookieValue(r.Header, h.gateName)
	if v == "" {
		return nil
	}
	g, err := h.gates.cookie(ctx, v)
	if errors.Is(err, errNoGate) {
		return nil
	}
	if err != nil {
		return err
	}
	// A per-app cookie opens only its own host; the domain cookie only the
	// cookie domain (a stolen one replayed elsewhere opens nothing).
	if g.Host != "" {
		if g.Host != t.host {
			return nil
		}
	} else if h.cookieSfx == "" || !(t.host == h.o.CookieDomain || strings.HasSuffix(t.host, h.cookieSfx)) {
		return nil
	}
	s, err := h.o.Sessions.LookupID(ctx, g.SessionID)
	if errors.Is(err, session.ErrNoSession) {
		return nil // ended, expired or revoked: the gate ends with it
	}
	if err != nil {
		return err // the store is unreachable: an error, not "signed out"
	}
	return h.setUser(ctx, s.UserID, s.Level, c)
}

func (h *Handler) setUser(ctx context.Context, userID string, level model.AuthLevel, c *who) error {
	id, err := h.ids.get(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if id.disabled {
		return nil
	}
	c.sub = policy.Subject{Authenticated: true, Level: level, Groups: id.groups}
	c.id = id
	return nil
}

// machine verifies an Authorization header. handled is false when the
// header is not a credential Gatehouse issued, so the gate cookie decides.
// Only well-formed credentials (prefix and MAC of ours) reach the store and
// the failure counters; a locked client is refused before any lookup.
func (h *Handler) machine(ctx context.Context, r *http.Request, auth string, ao *AppOptions, c *who) (handled bool, err error) {
	scheme, cred, _ := strings.Cut(auth, " ")
	cred = strings.TrimSpace(cred)
	var username, secret string
	switch {
	case strings.EqualFold(scheme, "Bearer") && ao.AllowBearer:
		secret = cred
		c.badCredential = `Bearer realm="gatehouse", error="invalid_token"` // cleared on success
	case strings.EqualFold(scheme, "Basic") && ao.AllowBasic:
		b, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return false, nil
		}
		var ok bool
		if username, secret, ok = strings.Cut(string(b), ":"); !ok {
			return false, nil
		}
		c.badCredential = `Basic realm="gatehouse", charset="UTF-8"`
	default:
		return false, nil // a scheme this app does not take from us
	}
	if h.o.Tokens != nil && h.o.Tokens.WellFormed(secret) {
		if tok, ok := h.o.Tokens.Cached(secret); ok && h.tokenFits(tok, username) {
			return true, h.setMachine(ctx, tok.UserID, username, c)
		}
		ip := h.o.IPs.ClientIP(r).String()
		if h.o.Throttle != nil {
			if err := h.o.Throttle.Check(ctx, username, ip); err != nil {
				return true, nil // locked: refused without looking
			}
		}
		tok, err := h.o.Tokens.Verify(ctx, secret)
		if err == nil && h.tokenFits(tok, username) {
			if err := h.setMachine(ctx, tok.UserID, username, c); err != nil || c.id != nil {
				return true, err
			}
		}
		if err != nil && !isInvalid(err) {
			return true, err
		}
		if h.o.Throttle != nil {
			if err := h.o.Throttle.Fail(ctx, username, ip); err != nil {
				h.o.Logger.Warn("forward auth: counting a failed credential", "err", err)
			}
		}
		return true, nil
	}
	if username == "" {
		// OAuth access tokens of Gatehouse's own OIDC provider.
		for _, v := range h.o.Verifiers {
			uid, client, ok, err := v.VerifyBearer(ctx, secret)
			if err != nil {
				return true, err
			}
			if ok && slices.Contains(ao.BearerClients, client) {
				return true, h.setMachine(ctx, uid, "", c)
			}
			if ok {
				return true, nil // a valid token, but not for this app
			}
		}
	}
	return false, nil
}

// isInvalid tells a refused credential from a store failure.
func isInvalid(err error) bool {
	return errors.Is(err, apitoken.ErrInvalid) || errors.Is(err, store.ErrNotFound)
}

// tokenFits checks the kind against how the secret was presented: API
// tokens as Bearer (or Basic with Authentik's "goauthentik.io/token" user
// name), app passwords as Basic with their owner's username.
func (h *Handler) tokenFits(tok model.APIToken, username string) bool {
	switch {
	case username == "":
		return tok.Kind == model.TokenAPI
	case username == "goauthentik.io/token":
		return tok.Kind == model.TokenAPI
	default:
		return tok.Kind == model.TokenAppPassword // owner checked in setMachine
	}
}

// setMachine makes the token's owner the caller. An app password must
// come with its owner's username; a mismatch counts as a bad credential.
func (h *Handler) setMachine(ctx context.Context, userID, username string, c *who) error {
	var m who
	if err := h.setUser(ctx, userID, model.LevelPassword, &m); err != nil {
		return err
	}
	if m.id == nil {
		return nil // owner gone or disabled
	}
	if username != "" && username != "goauthentik.io/token" && !strings.EqualFold(username, m.id.username) {
		return nil
	}
	c.sub, c.id, c.badCredential = m.sub, m.id, ""
	return nil
}

// SessionsRevoked drops cached gates bound to the sessions; wire it to
// session.Manager.OnRevoke.
func (h *Handler) SessionsRevoked(ids []string) { h.gates.dropSessions(ids) }

// ForgetUser drops the cached user (after a profile or group change).
func (h *Handler) ForgetUser(userID string) { h.ids.forget(userID) }

// cookieValue finds a cookie in the raw Cookie headers without parsing
// every cookie into an http.Cookie (the allocation-free hot path).
func cookieValue(h http.Header, name string) string {
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = strings.TrimSpace(part)
			if k, v, ok := strings.Cut(part, "="); ok && k == name {
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v
			}
		}
	}
	return ""
}
