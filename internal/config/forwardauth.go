package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// ForwardAuth is the server-wide forward-auth section (`forward_auth:`).
// Per-app settings live under each app's forward_auth.
type ForwardAuth struct {
	// DefaultPolicy applies to hosts that no app claims: deny (the
	// default), one_factor or two_factor (any signed-in user).
	DefaultPolicy string `yaml:"default_policy"`
	// GateCookieName is the cookie set on cookie_domain (default
	// gatehouse_gate).
	GateCookieName string `yaml:"gate_cookie_name"`
	// CacheTTL bounds how long a replica serves gates and users from
	// memory (default 10s); revocations in the same process apply at once.
	CacheTTL Duration `yaml:"cache_ttl"`
}

// AppForwardAuth declares an app protected by forward auth.
type AppForwardAuth struct {
	// Hosts are exact names or "*.example.com" wildcards (every name below
	// example.com). Exact names win over wildcards, longer wildcards over
	// shorter ones.
	Hosts []string `yaml:"hosts"`
	// SkipPaths are regexes of request paths that need no sign-in (for
	// example "^/api/" for an app with its own API keys).
	SkipPaths []string `yaml:"skip_paths"`
	// Rules are checked in order on every request; the first whose paths,
	// methods and networks match decides. Without a match the app's
	// allow_groups apply (one_factor).
	Rules []AccessRule `yaml:"rules"`
	// Headers are the identity header families sent to the app: "remote"
	// (Remote-User, Remote-Groups, Remote-Email, Remote-Name) and
	// "authentik" (X-authentik-*). Empty sends both.
	Headers []string `yaml:"headers"`
	// AllowBearer accepts "Authorization: Bearer <API token>", and OAuth
	// access tokens issued to this app's own oidc client or to a client in
	// BearerClients.
	AllowBearer bool `yaml:"allow_bearer"`
	// BearerClients are OIDC client ids whose users' access tokens this app
	// accepts as Bearer. Tokens of other clients are refused: an access
	// token is not a key to every app.
	BearerClients []string `yaml:"bearer_clients"`
	// AllowBasic accepts "Authorization: Basic" with a user's app password.
	AllowBasic bool `yaml:"allow_basic"`
}

// AccessRule is one forward-auth rule.
type AccessRule struct {
	// Paths are path prefixes, matched segment by segment.
	Paths []string `yaml:"paths"`
	// PathRegex is a regular expression the path must match.
	PathRegex string `yaml:"path_regex"`
	// Methods are HTTP methods; empty matches any.
	Methods []string `yaml:"methods"`
	// Networks are client IPs or CIDRs; empty matches any.
	Networks []string `yaml:"networks"`
	// Groups replace the app's allow_groups for this rule.
	Groups []string `yaml:"groups"`
	// Policy is bypass, deny, one_factor (default) or two_factor.
	Policy string `yaml:"policy"`
}

var accessPolicies = map[string]bool{"bypass": true, "deny": true, "one_factor": true, "two_factor": true}

