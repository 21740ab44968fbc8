package policy

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

func testTable(t testing.TB, def Level) *Table {
	t.Helper()
	tab, err := Compile(Spec{Default: def, Apps: []AppSpec{
		{Slug: "sonarr", Hosts: []string{"sonarr.homelab.local"}, SkipPaths: []string{"^/api/"}, AllowGroups: []string{"media", "admins"}},
		{Slug: "catchall", Hosts: []string{"*.homelab.local"}},
		{Slug: "deep", Hosts: []string{"*.lab.homelab.local"}, AllowGroups: []string{"admins"}},
		{Slug: "grafana", Hosts: []string{"grafana.example.org"}, Rules: []RuleSpec{
			{Paths: []string{"/public"}, Policy: Bypass},
			{Paths: []string{"/admin"}, Groups: []string{"admins"}, Policy: OneFactor},
			{Methods: []string{"delete"}, Policy: Deny},
			{Paths: []string{"/secure"}, Policy: TwoFactor},
			{Networks: []string{"10.0.0.0/8", "192.0.2.7"}, Policy: Bypass},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestAppLookup(t *testing.T) {
	tab := testTable(t, Deny)
	cases := map[string]string{
		"sonarr.homelab.local":      "sonarr",
		"radarr.homelab.local":      "catchall",
		"a.b.homelab.local":         "catchall",
		"x.lab.homelab.local":       "deep",
		"lab.homelab.local":         "catchall",
		"homelab.local":             "",
		"evilhomelab.local":         "",
		"sonarr.homelab.local.evil": "",
		"grafana.example.org":       "grafana",
		"":                          "",
	}
	for host, want := range cases {
		got := ""
		if a := tab.App(host); a != nil {
			got = a.Slug
		}
		if got != want {
			t.Errorf("App(%q) = %q, want %q", host, got, want)
		}
	}
}

func TestDecide(t *testing.T) {
	tab := testTable(t, Deny)
	anon := &Subject{}
	media := &Subject{Authenticated: true, Level: model.LevelPassword, Groups: []string{"media"}}
	other := &Subject{Authenticated: true, Level: model.LevelPassword, Groups: []string{"family"}}
	admin := &Subject{Authenticated: true, Level: model.LevelPassword, Groups: []string{"admins"}}
	admin2 := &Subject{Authenticated: true, Level: model.LevelTwoFactor, Groups: []string{"admins"}}
	cases := []struct {
		name, host, path, method, ip string
		sub                          *Subject
		want                         Result
	}{
		{"anonymous needs login", "sonarr.homelab.local", "/", "GET", "", anon, Login},
		{"member allowed", "sonarr.homelab.local", "/calendar", "GET", "", media, Allow},
		{"non-member forbidden", "sonarr.homelab.local", "/", "GET", "", other, Forbidden},
		{"skip path anonymous", "sonarr.homelab.local", "/api/v3/queue", "GET", "", anon, Allow},
		{"skip path anchored", "sonarr.homelab.local", "/x/api/", "GET", "", anon, Login},
		{"catch-all any user", "radarr.homelab.local", "/", "GET", "", other, Allow},
		{"catch-all anonymous", "radarr.homelab.local", "/", "GET", "", anon, Login},
		{"longest wildcard wins", "x.lab.homelab.local", "/", "GET", "", media, Forbidden},
		{"unknown host denied", "evil.example.com", "/", "GET", "", admin, Forbidden},
		{"unknown host anonymous denied", "evil.example.com", "/", "GET", "", anon, Forbidden},
		{"bypass rule", "grafana.example.org", "/public/x", "GET", "", anon, Allow},
		{"prefix is segment-wise", "grafana.example.org", "/publicity", "GET", "", anon, Login},
		{"rule groups", "grafana.example.org", "/admin/users", "GET", "", media, Forbidden},
		{"rule groups ok", "grafana.example.org", "/admin", "GET", "", admin, Allow},
		{"rule prefix ignores case", "grafana.example.org", "/Admin/users", "GET", "", media, Forbidden},
		{"method deny", "grafana.example.org", "/x", "DELETE", "", admin, Forbidden},
		{"first match wins", "grafana.example.org", "/public", "DELETE", "", anon, Allow},
		{"two factor needed", "grafana.example.org", "/secure", "GET", "", admin, Forbidden},
		{"two factor anonymous", "grafana.example.org", "/secure", "GET", "", anon, Login},
		{"two factor ok", "grafana.example.org", "/secure", "GET", "", admin2, Allow},
		{"network bypass", "grafana.example.org", "/x", "GET", "10.1.2.3", anon, Allow},
		{"network single ip", "grafana.example.org", "/x", "GET", "192.0.2.7", anon, Allow},
		{"network mapped", "grafana.example.org", "/x", "GET", "::ffff:10.0.0.1", anon, Allow},
		{"network outside", "grafana.example.org", "/x", "GET", "192.0.2.8", anon, Login},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := Request{Path: c.path, Method: c.method}
			if c.ip != "" {
				req.IP = netip.MustParseAddr(c.ip)
			}
			app := tab.App(c.host)
			if got := tab.Decide(app, req, c.sub); got != c.want {
				t.Fatalf("Decide = %v, want %v", got, c.want)
			}
		})
	}
}

func TestDefaultPolicy(t *testing.T) {
	tab := testTable(t, OneFactor)
	if got := tab.Decide(nil, Request{Path: "/"}, &Subject{}); got != Login {
		t.Fatalf("anonymous on unclaimed host = %v, want login", got)
	}
	if got := tab.Decide(nil, Request{Path: "/"}, &Subject{Authenticated: true}); got != Allow {
		t.Fatalf("signed in on unclaimed host = %v, want allow", got)
	}
}

func TestCompileErrors(t *testing.T) {
	_, err := Compile(Spec{Apps: []AppSpec{
		{Slug: "a", Hosts: []string{"x.local", "*.", "bad host"}, SkipPaths: []string{"("}},
		{Slug: "b", Hosts: []string{"X.local"}, Rules: []RuleSpec{{Paths: []string{"nope"}}, {Networks: []string{"10.0.0.0/33"}}, {PathRegex: "["}}},
	}})
	if err == nil {
		t.Fatal("Compile accepted a broken spec")
	}
	for _, want := range []string{`"*."`, `"bad host"`, "skip path", "already claimed by app a", "must start with /", "10.0.0.0/33", "path_regex"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for _, l := range []Level{Deny, Bypass, OneFactor, TwoFactor} {
		got, err := ParseLevel(l.String())
		if err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), got, err)
		}
	}
	if _, err := ParseLevel("allow"); err == nil {
		t.Error("ParseLevel accepted allow")
	}
}

func BenchmarkDecide(b *testing.B) {
	tab := testTable(b, Deny)
	sub := &Subject{Authenticated: true, Level: model.LevelPassword, Groups: []string{"users", "media"}}
	req := Request{Path: "/calendar", Method: "GET"}
	b.ReportAllocs()
	for b.Loop() {
		if tab.Decide(tab.App("sonarr.homelab.local"), req, sub) != Allow {
			b.Fatal("not allowed")
		}
	}
}

func TestSkipPathShortcut(t *testing.T) {
	cases := []struct {
		re, path string
		want     bool
	}{
		{"^/api/", "/api/v3", true},
		{"^/api/", "/x/api/", false},
		{"^/api/v[0-9]+/", "/api/v3/queue", true},
		{"^/api/v[0-9]+/", "/api/vx/", false},
		{"/feed$", "/calendar/feed", true},
		{"^/(a|b)/", "/b/x", true},
		{"^/a|^/b", "/b", true},
	}
	for _, c := range cases {
		s := newSkipPath(c.re, regexp.MustCompile(c.re))
		if got := s.match(c.path); got != c.want {
			t.Errorf("skip %q on %q = %v, want %v", c.re, c.path, got, c.want)
		}
	}
}
