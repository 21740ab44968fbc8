package forwardauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzParseAbsolute checks the X-Original-URL parser: it never panics,
// and what it accepts is a clean, absolute http(s) URL whose host agrees
// with net/url's reading of the same string.
func FuzzParseAbsolute(f *testing.F) {
	for _, s := range []string{
		"https://sonarr.homelab.local/calendar?x=1", "http://a.b:8080", "https://a.b/x/../y", "https://a.b/%2e%2e/admin",
		"https://a.b//admin/", "https://user@a.b/", "https://a.b:99999/", "https://A.B/?#frag", "https://a.b/\\admin",
		"https://[::1]/", "https://a..b/", "HTTPS://a.b/x%zz", "https://a.b?x", "https://-a.b/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var tg target
		if err := parseAbsolute(raw, &tg); err != nil {
			return
		}
		if tg.scheme != "http" && tg.scheme != "https" {
			t.Fatalf("scheme %q", tg.scheme)
		}
		if !strings.HasPrefix(tg.path, "/") || strings.Contains(tg.path, "/../") || strings.Contains(tg.path, "//") || strings.HasSuffix(tg.path, "/..") {
			t.Fatalf("path %q not clean (from %q)", tg.path, raw)
		}
		if tg.host == "" || strings.ContainsAny(tg.host, "@:/\\ ") || tg.host != strings.ToLower(tg.host) {
			t.Fatalf("host %q", tg.host)
		}
		u, err := url.Parse(tg.url())
		if err != nil {
			t.Fatalf("accepted %q but net/url refuses %q: %v", raw, tg.url(), err)
		}
		if strings.ToLower(u.Hostname()) != tg.host {
			t.Fatalf("host %q, net/url says %q (from %q)", tg.host, u.Hostname(), raw)
		}
	})
}

// FuzzCheckRD checks /start's return-address rule: whatever it accepts is
// an http(s) URL on the cookie domain or a declared app host.
func FuzzCheckRD(f *testing.F) {
	for _, s := range []string{
		"https://sonarr.homelab.local/x", "//evil.com", "https://evil.homelab.local.attacker.com/", `https:\\evil.com`,
		"https://evil.com%2ehomelab.local/", "https://media.example.org/", "https://a@homelab.local/", "/account",
		"https://homelab.local./", "https://xn--80ak6aa92e.homelab.local/", "https://sonarr.homelab.local:443/",
	} {
		f.Add(s)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, rd string) {
		got, u, ok := e.h.checkRD(rd)
		if !ok {
			return
		}
		if u.Scheme != "https" || u.User != nil {
			t.Fatalf("%q → %q", rd, got)
		}
		h := strings.ToLower(u.Hostname())
		if h != "homelab.local" && !strings.HasSuffix(h, ".homelab.local") && h != "media.example.org" && h != "auth.homelab.local" {
			t.Fatalf("%q → %q (host %q)", rd, got, h)
		}
		// Browsers must read the same host from what we send.
		v, err := url.Parse(got)
		if err != nil || strings.ToLower(v.Hostname()) != h || strings.ContainsAny(got, "\\\t\r\n") {
			t.Fatalf("%q → %q reparses differently", rd, got)
		}
	})
}

// FuzzForwardHeaders feeds arbitrary X-Forwarded-* and cookies to the
// Traefik endpoint: never a panic, never a 5xx, and a 200 only with the
// cookie that was minted.
func FuzzForwardHeaders(f *testing.F) {
	f.Add("sonarr.homelab.local", "/x?y=1", "GET", "https", "a=b")
	f.Add("SONARR.homelab.local:443", "//a/../b", "post", "http", "gatehouse_gate=\"x\"")
	f.Add("a,b", "x", "G E T", "ftp", ";;=;")
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, host, uri, method, proto, cookie string) {
		r := httptest.NewRequest("GET", "http://gatehouse/api/authz/forward-auth", nil)
		r.RemoteAddr = "127.0.0.1:1"
		r.Header = http.Header{
			"X-Forwarded-Host": {host}, "X-Forwarded-Uri": {uri}, "X-Forwarded-Method": {method},
			"X-Forwarded-Proto": {proto}, "Cookie": {cookie},
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("status %d", w.Code)
		}
		if w.Code == 200 && w.Header().Get("Remote-User") != "" {
			t.Fatalf("identity without a gate: %v", w.Header())
		}
		if loc := w.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, "https://auth.homelab.local/gate/start?rd=") {
			t.Fatalf("Location %q", loc)
		}
	})
}

func TestCookieValue(t *testing.T) {
	cases := []struct {
		lines []string
		want  string
	}{
		{[]string{"gatehouse_gate=abc"}, "abc"},
		{[]string{"a=1; gatehouse_gate=abc; b=2"}, "abc"},
		{[]string{"a=1", "gatehouse_gate=\"abc\""}, "abc"},
		{[]string{"xgatehouse_gate=abc"}, ""},
		{[]string{"gatehouse_gatex=abc"}, ""},
		{nil, ""},
	}
	for _, c := range cases {
		if got := cookieValue(http.Header{"Cookie": c.lines}, "gatehouse_gate"); got != c.want {
			t.Errorf("%q → %q, want %q", c.lines, got, c.want)
		}
	}
}

func TestParseURIPaths(t *testing.T) {
	cases := map[string]string{
		"":                "/",
		"/":               "/",
		"?x=1":            "/",
		"/a/b/":           "/a/b/",
		"/a/../admin":     "/admin",
		"/%61dmin":        "/admin",
		"/x/%2e%2e/admin": "/admin",
		"//admin":         "/admin",
		"/api/./v3/":      "/api/v3/",
		"/a\\..\\admin":   "/admin",
		"/a?next=/../x":   "/a",
		"/%2fadmin":       "/admin",
		"/admin;x/users":  "/admin/users",
		"/api;x/../admin": "/admin",
		"/a;b":            "/a",
	}
	for in, want := range cases {
		var tg target
		if err := parseURI(in, &tg); err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if tg.path != want {
			t.Errorf("%q → %q, want %q", in, tg.path, want)
		}
	}
	for _, bad := range []string{"x", "/a b", "/a%zz", "/\x00", "/a#/../admin", "/public#frag"} {
		var tg target
		if parseURI(bad, &tg) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
