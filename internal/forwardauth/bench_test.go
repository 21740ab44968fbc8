package forwardauth

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that keeps only the status, so the
// benchmarks measure the decision, not httptest.ResponseRecorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(s int)           { d.status = s }

func benchDecision(b *testing.B, cookieUser string, want int) {
	e := newEnv(b)
	r := httptest.NewRequest("GET", "/api/authz/nginx", nil)
	r.Header.Set("X-Original-URL", "https://sonarr.homelab.local/calendar?x=1")
	r.Header.Set("X-Original-Method", "GET")
	r.Header.Set("X-Forwarded-For", "10.0.0.1")
	if cookieUser != "" {
		r.Header.Set("Cookie", "theme=dark; gatehouse_gate="+e.gateFor(b, cookieUser))
	}
	w := &discardWriter{h: http.Header{}}
	e.h.ServeHTTP(w, r) // warm the caches
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		e.h.ServeHTTP(w, r)
		if w.status != want {
			b.Fatalf("status %d, want %d", w.status, want)
		}
	}
}

// BenchmarkDecisionAllow is the hot path: a valid gate cookie, a member.
func BenchmarkDecisionAllow(b *testing.B) { benchDecision(b, "alice", http.StatusOK) }

// BenchmarkDecisionLogin is an unauthenticated request (401 + Location).
func BenchmarkDecisionLogin(b *testing.B) { benchDecision(b, "", http.StatusUnauthorized) }

// BenchmarkDecisionForbidden is a signed-in user outside allow_groups.
func BenchmarkDecisionForbidden(b *testing.B) { benchDecision(b, "bob", http.StatusForbidden) }

// BenchmarkDecisionAllowParallel is the allow path from every core at once
// (lock contention on the caches).
func BenchmarkDecisionAllowParallel(b *testing.B) {
	e := newEnv(b)
	cookie := "gatehouse_gate=" + e.gateFor(b, "alice")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", "/api/authz/nginx", nil)
		r.Header.Set("X-Original-URL", "https://sonarr.homelab.local/calendar?x=1")
		r.Header.Set("Cookie", cookie)
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			e.h.ServeHTTP(w, r)
		}
	})
}
