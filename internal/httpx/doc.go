// Package httpx holds the HTTP middleware every edge of Gatehouse shares:
// request ids, the real client IP behind trusted proxies, access logs,
// panic recovery, security headers, CSRF protection for server-rendered
// forms, and the adapter that lets handlers return errors.
//
// Middleware has the form func(http.Handler) http.Handler. For the browser
// mux the intended order, outermost first, is
//
//	RequestID → IPResolver.Middleware → AccessLog → Recover → SecurityHeaders → CSRF.Middleware → mux
//
// so that the access log sees the request id, the client IP and the 500 a
// recovered panic becomes. API and forward-auth muxes leave out
// SecurityHeaders and CSRF.
package httpx
