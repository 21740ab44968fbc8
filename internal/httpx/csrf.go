package httpx

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
)

// CSRFField is the form field, and CSRFHeader the header, that carry the
// token on unsafe requests.
const (
	CSRFField  = "csrf_token"
	CSRFHeader = "X-CSRF-Token"
)

const csrfTokenBytes = 32

// CSRF protects server-rendered forms with two independent checks:
// http.CrossOriginProtection rejects unsafe requests a browser marks as
// cross-origin (Sec-Fetch-Site, or Origin against Host), and a
// double-submit token ties each form post to a cookie that only this
// origin can read.
type CSRF struct {
	cookie string
	secure bool
	cop    *http.CrossOriginProtection
}

// NewCSRF returns a CSRF keeping its token in cookieName. With secure the
// cookie is Secure; name it with the "__Host-" prefix then
// ("__Host-gatehouse_csrf"), which stops apps on sibling subdomains of the
// cookie domain from planting a token of their own.
func NewCSRF(cookieName string, secure bool) *CSRF {
	return &CSRF{cookie: cookieName, secure: secure, cop: http.NewCrossOriginProtection()}
}

// Token returns the token to put in a form's csrf_token field. It reuses
// the browser's token cookie, or issues one (HttpOnly, SameSite=Lax,
// Path=/) when there is none; calling it again for the same request returns
// the same token.
func (c *CSRF) Token(w http.ResponseWriter, r *http.Request) string {
	if tok := c.cookieToken(r); tok != "" {
		return tok
	}
	b := make([]byte, csrfTokenBytes)
	_, _ = rand.Read(b) // never fails since Go 1.24
	tok := base64.RawURLEncoding.EncodeToString(b)
	ck := &http.Cookie{
		Name:     c.cookie,
		Value:    tok,
		Path:     "/",
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	}
	http.SetCookie(w, ck)
	// Later calls during this request (a page with two forms) find it.
	r.AddCookie(ck)
	return tok
}

// cookieToken returns the first well-formed token cookie of r, or "".
func (c *CSRF) cookieToken(r *http.Request) string {
	for _, ck := range r.CookiesNamed(c.cookie) {
		if validToken(ck.Value) {
			return ck.Value
		}
	}
	return ""
}

func validToken(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(csrfTokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// Verify reports whether r carries the token of its cookie in the
// X-CSRF-Token header or, failing that, the csrf_token field of its body
// (never the query string, which ends up in logs and Referer headers).
func (c *CSRF) Verify(r *http.Request) bool {
	want := c.cookieToken(r)
	if want == "" {
		return false
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue(CSRFField)
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// Middleware rejects with 403 every request with an unsafe method (anything
// but GET, HEAD and OPTIONS) that is cross-origin or fails Verify.
func (c *CSRF) Middleware(next http.Handler) http.Handler {
	return c.cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !safeMethod(r.Method) && !c.Verify(r) {
			http.Error(w, "Forbidden: missing or invalid CSRF token", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}
