package httpx

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
)

// IPResolver finds the client's IP address of a request that may have come
// through reverse proxies. Forwarding headers are believed only when the
// direct peer is a trusted proxy, and X-Forwarded-For only as far as the
// chain of trusted proxies goes: a client can prepend anything to it, but
// cannot forge what the trusted proxies appended.
//
// The RFC 7239 Forwarded header is not read.
type IPResolver struct {
	trusted []netip.Prefix
}

// NewIPResolver returns a resolver that trusts the forwarding headers of
// peers in trusted (the ingress, load balancers). With none, the client IP
// is always the peer address.
func NewIPResolver(trusted []netip.Prefix) *IPResolver {
	r := &IPResolver{}
	for _, p := range trusted {
		if !p.IsValid() {
			continue
		}
		// An IPv4-mapped prefix (::ffff:10.0.0.0/104) never contains the
		// plain IPv4 addresses the resolver compares, so map it back.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r
}

// Trusted reports whether a is one of the trusted proxies.
func (r *IPResolver) Trusted(a netip.Addr) bool {
	a = normAddr(a)
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client's address, or the zero Addr when even the
// peer address cannot be parsed.
//
// When the peer is trusted, X-Forwarded-For is walked from the right (the
// entry the nearest proxy appended) past trusted proxies, and the first
// address that is not one is the client. An entry that is not an address
// ends the walk at the last address known. Without X-Forwarded-For, a
// trusted peer's X-Real-IP is used.
func (r *IPResolver) ClientIP(req *http.Request) netip.Addr {
	peer := parseHop(req.RemoteAddr)
	if !peer.IsValid() || !r.Trusted(peer) {
		return peer
	}
	if hops := forwardedFor(req.Header); len(hops) > 0 {
		client := peer
		for i := len(hops) - 1; i >= 0; i-- {
			a := parseHop(hops[i])
			if !a.IsValid() {
				return client
			}
			client = a
			if !r.Trusted(a) {
				return a
			}
		}
		return client
	}
	if a := parseHop(req.Header.Get("X-Real-IP")); a.IsValid() {
		return a
	}
	return peer
}

// forwardedFor returns the entries of every X-Forwarded-For line in order,
// or nil when the header is absent or blank.
func forwardedFor(h http.Header) []string {
	lines := h.Values("X-Forwarded-For")
	if strings.TrimSpace(strings.Join(lines, "")) == "" {
		return nil
	}
	var hops []string
	for _, l := range lines {
		hops = append(hops, strings.Split(l, ",")...)
	}
	return hops
}

// parseHop parses an address as proxies write it: "1.2.3.4", "2001:db8::1",
// with a port ("1.2.3.4:80", "[2001:db8::1]:80") or in brackets.
func parseHop(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return normAddr(a)
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normAddr(ap.Addr())
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return normAddr(a)
		}
	}
	return netip.Addr{}
}

// normAddr makes IPv4-mapped addresses plain IPv4 and drops IPv6 zones, so
// that prefixes match them.
func normAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

type clientIPKey struct{}

// Middleware stores the client IP in the request context for ClientIPFrom
// (and the access log).
func (r *IPResolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := context.WithValue(req.Context(), clientIPKey{}, r.ClientIP(req))
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

// ClientIPFrom returns the client IP IPResolver.Middleware stored in ctx,
// or the zero Addr.
func ClientIPFrom(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(clientIPKey{}).(netip.Addr)
	return a
}
