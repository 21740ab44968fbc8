package metrics

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// routeCache resolves (route, code) to its counter and route to its
// histogram once, so steady-state requests take a read-locked map lookup
// and no label allocation.
type routeCache struct {
	m  *Metrics
	mu sync.RWMutex
	c  map[routeCode]prometheus.Counter
	h  map[string]prometheus.Observer
}

type routeCode struct {
	route string
	code  int
}

func (rc *routeCache) init(m *Metrics) {
	rc.m = m
	rc.c = map[routeCode]prometheus.Counter{}
	rc.h = map[string]prometheus.Observer{}
}

func (rc *routeCache) observe(route string, code int, took time.Duration) {
	k := routeCode{route, code}
	rc.mu.RLock()
	c, okc := rc.c[k]
	h, okh := rc.h[route]
	rc.mu.RUnlock()
	if !okc || !okh {
		rc.mu.Lock()
		if c, okc = rc.c[k]; !okc {
			c = rc.m.httpRequests.WithLabelValues(route, strconv.Itoa(code))
			rc.c[k] = c
		}
		if h, okh = rc.h[route]; !okh {
			h = rc.m.httpDuration.WithLabelValues(route)
			rc.h[route] = h
		}
		rc.mu.Unlock()
	}
	c.Inc()
	h.Observe(took.Seconds())
}

// ForwardAuthRoute is the route label of forward-auth checks. Requests
// with this label are also counted as decisions, derived from the status
// the proxy dialects answer with.
const ForwardAuthRoute = "forwardauth"

// decisionOf maps a forward-auth status to a decision kind: 200 allow, 401
// and redirects login (sign-in needed, or a bad machine credential), 403
// deny, anything else error.
func decisionOf(code int) string {
	switch {
	case code >= 200 && code < 300:
		return "allow"
	case code == http.StatusUnauthorized || code >= 300 && code < 400:
		return "login"
	case code == http.StatusForbidden:
		return "deny"
	}
	return "error"
}

// routeKey carries a *string through the request context, so that an inner
// ServeMux can report the pattern it matched even when middleware between
// it and Middleware replaced the *http.Request (r.WithContext copies it).
type routeKey struct{}

// Middleware counts requests by the pattern the ServeMux matched
// (r.Pattern, e.g. "GET /login"), never the raw path, so the number of
// series stays bounded; requests no mux matched are "unmatched".
//
// preRoute, which may be nil, names requests before they are served (for
// example forward-auth checks, answered without a mux): those skip the
// route bookkeeping and cost one small allocation for the status writer.
func (m *Metrics) Middleware(next http.Handler, preRoute func(*http.Request) string) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		route := ""
		if preRoute != nil {
			route = preRoute(r)
		}
		if route == "" {
			var inner string
			r = r.WithContext(context.WithValue(r.Context(), routeKey{}, &inner))
			next.ServeHTTP(sw, r)
			route = inner
			if route == "" {
				route = r.Pattern
			}
			if route == "" {
				route = "unmatched"
			}
		} else {
			next.ServeHTTP(sw, r)
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		m.routes.observe(route, code, time.Since(start))
		if route == ForwardAuthRoute {
			m.Decision(decisionOf(code))
		}
	})
}

// Route wraps an inner mux (or any handler that sets r.Pattern) so that
// the pattern it matched is what Middleware reports. The innermost Route
// wins.
func Route(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if p, ok := r.Context().Value(routeKey{}).(*string); ok && r.Pattern != "" && *p == "" {
			*p = r.Pattern
		}
	})
}

// statusWriter remembers the status code. Unwrap lets
// http.ResponseController reach the real writer (flush, deadlines).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush keeps streaming responses working through the wrapper.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
