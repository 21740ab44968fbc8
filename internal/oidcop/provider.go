// Package oidcop is Gatehouse's OpenID Connect provider: the only package
// that imports the protocol library (zitadel/oidc v3, its stable Provider
// and Storage API). It adapts our SQL store to the library's op.Storage,
// keeps the signing keys, and runs the interactive steps (sign-in hand-off,
// access check, consent, device verification) with pages the composition
// root passes in, since edges do not import each other.
//
// Security defaults are stricter than the library's and than most
// providers': code flow only, PKCE S256 only and required for public
// clients, refresh tokens rotated on every use with the whole family
// revoked on reuse, replayed codes revoking what they issued, and the
// issuer fixed by configuration rather than taken from the Host header.
package oidcop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// ScopeGroups asks for the groups claim (an array of group names).
const ScopeGroups = "groups"

// Store is what the provider needs from storage.
type Store interface {
	store.OIDC
	GetUser(ctx context.Context, id string) (model.User, error)
	GroupsOfUser(ctx context.Context, userID string) ([]model.Group, error)
}

// Pages renders the browser pages of the interactive steps. internal/web
// implements it.
type Pages interface {
	// RenderConsent shows the consent form: it posts csrf_token, id and
	// decision (allow|deny) to action.
	RenderConsent(w http.ResponseWriter, r *http.Request, appName string, scopes []string, action, id string)
	// RenderReauth asks the user to sign in again (prompt=login, max_age)
	// and signs them out towards rd when they agree.
	RenderReauth(w http.ResponseWriter, r *http.Request, appName, rd string)
	// RenderDevice shows the device verification form: it posts
	// csrf_token, user_code and decision (allow|deny) to action.
	RenderDevice(w http.ResponseWriter, r *http.Request, userCode, action, problem string)
	// RenderMessage shows a page with a title and a sentence.
	RenderMessage(w http.ResponseWriter, r *http.Request, status int, title, message string)
}

