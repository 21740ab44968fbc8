package redirect

import (
	"net/url"
	"strings"
	"testing"
)

func testPolicy(t testing.TB, external string) *Policy {
	u, err := url.Parse(external)
	if err != nil {
		t.Fatal(err)
	}
	return New(u, "homelab.local", []string{"media.example.org"})
}

func TestCheck(t *testing.T) {
	p := testPolicy(t, "https://auth.homelab.local")
	cases := []struct {
		name, in, want string
		ok             bool
	}{
		{"own path", "/account", "https://auth.homelab.local/account", true},
		{"own absolute", "https://auth.homelab.local/x?y=1", "https://auth.homelab.local/x?y=1", true},
		{"subdomain", "https://sonarr.homelab.local/calendar?x=1", "https://sonarr.homelab.local/calendar?x=1", true},
		{"subdomain with port", "https://sonarr.homelab.local:8443/", "https://sonarr.homelab.local:8443/", true},
		{"cookie domain itself", "https://homelab.local/", "https://homelab.local/", true},
		{"extra host", "https://media.example.org/", "https://media.example.org/", true},
		{"upper case host", "https://SONARR.homelab.local/", "https://SONARR.homelab.local/", true},
		{"empty", "", "", false},
		{"protocol relative", "//evil.com/", "", false},
		{"backslash", "/\\evil.com", "", false},
		{"backslashes absolute", "https:\\\\evil.com", "", false},
		{"suffix attack", "https://evil.homelab.local.attacker.com/", "", false},
		{"lookalike", "https://evilhomelab.local/", "", false},
		{"other domain", "https://evil.com/", "", false},
		{"userinfo", "https://auth.homelab.local@evil.com/", "", false},
		{"userinfo on good host", "https://user@sonarr.homelab.local/", "", false},
		{"javascript", "javascript:alert(1)", "", false},
		{"data", "data:text/html,hi", "", false},
		{"downgrade", "http://sonarr.homelab.local/", "", false},
		{"encoded host", "https://evil.com%2ehomelab.local/", "", false},
		{"tab", "/\t/evil.com", "", false},
		{"newline", "https://sonarr.homelab.local/\n", "", false},
		{"relative no slash", "evil.com", "", false},
		{"triple slash", "///evil.com", "", false},
		{"scheme only host", "https:evil.com", "", false},
		{"trailing dot", "https://sonarr.homelab.local./", "", false},
		{"ipv6", "https://[::1]/", "", false},
		{"ftp", "ftp://sonarr.homelab.local/", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := p.Check(c.in)
			if ok != c.ok || got != c.want {
				t.Fatalf("Check(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
			}
		})
	}
}

func TestHTTPDeployment(t *testing.T) {
	p := testPolicy(t, "http://localhost:9000")
	if got, ok := p.Check("http://sonarr.homelab.local/"); !ok || got != "http://sonarr.homelab.local/" {
		t.Fatalf("http allowed on an http deployment: got %q %v", got, ok)
	}
	if got, ok := p.Check("/x"); !ok || got != "http://localhost:9000/x" {
		t.Fatalf("relative: got %q %v", got, ok)
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"/account", "https://sonarr.homelab.local/x", "//evil.com", "/\\evil", "https://evil.homelab.local.attacker.com", "https://a@b", "%2F%2Fevil"} {
		f.Add(s)
	}
	p := testPolicy(f, "https://auth.homelab.local")
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok := p.Check(raw)
		if !ok {
			return
		}
		// Whatever is allowed must parse to an allowed host over http(s),
		// the way a browser would read it.
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("allowed %q but result %q does not parse", raw, got)
		}
		if u.Scheme != "https" || u.User != nil || !p.HostAllowed(u.Hostname()) {
			t.Fatalf("allowed %q -> %q leaves the allowed hosts", raw, got)
		}
		if strings.ContainsAny(got, "\\\t\r\n") {
			t.Fatalf("allowed %q -> %q contains characters browsers reinterpret", raw, got)
		}
	})
}
