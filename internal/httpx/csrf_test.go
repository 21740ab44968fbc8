package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-sso/gatehouse/internal/httpx"
)

func TestCSRFToken(t *testing.T) {
	for _, secure := range []bool{false, true} {
		c := httpx.NewCSRF("__Host-gh_csrf", secure)
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/login", nil)
		tok := c.Token(rec, req)
		if len(tok) != 43 {
			t.Fatalf("token %q: want 43 base64url characters (32 bytes)", tok)
		}
		if again := c.Token(rec, req); again != tok {
			t.Fatalf("second Token in one request = %q, want %q", again, tok)
		}
		cookies := rec.Result().Cookies()
		if len(cookies) != 1 {
			t.Fatalf("Set-Cookie count = %d, want 1", len(cookies))
		}
		ck := cookies[0]
		if ck.Name != "__Host-gh_csrf" || ck.Value != tok || ck.Path != "/" || ck.Domain != "" ||
			!ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Secure != secure {
			t.Fatalf("cookie = %+v (secure=%v)", ck, secure)
		}

		// The next request brings the cookie: same token, no new cookie.
		rec2 := httptest.NewRecorder()
		req2 := httptest.NewRequest(http.MethodGet, "/login", nil)
		req2.AddCookie(ck)
		if got := c.Token(rec2, req2); got != tok {
			t.Fatalf("Token with cookie = %q, want %q", got, tok)
		}
		if n := len(rec2.Result().Cookies()); n != 0 {
			t.Fatalf("Token with cookie set %d cookies", n)
		}
	}
}

func TestCSRFTokenReplacesBadCookie(t *testing.T) {
	c := httpx.NewCSRF("csrf", false)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(&http.Cookie{Name: "csrf", Value: "short"})
	tok := c.Token(rec, req)
	if tok == "short" || len(rec.Result().Cookies()) != 1 {
		t.Fatalf("Token = %q with a malformed cookie; want a fresh token and cookie", tok)
	}
	if again := c.Token(rec, req); again != tok {
		t.Fatalf("second Token = %q, want %q", again, tok)
	}
}

// post builds a form post carrying cookie (when not empty), the form field
// and the header.
func post(method, cookie, field, header, query string) *http.Request {
	form := url.Values{}
	if field != "" {
		form.Set(httpx.CSRFField, field)
	}
	req := httptest.NewRequest(method, "/login"+query, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "csrf", Value: cookie})
	}
	if header != "" {
		req.Header.Set(httpx.CSRFHeader, header)
	}
	return req
}

func issue(t *testing.T, c *httpx.CSRF) string {
	t.Helper()
	return c.Token(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
}

func TestCSRFVerify(t *testing.T) {
	c := httpx.NewCSRF("csrf", false)
	tok, other := issue(t, c), issue(t, c)
	tests := []struct {
		name string
		req  *http.Request
		want bool
	}{
		{"form field", post(http.MethodPost, tok, tok, "", ""), true},
		{"header", post(http.MethodPost, tok, "", tok, ""), true},
		{"header wins over field", post(http.MethodPost, tok, "wrong", tok, ""), true},
		{"wrong field", post(http.MethodPost, tok, other, "", ""), false},
		{"wrong header", post(http.MethodPost, tok, tok, other, ""), false},
		{"no cookie", post(http.MethodPost, "", tok, "", ""), false},
		{"no token", post(http.MethodPost, tok, "", "", ""), false},
		{"malformed cookie echoed", post(http.MethodPost, "abc", "abc", "", ""), false},
		{"token only in the query", post(http.MethodPost, tok, "", "", "?csrf_token="+tok), false},
		{"prefix of the token", post(http.MethodPost, tok, tok[:42], "", ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.Verify(tt.req); got != tt.want {
				t.Fatalf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCSRFMiddleware(t *testing.T) {
	c := httpx.NewCSRF("csrf", false)
	tok := issue(t, c)
	h := c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	get := func(method string) *http.Request { return httptest.NewRequest(method, "/login", nil) }
	with := func(r *http.Request, kv ...string) *http.Request {
		for i := 0; i < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		return r
	}
	tests := []struct {
		name string
		req  *http.Request
		want int
	}{
		{"GET without token", get(http.MethodGet), http.StatusNoContent},
		{"HEAD without token", get(http.MethodHead), http.StatusNoContent},
		{"OPTIONS without token", get(http.MethodOptions), http.StatusNoContent},
		{"POST without token", post(http.MethodPost, tok, "", "", ""), http.StatusForbidden},
		{"PUT without token", post(http.MethodPut, tok, "", "", ""), http.StatusForbidden},
		{"PATCH without token", post(http.MethodPatch, tok, "", "", ""), http.StatusForbidden},
		{"DELETE without token", post(http.MethodDelete, tok, "", "", ""), http.StatusForbidden},
		{"unusual method without token", post("PROPFIND", tok, "", "", ""), http.StatusForbidden},
		{"POST with token", post(http.MethodPost, tok, tok, "", ""), http.StatusNoContent},
		{"DELETE with header token", post(http.MethodDelete, tok, "", tok, ""), http.StatusNoContent},
		{"same-origin POST", with(post(http.MethodPost, tok, tok, "", ""), "Sec-Fetch-Site", "same-origin"), http.StatusNoContent},
		{"cross-site POST with a valid token", with(post(http.MethodPost, tok, tok, "", ""), "Sec-Fetch-Site", "cross-site"), http.StatusForbidden},
		{"sibling subdomain POST", with(post(http.MethodPost, tok, tok, "", ""), "Sec-Fetch-Site", "same-site"), http.StatusForbidden},
		{"foreign Origin", with(post(http.MethodPost, tok, tok, "", ""), "Origin", "https://evil.example"), http.StatusForbidden},
		{"own Origin", with(post(http.MethodPost, tok, tok, "", ""), "Origin", "http://example.com"), http.StatusNoContent},
		{"cross-site GET", with(get(http.MethodGet), "Sec-Fetch-Site", "cross-site"), http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, tt.req)
			if rec.Code != tt.want {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tt.want, rec.Body)
			}
		})
	}
}