// Options configures the provider. Durations of zero take the defaults.
type Options struct {
	// Issuer is the external URL, without a trailing slash. It is never
	// derived from the request.
	Issuer string
	Store  Store
	// SecretHasher hashes client secrets (keyed HMAC).
	SecretHasher *SecretHasher
	// KeySealer encrypts signing keys at rest.
	KeySealer Sealer
	// TokenKey encrypts opaque access tokens (derived from the server
	// secret, so every replica reads every token).
	TokenKey [32]byte
	// SigningAlgorithm is RS256 (default) or ES256.
	SigningAlgorithm string
	KeyRotation      time.Duration // default 30 days

	AccessTokenLifetime  time.Duration // default 10m
	IDTokenLifetime      time.Duration // default 8h
	RefreshTokenLifetime time.Duration // default 30 days
	AuthRequestLifetime  time.Duration // default 15m
	DeviceCodeLifetime   time.Duration // default 10m
	// MaxTokenLifetime is the longest access or ID token lifetime of any
	// client: how long a rotated-out key stays published. Default: the
	// larger of the server's access and ID token lifetimes.
	MaxTokenLifetime time.Duration

	// CurrentSession returns the browser's IdP session, if any.
	CurrentSession func(r *http.Request) (model.Session, bool)
	// RevokeSession ends an IdP session (and with it forward-auth access).
	RevokeSession func(ctx context.Context, sessionID string) error
	Pages         Pages

	// Audit records token issuance, revocation and RP-initiated logout;
	// nil records nothing.
	Audit Recorder
	// TokenIssued counts token endpoint successes by grant; may be nil.
	TokenIssued func(grant string)

	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.KeyRotation, 30*24*time.Hour)
	def(&o.AccessTokenLifetime, 10*time.Minute)
	def(&o.IDTokenLifetime, 8*time.Hour)
	def(&o.RefreshTokenLifetime, 30*24*time.Hour)
	def(&o.AuthRequestLifetime, 15*time.Minute)
	def(&o.DeviceCodeLifetime, 10*time.Minute)
	def(&o.MaxTokenLifetime, max(o.AccessTokenLifetime, o.IDTokenLifetime))
	if o.SigningAlgorithm == "" {
		o.SigningAlgorithm = "RS256"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// paths are the provider's routes. Everything lives under /oauth2/ so it
// cannot collide with pages or the forward-auth endpoints; discovery is
// where the spec puts it.
type paths struct {
	authorize, token, introspect, userinfo, revoke, endSession, keys, device string
	resume, consent, deviceForm                                              string
}

var defaultPaths = paths{
	authorize:  "/oauth2/authorize",
	token:      "/oauth2/token",
	introspect: "/oauth2/introspect",
	userinfo:   "/oauth2/userinfo",
	revoke:     "/oauth2/revoke",
	endSession: "/oauth2/end_session",
	keys:       "/oauth2/keys",
	device:     "/oauth2/device_authorization",
	resume:     "/oauth2/resume",
	consent:    "/oauth2/consent",
	deviceForm: "/device",
}

// gcEvery is how often a serving replica removes expired OIDC records.
const gcEvery = 10 * time.Minute

// Provider is the OpenID provider.
type Provider struct {
	o     Options
	paths paths
	op    *op.Provider
	st    *storage
	keys  *keyring
	// discovery is the discovery document, built once: it depends on
	// nothing but configuration.
	discovery []byte
}

// New builds the provider and makes sure a signing key exists (creating the
// first one on first start).
func New(ctx context.Context, o Options) (*Provider, error) {
	o.defaults()
	if o.Issuer == "" || strings.HasSuffix(o.Issuer, "/") {
		return nil, fmt.Errorf("oidcop: issuer %q must be set and have no trailing slash", o.Issuer)
	}
	if o.Store == nil || o.SecretHasher == nil || o.KeySealer == nil || o.Pages == nil || o.CurrentSession == nil || o.RevokeSession == nil {
		return nil, errors.New("oidcop: Store, SecretHasher, KeySealer, Pages, CurrentSession and RevokeSession are required")
	}
	alg := jose.SignatureAlgorithm(o.SigningAlgorithm)
	if alg != jose.RS256 && alg != jose.ES256 {
		return nil, fmt.Errorf("oidcop: unsupported signing algorithm %q", o.SigningAlgorithm)
	}
	p := &Provider{o: o, paths: defaultPaths}
	p.keys = &keyring{
		store: o.Store, sealer: o.KeySealer, alg: alg,
		rotation: o.KeyRotation, prepublish: min(o.KeyRotation/4, 24*time.Hour), overlap: o.MaxTokenLifetime,
		reloadEach: time.Minute, now: o.Now, log: o.Logger.With("component", "oidc-keys"),
	}
	if err := p.keys.ensure(ctx); err != nil {
		return nil, fmt.Errorf("oidcop: signing keys: %w", err)
	}
	// Expired codes, tokens and device codes are removed every 10 minutes
	// by whichever replica serves traffic; the deletes are idempotent, so
	// replicas doing it together is harmless.
	var lastGC time.Time
	p.keys.afterReload = func(ctx context.Context) {
		if now := o.Now(); now.Sub(lastGC) >= gcEvery {
			lastGC = now
			if _, err := o.Store.DeleteExpiredOIDC(ctx, now); err != nil {
				o.Logger.Warn("removing expired OIDC records", "err", err)
			}
		}
	}
	p.st = &storage{p: p, log: o.Logger.With("component", "oidc"), clients: map[string]cachedClient{}}

	cfg := &op.Config{
		CryptoKey:                o.TokenKey,
		DefaultLogoutRedirectURI: p.paths.signedOut(),
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, ScopeGroups, oidc.ScopeOfflineAccess},
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "amr", "at_hash", "c_hash", "azp",
			"preferred_username", "name", "email", "email_verified", "groups"},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     o.DeviceCodeLifetime,
			PollInterval: 5 * time.Second,
			UserFormPath: p.paths.deviceForm,
			UserCode:     op.UserCodeBase20,
		},
	}
	ep := func(path string) *op.Endpoint { return op.NewEndpoint(path) }
	opts := []op.Option{
		op.WithCustomAuthEndpoint(ep(p.paths.authorize)),
		op.WithCustomTokenEndpoint(ep(p.paths.token)),
		op.WithCustomIntrospectionEndpoint(ep(p.paths.introspect)),
		op.WithCustomUserinfoEndpoint(ep(p.paths.userinfo)),
		op.WithCustomRevocationEndpoint(ep(p.paths.revoke)),
		op.WithCustomEndSessionEndpoint(ep(p.paths.endSession)),
		op.WithCustomKeysEndpoint(ep(p.paths.keys)),
		op.WithCustomDeviceAuthorizationEndpoint(ep(p.paths.device)),
		// Browser apps call the token and userinfo endpoints from their own
		// origin; no credentials (cookies) are ever needed there.
		op.WithCORSOptions(&cors.Options{
			AllowOriginFunc: func(string) bool { return true },
			AllowedMethods:  []string{http.MethodGet, http.MethodPost},
			AllowedHeaders:  []string{"Authorization", "Content-Type", "Accept"},
		}),
	}
	if strings.HasPrefix(o.Issuer, "http://") {
		// A plain-http issuer is for local tests and private labs; the
		// operator chose it in the config.
		opts = append(opts, op.WithAllowInsecure())
	}
	prov, err := op.NewProvider(cfg, p.st, op.StaticIssuer(o.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidcop: %w", err)
	}
	p.op = prov
	if p.discovery, err = p.buildDiscovery(); err != nil {
		return nil, err
	}
	return p, nil
}

