package httpx

import (
	"mime"
	"net/http"
)

// contentSecurityPolicy allows scripts, styles, fonts and fetches from the
// page's own origin only (no inline script or style), images also as data:
// URIs (TOTP QR codes), and no framing, plugins or <base>.
//
// form-action is left out on purpose. Chrome applies it to the redirects
// that follow a form post too, and our forms post to ourselves and then
// redirect elsewhere: sign-in to the app under the cookie domain, consent to
// an OIDC client's redirect URI, which may be http://localhost or a native
// app's custom scheme (com.example.app:/callback) that no source list short
// of "*" covers. "form-action 'self' https: http:" would break the last
// case and protect little, since markup injection could still post to any
// https: host.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; object-src 'none'; " +
	"base-uri 'none'; frame-ancestors 'none'"

// SecurityHeaders sets the browser hardening headers of server-rendered
// pages: nosniff, no framing, same-origin referrers, a strict CSP, and
// Cache-Control: no-store on HTML (pages carry CSRF tokens and personal
// data). Handlers may override any of them; a response whose handler sets
// a non-HTML Content-Type or its own Cache-Control keeps its caching.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		sw := &statusWriter{ResponseWriter: w, beforeHeader: func(h http.Header) {
			if h.Get("Cache-Control") == "" && maybeHTML(h.Get("Content-Type")) {
				h.Set("Cache-Control", "no-store")
			}
		}}
		next.ServeHTTP(sw, r)
	})
}

// maybeHTML reports whether a response of this Content-Type may be
// rendered as HTML. An empty type counts: net/http would sniff it.
func maybeHTML(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err != nil || mt == "text/html" || mt == "application/xhtml+xml"
}
