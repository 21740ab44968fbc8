package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-sso/gatehouse/internal/httpx"
)

func TestSecurityHeaders(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		wantCache string
	}{
		{"html page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte("<p>hi</p>"))
		}, "no-store"},
		{"no content type (sniffed)", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("<p>hi</p>"))
		}, "no-store"},
		{"explicit status, no body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusSeeOther)
		}, "no-store"},
		{"flushed html", func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush()
		}, "no-store"},
		{"stylesheet", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/css")
			_, _ = w.Write([]byte("p{}"))
		}, ""},
		{"handler's own caching", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Cache-Control", "private, max-age=60")
		}, "private, max-age=60"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			httpx.SecurityHeaders(tt.handler).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			h := rec.Result().Header
			for k, v := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
				"Referrer-Policy":        "same-origin",
			} {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := h.Get("Cache-Control"); got != tt.wantCache {
				t.Errorf("Cache-Control = %q, want %q", got, tt.wantCache)
			}
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			for _, bad := range []string{"unsafe-inline", "unsafe-eval", "script-src *"} {
				if strings.Contains(csp, bad) {
					t.Errorf("CSP %q contains %q", csp, bad)
				}
			}
		})
	}
}

func TestSecurityHeadersOverride(t *testing.T) {
	// A page that needs another policy (e.g. an OIDC form_post page with a
	// nonce) sets its own.
	rec := httptest.NewRecorder()
	httpx.SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
	})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if got := rec.Header().Get("Content-Security-Policy"); got != "default-src 'none'" {
		t.Fatalf("CSP = %q, want the handler's", got)
	}
}