func (ps paths) signedOut() string { return "/login" }

// Issuer is the configured issuer.
func (p *Provider) Issuer() string { return p.o.Issuer }

// Mux is the part of http.ServeMux the provider registers on.
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// RegisterBackChannel mounts the endpoints that clients call directly
// (token, userinfo, keys, introspection, revocation, device authorization)
// and those a browser reaches from another site (authorize, end_session):
// they answer on any host name and carry no CSRF check of their own.
func (p *Provider) RegisterBackChannel(mux Mux) {
	mux.Handle("GET /.well-known/openid-configuration", http.HandlerFunc(p.serveDiscovery))
	mux.Handle("GET "+p.paths.keys, http.HandlerFunc(p.serveKeys))
	for _, path := range []string{p.paths.token, p.paths.introspect, p.paths.revoke, p.paths.device} {
		h := http.Handler(p.op)
		if path == p.paths.token {
			h = p.withDeviceClientAuth(h)
		}
		mux.Handle("POST "+path, h)
		mux.Handle("OPTIONS "+path, p.op)
	}
	mux.Handle(p.paths.userinfo, p.op)
	mux.Handle(p.paths.authorize, p.withClaimsParam(p.op))
	mux.Handle(p.paths.endSession, p.withRequest(p.op))
}

// RegisterBrowser mounts the interactive pages; mux must check CSRF tokens
// on posts.
func (p *Provider) RegisterBrowser(mux Mux) {
	mux.Handle("GET "+p.paths.resume, http.HandlerFunc(p.resume))
	mux.Handle("POST "+p.paths.consent, http.HandlerFunc(p.consent))
	mux.Handle("GET "+p.paths.deviceForm, http.HandlerFunc(p.deviceForm))
	mux.Handle("POST "+p.paths.deviceForm, http.HandlerFunc(p.deviceSubmit))
}

// FastPath answers discovery and the key set itself and passes every
// other request to next. The composition root puts it outside the
// access-log and request-id middleware: both documents are static, fetched
// by every client and verifier, and served from memory.
func (p *Provider) FastPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			switch r.URL.Path {
			case "/.well-known/openid-configuration":
				p.serveDiscovery(w, r)
				return
			case p.paths.keys:
				p.serveKeys(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(p.discovery)
}

func (p *Provider) serveKeys(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// Short: clients refetch on an unknown kid anyway, and rotation
	// pre-publishes keys well ahead.
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(p.keys.jwksJSON())
}

// issuerContext is ctx as the library's handlers see it.
func (p *Provider) issuerContext(ctx context.Context) context.Context {
	return op.ContextWithIssuer(ctx, p.o.Issuer)
}

// Maintain removes expired OIDC records and rotates keys when due. The
// worker calls it periodically; serving replicas also rotate lazily.
func (p *Provider) Maintain(ctx context.Context) error {
	if err := p.keys.ensure(ctx); err != nil {
		return err
	}
	n, err := p.o.Store.DeleteExpiredOIDC(ctx, p.o.Now())
	if n > 0 {
		p.o.Logger.Debug("removed expired OIDC records", "count", n)
	}
	return err
}

// Recorder keeps the audit record.
type Recorder interface {
	Record(ctx context.Context, e model.AuditEvent)
}

func (p *Provider) record(ctx context.Context, e model.AuditEvent) {
	if p.o.Audit != nil {
		p.o.Audit.Record(ctx, e)
	}
}

// subjectName names a token's subject for the audit record: the username
// for people, the client id for service accounts.
func (p *Provider) subjectName(ctx context.Context, subject string) string {
	if isServiceAccount(subject) {
		return subject
	}
	if u, err := p.o.Store.GetUser(ctx, subject); err == nil {
		return u.Username
	}
	return subject
}
