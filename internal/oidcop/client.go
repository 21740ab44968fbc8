package oidcop

import (
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// client adapts a stored model.OIDCClient to op.Client.
type client struct {
	m model.OIDCClient
	p *Provider
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.m.ClientID }
func (c *client) RedirectURIs() []string           { return c.m.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.m.PostLogoutRedirectURIs }

// ApplicationType: a public client is "native" so that loopback redirect
// URIs match on any port (RFC 8252 §7.3); confidential clients are "web",
// where every redirect URI must match exactly.
func (c *client) ApplicationType() op.ApplicationType {
	if c.m.Public {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.m.Public {
		return oidc.AuthMethodNone
	}
	// Basic and post are both accepted for every confidential client (the
	// library checks the secret wherever it came from); this value only
	// tells it the client is not private_key_jwt or none.
	return oidc.AuthMethodBasic
}

// ResponseTypes: code only. No implicit or hybrid flow hands tokens to the
// browser.
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.m.GrantTypes))
	for _, g := range c.m.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}

// LoginURL is where /authorize sends the browser: our interaction step,
// which signs the user in through the normal sign-in page if needed, checks
// access and consent, then answers the client.
func (c *client) LoginURL(authRequestID string) string {
	return c.p.paths.resume + "?id=" + url.QueryEscape(authRequestID)
}

func (c *client) AccessTokenType() op.AccessTokenType {
	if c.m.TokenFormat == model.TokenJWT {
		return op.AccessTokenTypeJWT
	}
	return op.AccessTokenTypeBearer
}

func (c *client) IDTokenLifetime() time.Duration {
	if c.m.IDTokenLifetime > 0 {
		return c.m.IDTokenLifetime
	}
	return c.p.o.IDTokenLifetime
}

func (c *client) accessTokenLifetime() time.Duration {
	if c.m.AccessTokenLifetime > 0 {
		return c.m.AccessTokenLifetime
	}
	return c.p.o.AccessTokenLifetime
}

func (c *client) refreshTokenLifetime() time.Duration {
	if c.m.RefreshTokenLifetime > 0 {
		return c.m.RefreshTokenLifetime
	}
	return c.p.o.RefreshTokenLifetime
}

// DevMode would relax redirect URI checks; never.
func (c *client) DevMode() bool { return false }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed admits our one non-standard scope; the library admits the
// standard ones itself and drops anything else.
func (c *client) IsScopeAllowed(scope string) bool { return scope == ScopeGroups }

// IDTokenUserinfoClaimsAssertion puts profile and email claims in the ID
// token even when an access token is issued too: Grafana reads the ID token
// first and ArgoCD only reads the ID token.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c *client) ClockSkew() time.Duration { return 0 }

// allows reports whether a user in groups may use the client.
func (c *client) allows(groups []string) bool {
	if len(c.m.AllowGroups) == 0 {
		return true
	}
	for _, g := range groups {
		if slices.Contains(c.m.AllowGroups, g) {
			return true
		}
	}
	return false
}

func (c *client) name() string {
	if c.m.AppName != "" {
		return c.m.AppName
	}
	return c.m.AppSlug
}
