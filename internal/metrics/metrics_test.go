package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestMiddlewareLabelsByPattern(t *testing.T) {
	m := New()
	inner := http.NewServeMux()
	inner.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	// Middleware between the muxes replaces the request, as CSRF and
	// security headers do.
	root.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Route(inner).ServeHTTP(w, r.WithContext(r.Context()))
	}))
	isCheck := func(r *http.Request) string {
		if strings.HasPrefix(r.URL.Path, "/api/authz/") {
			return ForwardAuthRoute
		}
		return ""
	}
	h := m.Middleware(Route(root), isCheck)
	fa := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-Want") {
		case "401":
			w.WriteHeader(http.StatusUnauthorized)
		case "403":
			w.WriteHeader(http.StatusForbidden)
		}
	}), isCheck)

	for _, p := range []string{"/users/1", "/users/2", "/healthz", "/nope"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	for _, code := range []string{"", "", "401", "403"} {
		r := httptest.NewRequest("GET", "/api/authz/nginx", nil)
		r.Header.Set("X-Want", code)
		fa.ServeHTTP(httptest.NewRecorder(), r)
	}
	out := scrape(t, m)
	for _, want := range []string{
		`gatehouse_http_requests_total{code="418",route="GET /users/{id}"} 2`,
		`gatehouse_http_requests_total{code="200",route="GET /healthz"} 1`,
		`gatehouse_http_requests_total{code="404",route="/"} 1`, // the catch-all pattern, not the path
		`gatehouse_http_requests_total{code="200",route="forwardauth"} 2`,
		`gatehouse_forwardauth_decisions_total{decision="allow"} 2`,
		`gatehouse_forwardauth_decisions_total{decision="login"} 1`,
		`gatehouse_forwardauth_decisions_total{decision="deny"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(out, `/users/1"`) {
		t.Error("raw path used as a label")
	}
}

func TestRecorders(t *testing.T) {
	m := New()
	m.SignIn("success")
	m.SignIn("failure")
	m.SignIn("bogus") // ignored: bounded labels
	m.TokenIssued("access")
	m.JobRun("outbox", 10*time.Millisecond, nil)
	m.JobRun("outbox", time.Millisecond, errors.New("x"))
	m.SetRedisUp(true)
	m.SetLeader(true)
	m.RevocationsReceived("redis", 3)
	out := scrape(t, m)
	for _, want := range []string{
		`gatehouse_signins_total{result="success"} 1`,
		`gatehouse_signins_total{result="failure"} 1`,
		`gatehouse_tokens_issued_total{kind="access"} 1`,
		`gatehouse_job_runs_total{job="outbox",outcome="ok"} 1`,
		`gatehouse_job_runs_total{job="outbox",outcome="error"} 1`,
		`gatehouse_job_last_success{job="outbox"} 0`,
		`gatehouse_redis_up 1`,
		`gatehouse_worker_leader 1`,
		`gatehouse_session_revocations_received_total{source="redis"} 3`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(out, "bogus") {
		t.Error("unknown sign-in result became a label")
	}
}

func TestNilIsSafe(t *testing.T) {
	var m *Metrics
	m.Decision("allow")
	m.SignIn("success")
	m.JobRun("x", 0, nil)
	m.SetRedisUp(false)
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	if got := m.Middleware(h, nil); got == nil {
		t.Fatal("nil middleware")
	}
}

func TestDecisionDoesNotAllocate(t *testing.T) {
	m := New()
	if n := testing.AllocsPerRun(1000, func() { m.Decision("allow") }); n != 0 {
		t.Errorf("Decision allocates %v times per call", n)
	}
}
