package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/gatehouse-sso/gatehouse/internal/httpx"
)

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestClientIP(t *testing.T) {
	r := httpx.NewIPResolver(prefixes("10.0.0.0/8", "fd00::/8", "::ffff:172.16.0.0/108"))
	tests := []struct {
		name   string
		remote string
		xff    []string // one entry per header line
		realIP string
		want   string
	}{
		{"direct client", "203.0.113.7:5555", nil, "", "203.0.113.7"},
		{"untrusted peer's XFF ignored", "203.0.113.7:5555", []string{"198.51.100.1"}, "", "203.0.113.7"},
		{"untrusted peer's X-Real-IP ignored", "203.0.113.7:5555", nil, "198.51.100.1", "203.0.113.7"},
		{"untrusted peer claims a trusted hop", "203.0.113.7:5555", []string{"10.0.0.1"}, "", "203.0.113.7"},
		{"one proxy", "10.0.0.2:443", []string{"198.51.100.1"}, "", "198.51.100.1"},
		{"client prepends a fake address", "10.0.0.2:443", []string{"1.1.1.1, 198.51.100.1"}, "", "198.51.100.1"},
		{"client prepends a trusted address", "10.0.0.2:443", []string{"10.9.9.9, 198.51.100.1"}, "", "198.51.100.1"},
		{"client prepends garbage", "10.0.0.2:443", []string{"<script>, 198.51.100.1"}, "", "198.51.100.1"},
		{"two trusted proxies", "10.0.0.2:443", []string{"198.51.100.1, 10.1.1.1"}, "", "198.51.100.1"},
		{"spoof behind two proxies", "10.0.0.2:443", []string{"6.6.6.6, 198.51.100.1, 10.1.1.1"}, "", "198.51.100.1"},
		{"client's own XFF line first", "10.0.0.2:443", []string{"6.6.6.6", "198.51.100.1"}, "", "198.51.100.1"},
		{"all hops trusted", "10.0.0.2:443", []string{"10.3.3.3, 10.1.1.1"}, "", "10.3.3.3"},
		{"garbage right of the client stops the walk", "10.0.0.2:443", []string{"198.51.100.1, unknown"}, "", "10.0.0.2"},
		{"garbage behind a trusted hop", "10.0.0.2:443", []string{"198.51.100.1, junk, 10.1.1.1"}, "", "10.1.1.1"},
		{"empty entry stops the walk", "10.0.0.2:443", []string{"198.51.100.1, , 10.1.1.1"}, "", "10.1.1.1"},
		{"hop with port", "10.0.0.2:443", []string{"198.51.100.1:61000"}, "", "198.51.100.1"},
		{"IPv6 hop", "10.0.0.2:443", []string{"2001:db8::1"}, "", "2001:db8::1"},
		{"IPv6 hop with port", "10.0.0.2:443", []string{"[2001:db8::1]:443"}, "", "2001:db8::1"},
		{"IPv6 hop in brackets", "10.0.0.2:443", []string{"[2001:db8::1]"}, "", "2001:db8::1"},
		{"IPv6 trusted peer", "[fd00::5]:443", []string{"198.51.100.1"}, "", "198.51.100.1"},
		{"mapped IPv4 peer", "[::ffff:10.0.0.2]:443", []string{"198.51.100.1"}, "", "198.51.100.1"},
		{"mapped IPv4 client", "10.0.0.2:443", []string{"::ffff:198.51.100.1"}, "", "198.51.100.1"},
		{"mapped trusted prefix", "172.16.5.5:443", []string{"198.51.100.1"}, "", "198.51.100.1"},
		{"zone on peer", "[fd00::5%eth0]:443", []string{"198.51.100.1"}, "", "198.51.100.1"},
		{"X-Real-IP from trusted peer", "10.0.0.2:443", nil, "198.51.100.1", "198.51.100.1"},
		{"XFF wins over X-Real-IP", "10.0.0.2:443", []string{"198.51.100.1"}, "192.0.2.1", "198.51.100.1"},
		{"blank XFF falls back to X-Real-IP", "10.0.0.2:443", []string{" "}, "198.51.100.1", "198.51.100.1"},
		{"bad X-Real-IP", "10.0.0.2:443", nil, "nope", "10.0.0.2"},
		{"trusted peer, no headers", "10.0.0.2:443", nil, "", "10.0.0.2"},
		{"remote without port", "203.0.113.7", nil, "", "203.0.113.7"},
		{"unparseable remote", "@", []string{"198.51.100.1"}, "", "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if tt.realIP != "" {
				req.Header.Set("X-Real-IP", tt.realIP)
			}
			if got := r.ClientIP(req).String(); got != tt.want {
				t.Fatalf("ClientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestClientIPNoTrustedProxies(t *testing.T) {
	r := httpx.NewIPResolver(nil)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "127.0.0.1:1234"
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	req.Header.Set("X-Real-IP", "198.51.100.1")
	if got := r.ClientIP(req).String(); got != "127.0.0.1" {
		t.Fatalf("ClientIP = %s, want the peer", got)
	}
}

func TestClientIPMiddleware(t *testing.T) {
	r := httpx.NewIPResolver(prefixes("10.0.0.0/8"))
	var got netip.Addr
	h := r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got = httpx.ClientIPFrom(req.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "10.0.0.2:443"
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got.String() != "198.51.100.1" {
		t.Fatalf("ClientIPFrom = %v", got)
	}
	if a := httpx.ClientIPFrom(t.Context()); a.IsValid() {
		t.Fatalf("ClientIPFrom(empty ctx) = %v", a)
	}
}

// FuzzClientIP checks that no header makes ClientIP panic or return an
// address prefixes would not match (zoned or IPv4-mapped).
func FuzzClientIP(f *testing.F) {
	r := httpx.NewIPResolver(prefixes("10.0.0.0/8", "fd00::/8"))
	f.Add("10.0.0.2:443", "198.51.100.1, 10.1.1.1", "")
	f.Add("10.0.0.2:443", "", "[2001:db8::1]:80")
	f.Add("203.0.113.7:1", "1.2.3.4", "5.6.7.8")
	f.Add("[fd00::1%eth0]:1", ",,,", "::ffff:1.2.3.4")
	f.Fuzz(func(t *testing.T, remote, xff, realIP string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = remote
		req.Header["X-Forwarded-For"] = []string{xff}
		req.Header["X-Real-Ip"] = []string{realIP}
		if a := r.ClientIP(req); a.IsValid() && (a.Zone() != "" || a.Is4In6()) {
			t.Fatalf("ClientIP = %v: not normalised", a)
		}
	})
}