func (c *Config) validateForwardAuth(v *validator) {
	fa := c.ForwardAuth
	switch fa.DefaultPolicy {
	case "", "deny", "one_factor", "two_factor":
	default:
		v.addf("forward_auth.default_policy", "%q is not one of deny, one_factor, two_factor", fa.DefaultPolicy)
	}
	if fa.GateCookieName != "" && !validCookieName(fa.GateCookieName) {
		v.addf("forward_auth.gate_cookie_name", "%q is not a valid cookie name", fa.GateCookieName)
	}
	if fa.GateCookieName != "" && fa.GateCookieName == c.Session.CookieName {
		v.addf("forward_auth.gate_cookie_name", "must differ from session.cookie_name")
	}
	if fa.CacheTTL < 0 {
		v.addf("forward_auth.cache_ttl", "must not be negative")
	}
	clients := map[string]bool{}
	for _, a := range c.Apps {
		if a.OIDC != nil {
			clients[a.OIDC.ClientID] = true
		}
	}
	for i, a := range c.Apps {
		if a.ForwardAuth == nil {
			continue
		}
		for j, id := range a.ForwardAuth.BearerClients {
			if !clients[id] {
				v.addf(fmt.Sprintf("apps[%d].forward_auth.bearer_clients[%d]", i, j), "%q is not the client_id of any app's oidc section", id)
			}
		}
	}
	claimed := map[string]string{}
	for i := range c.Apps {
		a := &c.Apps[i]
		if a.ForwardAuth == nil {
			continue
		}
		key := fmt.Sprintf("apps[%d].forward_auth", i)
		f := a.ForwardAuth
		if len(f.Hosts) == 0 {
			v.addf(key+".hosts", "needs at least one host")
		}
		for j, h := range f.Hosts {
			hk := fmt.Sprintf("%s.hosts[%d]", key, j)
			name := strings.ToLower(h)
			bare := strings.TrimPrefix(name, "*.")
			if !validHostName(bare) && !(name != bare && !strings.Contains(bare, ".") && validLabel(bare)) {
				v.addf(hk, "%q is not a host name or a *.domain wildcard", h)
				continue
			}
			if name != bare && c.CookieDomain != "" && bare != c.CookieDomain && !strings.HasSuffix(bare, "."+c.CookieDomain) {
				// Sign-in may only return to the cookie domain or exact app
				// hosts; a wildcard elsewhere could never be signed in to.
				v.addf(hk, "wildcard %q must lie under cookie_domain (%s); list hosts outside it by name", h, c.CookieDomain)
				continue
			}
			if other, dup := claimed[name]; dup {
				v.addf(hk, "%q is already claimed by app %s", h, other)
				continue
			}
			claimed[name] = a.Slug
		}
		for j, p := range f.SkipPaths {
			if _, err := regexp.Compile(p); err != nil {
				v.addf(fmt.Sprintf("%s.skip_paths[%d]", key, j), "%q is not a valid regular expression: %v", p, err)
			}
		}
		for j, h := range f.Headers {
			if h != "remote" && h != "authentik" {
				v.addf(fmt.Sprintf("%s.headers[%d]", key, j), "%q is not one of remote, authentik", h)
			}
		}
		for j, r := range f.Rules {
			rk := fmt.Sprintf("%s.rules[%d]", key, j)
			if r.Policy != "" && !accessPolicies[r.Policy] {
				v.addf(rk+".policy", "%q is not one of bypass, deny, one_factor, two_factor", r.Policy)
			}
			for k, p := range r.Paths {
				if !strings.HasPrefix(p, "/") {
					v.addf(fmt.Sprintf("%s.paths[%d]", rk, k), "%q must start with /", p)
				}
			}
			if r.PathRegex != "" {
				if _, err := regexp.Compile(r.PathRegex); err != nil {
					v.addf(rk+".path_regex", "not a valid regular expression: %v", err)
				}
			}
			for k, n := range r.Networks {
				if _, err := parseNetwork(n); err != nil {
					v.addf(fmt.Sprintf("%s.networks[%d]", rk, k), "%q is not an IP address or CIDR", n)
				}
			}
			for k, g := range r.Groups {
				if !groupNameRE.MatchString(g) {
					v.addf(fmt.Sprintf("%s.groups[%d]", rk, k), "%q is not a valid group name", g)
				}
			}
		}
	}
}

func validLabel(s string) bool { return validHostName(s + ".x") }

func parseNetwork(s string) (netip.Prefix, error) { return parseProxy(s) }

// ForwardAuthHosts lists the exact (non-wildcard) hosts of every
// forward-auth app, which sign-in may return browsers to.
func (c *Config) ForwardAuthHosts() []string {
	var out []string
	for _, a := range c.Apps {
		if a.ForwardAuth == nil {
			continue
		}
		for _, h := range a.ForwardAuth.Hosts {
			if !strings.HasPrefix(h, "*.") {
				out = append(out, strings.ToLower(h))
			}
		}
	}
	return out
}
