package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// OIDC is the server-wide OpenID provider section (`oidc:`). Per-client
// settings live under each app.
type OIDC struct {
	// SigningAlgorithm is RS256 (default, what every client accepts) or
	// ES256.
	SigningAlgorithm string `yaml:"signing_algorithm"`
	// KeyRotation is how long a signing key signs before a new one takes
	// over; the old one stays published until its tokens have expired.
	KeyRotation Duration `yaml:"key_rotation"`
	// Default token lifetimes; a client may override each.
	AccessTokenLifetime  Duration `yaml:"access_token_lifetime"`
	IDTokenLifetime      Duration `yaml:"id_token_lifetime"`
	RefreshTokenLifetime Duration `yaml:"refresh_token_lifetime"`
	// AuthRequestLifetime bounds the time between /authorize and the code
	// exchange (sign-in included).
	AuthRequestLifetime Duration `yaml:"auth_request_lifetime"`
	// DeviceCodeLifetime is how long a device's user code is valid.
	DeviceCodeLifetime Duration `yaml:"device_code_lifetime"`
}

// AppOIDC declares the app's OIDC client.
type AppOIDC struct {
	ClientID string `yaml:"client_id"`
	// ClientSecret (or client_secret_file); empty for a confidential
	// client means the secret is set with `gatehouse app rotate-secret`.
	ClientSecret string `yaml:"client_secret" secret:"true"`
	// Public clients (CLIs, native and browser apps) have no secret and
	// must use PKCE (S256).
	Public                 bool     `yaml:"public"`
	RedirectURIs           []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// GrantTypes defaults to [authorization_code, refresh_token].
	GrantTypes []string `yaml:"grant_types"`
	// Groups of the service account behind client_credentials.
	Groups []string `yaml:"groups"`
	// Consent: implicit (default; first-party apps) or explicit
	// (remembered per user).
	Consent string `yaml:"consent"`
	// AccessTokenFormat: opaque (default; revocable at once) or jwt.
	AccessTokenFormat    string   `yaml:"access_token_format"`
	AccessTokenLifetime  Duration `yaml:"access_token_lifetime"`
	IDTokenLifetime      Duration `yaml:"id_token_lifetime"`
	RefreshTokenLifetime Duration `yaml:"refresh_token_lifetime"`
}

// Grant type names accepted in grant_types; "device_code" is short for the
// RFC 8628 URN.
var oidcGrants = map[string]string{
	"authorization_code": "authorization_code",
	"refresh_token":      "refresh_token",
	"client_credentials": "client_credentials",
	"device_code":        "urn:ietf:params:oauth:grant-type:device_code",
	"urn:ietf:params:oauth:grant-type:device_code": "urn:ietf:params:oauth:grant-type:device_code",
}

// DefaultOIDC is the oidc section when the file says nothing.
func DefaultOIDC() OIDC {
	return OIDC{
		SigningAlgorithm:     "RS256",
		KeyRotation:          Duration(30 * 24 * time.Hour),
		AccessTokenLifetime:  Duration(10 * time.Minute),
		IDTokenLifetime:      Duration(8 * time.Hour), // ArgoCD keeps the ID token as its session
		RefreshTokenLifetime: Duration(30 * 24 * time.Hour),
		AuthRequestLifetime:  Duration(15 * time.Minute),
		DeviceCodeLifetime:   Duration(10 * time.Minute),
	}
}

