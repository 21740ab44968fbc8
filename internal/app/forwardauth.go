package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/apitoken"
	"github.com/gatehouse-sso/gatehouse/internal/authn"
	"github.com/gatehouse-sso/gatehouse/internal/config"
	"github.com/gatehouse-sso/gatehouse/internal/forwardauth"
	"github.com/gatehouse-sso/gatehouse/internal/httpx"
	"github.com/gatehouse-sso/gatehouse/internal/metrics"
	"github.com/gatehouse-sso/gatehouse/internal/policy"
	"github.com/gatehouse-sso/gatehouse/internal/redirect"
)

// APITokens returns the service that issues and verifies machine
// credentials (API tokens, app passwords).
func (a *App) APITokens() *apitoken.Service {
	return apitoken.New(a.Store, apitoken.Options{Key: a.Key.Derive("api-token")})
}

// ForwardAuthPolicy compiles the forward-auth rules of the configuration
// into the policy table and the per-app options, in the same order.
func ForwardAuthPolicy(cfg *config.Config) (*policy.Table, []forwardauth.AppOptions, error) {
	spec := policy.Spec{Default: policy.Deny}
	if d := cfg.ForwardAuth.DefaultPolicy; d != "" {
		l, err := policy.ParseLevel(d)
		if err != nil {
			return nil, nil, fmt.Errorf("forward_auth.default_policy: %w", err)
		}
		spec.Default = l
	}
	var opts []forwardauth.AppOptions
	for _, app := range cfg.Apps {
		fa := app.ForwardAuth
		if fa == nil {
			continue
		}
		as := policy.AppSpec{Slug: app.Slug, Hosts: fa.Hosts, SkipPaths: fa.SkipPaths, AllowGroups: app.AllowGroups}
		for i, r := range fa.Rules {
			level := policy.OneFactor
			if r.Policy != "" {
				l, err := policy.ParseLevel(r.Policy)
				if err != nil {
					return nil, nil, fmt.Errorf("app %s: rules[%d]: %w", app.Slug, i, err)
				}
				level = l
			}
			as.Rules = append(as.Rules, policy.RuleSpec{Paths: r.Paths, PathRegex: r.PathRegex, Methods: r.Methods,
				Networks: r.Networks, Groups: r.Groups, Policy: level})
		}
		spec.Apps = append(spec.Apps, as)
		ao := forwardauth.AppOptions{AllowBearer: fa.AllowBearer, AllowBasic: fa.AllowBasic, BearerClients: fa.BearerClients}
		if app.OIDC != nil {
			ao.BearerClients = append([]string{app.OIDC.ClientID}, fa.BearerClients...)
		}
		for _, h := range fa.Headers {
			switch strings.ToLower(h) {
			case "remote":
				ao.Headers |= forwardauth.RemoteHeaders
			case "authentik":
				ao.Headers |= forwardauth.AuthentikHeaders
			}
		}
		opts = append(opts, ao)
	}
	tab, err := policy.Compile(spec)
	if err != nil {
		return nil, nil, err
	}
	return tab, opts, nil
}

// machineThrottle counts failed machine credentials like failed sign-ins:
// per username and IP for app passwords, per IP only for bearer tokens.
type machineThrottle struct{ r *authn.Regulator }

func (m machineThrottle) Check(ctx context.Context, username, ip string) error {
	if username == "" {
		return m.r.CheckIP(ctx, ip)
	}
	return m.r.Check(ctx, username, ip)
}

func (m machineThrottle) Fail(ctx context.Context, username, ip string) error {
	if username == "" {
		return m.r.FailIP(ctx, ip)
	}
	return m.r.Fail(ctx, username, ip)
}

// bearerVerifiers are the extra bearer-token checkers of forward auth:
// OAuth access tokens issued by Gatehouse's own OIDC provider.
func (a *App) bearerVerifiers() []forwardauth.TokenVerifier {
	if a.oidc == nil {
		return nil
	}
	return []forwardauth.TokenVerifier{a.oidc}
}

// withForwardAuth mounts the forward-auth browser endpoints (start,
// callback, sign-out) on root and returns a handler that answers the check
// endpoints (/api/authz/*, /outpost.goauthentik.io/auth/*) directly and
// everything else through next. The checks skip the access log and page
// middleware on purpose: they are the hot path, one per request to every
// protected app, and the proxy logs them already.
func (a *App) withForwardAuth(root *http.ServeMux, next http.Handler, ips *httpx.IPResolver, redirects *redirect.Policy) (http.Handler, error) {
	cfg := a.Config
	tab, appOpts, err := ForwardAuthPolicy(cfg)
	if err != nil {
		return nil, err
	}
	fa, err := forwardauth.New(forwardauth.Options{
		Policy:            tab,
		Apps:              appOpts,
		Sessions:          a.Sessions,
		Directory:         a.Directory,
		Gates:             a.Store,
		Tokens:            a.APITokens(),
		Verifiers:         a.bearerVerifiers(),
		Throttle:          machineThrottle{a.Regulator},
		Audit:             a.Audit,
		IPs:               ips,
		Redirects:         redirects.WithHosts(cfg.ForwardAuthHosts()),
		ExternalURL:       cfg.ExternalURLParsed(),
		CookieDomain:      cfg.CookieDomain,
		GateCookieName:    cfg.ForwardAuth.GateCookieName,
		SessionCookieName: cfg.Session.CookieName,
		Secure:            cfg.Secure(),
		GateKey:           a.Key.Derive("gate-cookie"),
		CacheTTL:          time.Duration(cfg.ForwardAuth.CacheTTL),
		Logger:            a.Logger.With("component", "forwardauth"),
	})
	if err != nil {
		return nil, err
	}
	a.Sessions.OnRevoke(fa.SessionsRevoked)
	a.OnInvalidate(fa.SessionsRevoked)
	fa.Register(root)
	// No Recover wrapper here: net/http already contains a panic to its
	// connection and logs it, and the wrapper costs an allocation per check.
	// Checks are labelled "forwardauth" in the metrics (their status is
	// also counted as a decision); everything else by its mux pattern.
	checks := a.Metrics.Middleware(fa, func(*http.Request) string { return metrics.ForwardAuthRoute })
	next = a.instrument(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if forwardauth.IsCheck(r) {
			checks.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	}), nil
}
