// Package redirect decides which return URLs ("rd") Gatehouse may send a
// browser to after sign-in or sign-out, so that no endpoint is an open
// redirect.
package redirect

import (
	"net/url"
	"strings"
)

// Policy holds the hosts a browser may be sent back to.
type Policy struct {
	base         *url.URL
	cookieDomain string
	hosts        map[string]struct{}
}

// New allows the external URL's host, the cookie domain and everything under
// it, and any extra exact hosts (for example the hosts of declared apps).
func New(external *url.URL, cookieDomain string, extraHosts []string) *Policy {
	p := &Policy{
		base:         external,
		cookieDomain: strings.TrimPrefix(strings.ToLower(cookieDomain), "."),
		hosts:        map[string]struct{}{strings.ToLower(external.Hostname()): {}},
	}
	for _, h := range extraHosts {
		p.hosts[strings.ToLower(h)] = struct{}{}
	}
	return p
}

// WithHosts returns a copy of the policy that also allows hosts.
func (p *Policy) WithHosts(hosts []string) *Policy {
	q := &Policy{base: p.base, cookieDomain: p.cookieDomain, hosts: make(map[string]struct{}, len(p.hosts)+len(hosts))}
	for h := range p.hosts {
		q.hosts[h] = struct{}{}
	}
	for _, h := range hosts {
		q.hosts[strings.ToLower(h)] = struct{}{}
	}
	return q
}

// Check returns the absolute URL to redirect to and true when raw is an
// allowed target. A path on Gatehouse itself ("/account") is allowed and
// resolved against the external URL.
func (p *Policy) Check(raw string) (string, bool) {
	if raw == "" || len(raw) > 4096 {
		return "", false
	}
	for i := 0; i < len(raw); i++ {
		// Browsers treat a backslash like a slash and drop tabs and newlines,
		// so "/\evil" or "/\t/evil" would leave the site: refuse them all.
		if c := raw[i]; c == '\\' || c < 0x21 || c == 0x7f {
			return "", false
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false
	}
	if u.Scheme == "" && u.Host == "" {
		// Relative: only an absolute path on our own host.
		if !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") || u.Opaque != "" {
			return "", false
		}
		return p.base.ResolveReference(u).String(), true
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", false
	}
	if u.Scheme == "http" && p.base.Scheme == "https" {
		return "", false // never downgrade a secure deployment
	}
	if u.User != nil || u.Opaque != "" || u.Host == "" {
		return "", false
	}
	if !p.HostAllowed(u.Hostname()) {
		return "", false
	}
	return u.String(), true
}

// HostAllowed reports whether host (without port) is one Gatehouse may send
// browsers to.
func (p *Policy) HostAllowed(host string) bool {
	host = strings.ToLower(host)
	if !validHostname(host) {
		return false
	}
	if _, ok := p.hosts[host]; ok {
		return true
	}
	if d := p.cookieDomain; d != "" {
		return host == d || strings.HasSuffix(host, "."+d)
	}
	return false
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 || h[0] == '.' || h[len(h)-1] == '.' {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.Contains(h, "..")
}