// GrantTypesOrDefault returns the client's grant types in their canonical
// (URN) form.
func (o *AppOIDC) GrantTypesOrDefault() []string {
	if len(o.GrantTypes) == 0 {
		return []string{"authorization_code", "refresh_token"}
	}
	out := make([]string, 0, len(o.GrantTypes))
	for _, g := range o.GrantTypes {
		if c, ok := oidcGrants[g]; ok && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func (c *Config) validateOIDC(v *validator) {
	o := &c.OIDC
	switch o.SigningAlgorithm {
	case "RS256", "ES256":
	default:
		v.addf("oidc.signing_algorithm", "%q must be RS256 or ES256", o.SigningAlgorithm)
	}
	for key, d := range map[string]Duration{
		"oidc.key_rotation": o.KeyRotation, "oidc.access_token_lifetime": o.AccessTokenLifetime,
		"oidc.id_token_lifetime": o.IDTokenLifetime, "oidc.refresh_token_lifetime": o.RefreshTokenLifetime,
		"oidc.auth_request_lifetime": o.AuthRequestLifetime, "oidc.device_code_lifetime": o.DeviceCodeLifetime,
	} {
		v.positive(key, d)
	}
	if o.KeyRotation > 0 && time.Duration(o.KeyRotation) < time.Hour {
		v.addf("oidc.key_rotation", "must be at least 1h")
	}
	ids := map[string]int{}
	for i := range c.Apps {
		a := &c.Apps[i]
		if a.OIDC == nil {
			continue
		}
		key := fmt.Sprintf("apps[%d].oidc", i)
		a.OIDC.validate(v, key)
		if id := a.OIDC.ClientID; id != "" {
			if first, dup := ids[id]; dup {
				v.addf(key+".client_id", "%q is already used by apps[%d]", id, first)
			}
			ids[id] = i
		}
	}
}

func (o *AppOIDC) validate(v *validator, key string) {
	if o.ClientID == "" {
		v.addf(key+".client_id", "is required")
	} else if len(o.ClientID) > 128 || strings.ContainsAny(o.ClientID, ": \t\r\n") {
		v.addf(key+".client_id", "%q must be at most 128 characters without spaces or colons", o.ClientID)
	}
	if o.Public && o.ClientSecret != "" {
		v.addf(key+".client_secret", "a public client has no secret")
	}
	if o.ClientSecret != "" && len(o.ClientSecret) < 16 {
		v.addf(key+".client_secret", "must be at least 16 characters (generate one with `openssl rand -hex 32`)")
	}
	for j, g := range o.GrantTypes {
		if _, ok := oidcGrants[g]; !ok {
			v.addf(fmt.Sprintf("%s.grant_types[%d]", key, j), "%q must be authorization_code, refresh_token, client_credentials or device_code", g)
		}
		if g == "client_credentials" && o.Public {
			v.addf(fmt.Sprintf("%s.grant_types[%d]", key, j), "client_credentials needs a confidential client")
		}
	}
	grants := o.GrantTypesOrDefault()
	if slices.Contains(grants, "authorization_code") && len(o.RedirectURIs) == 0 {
		v.addf(key+".redirect_uris", "is required for the authorization_code grant")
	}
	for j, u := range o.RedirectURIs {
		if msg := checkRedirectURI(u); msg != "" {
			v.addf(fmt.Sprintf("%s.redirect_uris[%d]", key, j), "%q %s", u, msg)
		}
	}
	for j, u := range o.PostLogoutRedirectURIs {
		if msg := checkRedirectURI(u); msg != "" {
			v.addf(fmt.Sprintf("%s.post_logout_redirect_uris[%d]", key, j), "%q %s", u, msg)
		}
	}
	for j, g := range o.Groups {
		if !groupNameRE.MatchString(g) {
			v.addf(fmt.Sprintf("%s.groups[%d]", key, j), "%q is not a valid group name", g)
		}
	}
	switch o.Consent {
	case "", "implicit", "explicit":
	default:
		v.addf(key+".consent", "%q must be implicit or explicit", o.Consent)
	}
	switch o.AccessTokenFormat {
	case "", "opaque", "jwt":
	default:
		v.addf(key+".access_token_format", "%q must be opaque or jwt", o.AccessTokenFormat)
	}
	for k, d := range map[string]Duration{"access_token_lifetime": o.AccessTokenLifetime, "id_token_lifetime": o.IDTokenLifetime, "refresh_token_lifetime": o.RefreshTokenLifetime} {
		if d < 0 {
			v.addf(key+"."+k, "must not be negative")
		}
	}
}

// checkRedirectURI returns why u cannot be a redirect URI, or "".
func checkRedirectURI(u string) string {
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return "does not parse"
	case p.Scheme == "":
		return "must be absolute"
	case p.Fragment != "" || strings.Contains(u, "#"):
		return "must not have a fragment"
	case (p.Scheme == "http" || p.Scheme == "https") && p.Host == "":
		return "has no host"
	}
	return ""
}
