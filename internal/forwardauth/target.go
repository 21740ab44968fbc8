package forwardauth

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// dialect is how a proxy describes the request it asks about and how it
// expects to be answered.
type dialect int

const (
	// nginxDialect: nginx auth_request / ingress-nginx. Target from
	// X-Original-URL and X-Original-Method; answers 200 / 401 (+Location) /
	// 403, never a redirect (nginx turns a 3xx into a 500).
	nginxDialect dialect = iota
	// forwardDialect: Traefik forwardAuth, Caddy forward_auth. Target from
	// X-Forwarded-Proto/Host/Uri/Method (trusted proxies only); answers
	// 200 / 302 (303, 401) / 403, which the proxy relays to the browser.
	forwardDialect
	// envoyDialect: Envoy ext_authz HTTP service. Target from Host and the
	// path below the endpoint's prefix; answers like forwardDialect.
	envoyDialect
)

// target is the request a proxy asks about, parsed once.
type target struct {
	scheme   string // http or https
	hostport string // as sent, lower case, port kept (for the return URL)
	host     string // lower case, no port: the policy key
	path     string // decoded and cleaned: what rules match
	rawURI   string // path and query as sent (for the return URL)
	method   string
}

// url is the target as an absolute URL, for the sign-in return address.
func (t *target) url() string { return t.scheme + "://" + t.hostport + t.rawURI }

var (
	errNoTarget     = errors.New("the proxy did not say which URL it asks about")
	errBadTarget    = errors.New("the URL the proxy asks about is not valid")
	errUntrusted    = errors.New("X-Forwarded-* headers from a peer that is not in trusted_proxies")
	errBadMethod    = errors.New("the method the proxy asks about is not valid")
	maxTargetLength = 8192
)

// parseAbsolute reads an absolute http(s) URL the way a browser-facing
// proxy writes $scheme://$http_host$request_uri. It is stricter than
// net/url: no user info, no fragments, host names of letters, digits, dots
// and dashes (or an IPv4 address) with an optional numeric port.
func parseAbsolute(raw string, t *target) error {
	if len(raw) > maxTargetLength {
		return errBadTarget
	}
	var rest string
	switch {
	case hasPrefixFold(raw, "https://"):
		t.scheme, rest = "https", raw[len("https://"):]
	case hasPrefixFold(raw, "http://"):
		t.scheme, rest = "http", raw[len("http://"):]
	default:
		return errBadTarget
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if err := parseHostPort(rest[:end], t); err != nil {
		return err
	}
	return parseURI(rest[end:], t)
}

// parseHostPort fills hostport and host from "name[:port]".
func parseHostPort(hp string, t *target) error {
	if hp == "" || len(hp) > 261 {
		return errBadTarget
	}
	host, port := hp, ""
	if i := strings.LastIndexByte(hp, ':'); i >= 0 {
		host, port = hp[:i], hp[i+1:]
		if port == "" || len(port) > 5 {
			return errBadTarget
		}
		n := 0
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return errBadTarget
			}
			n = n*10 + int(port[i]-'0')
		}
		if n == 0 || n > 65535 {
			return errBadTarget
		}
	}
	if host == "" || host[0] == '.' || host[0] == '-' || host[len(host)-1] == '.' {
		return errBadTarget
	}
	lower := true
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
		case c >= 'A' && c <= 'Z':
			lower = false
		default:
			return errBadTarget
		}
	}
	if strings.Contains(host, "..") {
		return errBadTarget
	}
	if !lower {
		host, hp = strings.ToLower(host), strings.ToLower(hp)
	}
	t.host, t.hostport = host, hp
	return nil
}

// parseURI fills rawURI and path from "/path?query" (empty means "/").
// The path rules match is percent-decoded and cleaned of "." and ".."
// segments and repeated slashes, as the app behind the proxy will see it:
// "/x/../admin" and "/%61dmin" must not slip past a rule for "/admin".
func parseURI(uri string, t *target) error {
	if strings.IndexByte(uri, '#') >= 0 {
		// Browsers never send fragments. nginx passes a raw "#" through to
		// the app as part of the path, so cutting it here would check a
		// shorter path than the app serves ("/public#/../admin").
		return errBadTarget
	}
	if uri == "" {
		uri = "/"
	}
	if uri[0] == '?' {
		uri = "/" + uri
	}
	if uri[0] != '/' || len(uri) > maxTargetLength {
		return errBadTarget
	}
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c < 0x21 || c == 0x7f {
			return errBadTarget
		}
	}
	t.rawURI = uri
	p := uri
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if strings.IndexByte(p, '%') >= 0 {
		d, err := url.PathUnescape(p)
		if err != nil {
			return errBadTarget
		}
		p = d
	}
	if strings.IndexByte(p, ';') >= 0 {
		// Servlet containers drop ";params" from each segment before
		// routing ("/admin;x/users" is "/admin/users"): the rules must see
		// the path those apps serve.
		p = stripPathParams(p)
	}
	if needsClean(p) {
		p = strings.ReplaceAll(p, `\`, "/")
		trailing := strings.HasSuffix(p, "/")
		p = path.Clean("/" + p)
		if trailing && p != "/" {
			p += "/"
		}
	}
	t.path = p
	return nil
}

// needsClean reports whether p has "//", "/." segments or a backslash
// (which some backends treat as a slash).
func needsClean(p string) bool {
	return strings.Contains(p, "//") || strings.Contains(p, "/.") || strings.IndexByte(p, '\\') >= 0 ||
		(len(p) > 0 && p[0] != '/')
}

func parseMethod(m string, t *target) error {
	if m == "" {
		t.method = http.MethodGet
		return nil
	}
	if len(m) > 20 {
		return errBadMethod
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return errBadMethod
		}
	}
	t.method = strings.ToUpper(m)
	return nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// header returns the first value of a canonical header name without the
// allocation of http.Header.Get's canonicalisation.
func header(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// stripPathParams removes ";..." from every segment of p.
func stripPathParams(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	return strings.Join(segs, "/")
}
