package httpx_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/httpx"
)

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger() (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

func TestRequestID(t *testing.T) {
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name, in string
		keep     bool
	}{
		{"none", "", false},
		{"nginx", "3f9c1e0a6b7d4c2e8f1a0b9c8d7e6f5a", true},
		{"uuid", "0b7e6f2c-7c1d-4b8e-9a3f-2d6e5c4b3a21", true},
		{"too long", strings.Repeat("a", 65), false},
		{"log injection", "abc\nlevel=ERROR", false},
		{"spaces", "a b", false},
		{"quotes", `a"b`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen string
			h := httpx.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = httpx.RequestIDFrom(r.Context())
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.in != "" {
				req.Header.Set(httpx.RequestIDHeader, tt.in)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if tt.keep && seen != tt.in {
				t.Fatalf("id = %q, want the incoming %q", seen, tt.in)
			}
			if !tt.keep && !hexID.MatchString(seen) {
				t.Fatalf("id = %q, want 32 random hex characters", seen)
			}
			if got := rec.Header().Get(httpx.RequestIDHeader); got != seen {
				t.Fatalf("response header = %q, want %q", got, seen)
			}
		})
	}
}

func TestRecover(t *testing.T) {
	logger, logs := newLogger()
	t.Run("before the response", func(t *testing.T) {
		h := httpx.Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			panic("boom")
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
		if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "boom") {
			t.Fatalf("got %d %q, want a bare 500", rec.Code, rec.Body)
		}
		if l := logs.String(); !strings.Contains(l, "panic=boom") || !strings.Contains(l, "middleware_test.go") {
			t.Fatalf("log lacks the panic and its stack:\n%s", l)
		}
	})
	t.Run("after the response started", func(t *testing.T) {
		h := httpx.Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("partial"))
			panic("boom")
		}))
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want http.ErrAbortHandler", v)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	})
	t.Run("ErrAbortHandler passes", func(t *testing.T) {
		h := httpx.Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			panic(http.ErrAbortHandler)
		}))
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want http.ErrAbortHandler", v)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	})
	t.Run("over a real server", func(t *testing.T) {
		srv := httptest.NewServer(httpx.Recover(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			panic(errors.New("handler bug"))
		})))
		defer srv.Close()
		res, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusInternalServerError {
			t.Fatalf("status = %d, want 500", res.StatusCode)
		}
	})
}

func TestAccessLog(t *testing.T) {
	logger, logs := newLogger()
	resolver := httpx.NewIPResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	h := httpx.RequestID(resolver.Middleware(httpx.AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "0123456789")
	}))))
	req := httptest.NewRequest(http.MethodPost, "/login?rd=https%3A%2F%2Fsecret.example&code=topsecretcode", nil)
	req.RemoteAddr = "10.0.0.2:443"
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	req.Header.Set("Cookie", "gatehouse_session=cookie-secret")
	req.Header.Set("Authorization", "Bearer bearer-secret")
	req.Header.Set(httpx.RequestIDHeader, "req-123")
	h.ServeHTTP(httptest.NewRecorder(), req)

	line := logs.String()
	for _, want := range []string{"method=POST", "path=/login ", "status=418", "bytes=10", "request_id=req-123", "client_ip=198.51.100.1", "duration="} {
		if !strings.Contains(line, want) {
			t.Errorf("log lacks %q:\n%s", want, line)
		}
	}
	for _, secret := range []string{"topsecretcode", "secret.example", "cookie-secret", "bearer-secret"} {
		if strings.Contains(line, secret) {
			t.Errorf("log contains %q:\n%s", secret, line)
		}
	}
}

func TestAccessLogDefaultsAndLevels(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    []string
	}{
		{"empty reply", func(http.ResponseWriter, *http.Request) {}, []string{"level=INFO", "status=200", "bytes=0"}},
		{"server error", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }, []string{"level=ERROR", "status=502"}},
		{"copied body", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(w, strings.NewReader("abcdef"))
		}, []string{"status=200", "bytes=6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := newLogger()
			rec := httptest.NewRecorder()
			httpx.AccessLog(logger)(tt.handler).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			for _, w := range tt.want {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, logs)
				}
			}
		})
	}
}

// TestAccessLogEarlyHints runs over a real server: httptest.ResponseRecorder
// takes a 1xx status for the final one.
func TestAccessLogEarlyHints(t *testing.T) {
	logger, logs := newLogger()
	srv := httptest.NewServer(httpx.AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</static/app.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		_, _ = w.Write([]byte("ok"))
	})))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	srv.Close() // wait for the handler, and so the log line
	for _, w := range []string{"status=200", "bytes=2"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logs)
		}
	}
}

// TestFlusherKept checks that streaming still works through every wrapping
// middleware, by type assertion and through http.ResponseController.
func TestFlusherKept(t *testing.T) {
	logger, _ := newLogger()
	wrap := func(h http.Handler) http.Handler {
		return httpx.AccessLog(logger)(httpx.Recover(logger)(httpx.SecurityHeaders(h)))
	}
	t.Run("type assertion", func(t *testing.T) {
		rec := httptest.NewRecorder()
		wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f, ok := w.(http.Flusher)
			if !ok {
				t.Fatal("ResponseWriter is not an http.Flusher")
			}
			_, _ = w.Write([]byte("a"))
			f.Flush()
		})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if !rec.Flushed {
			t.Fatal("not flushed")
		}
	})
	t.Run("ResponseController over a real server", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("first\n"))
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Error(err)
			}
			<-release
			_, _ = w.Write([]byte("second\n"))
		})))
		defer srv.Close()
		res, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = res.Body.Close() }()
		buf := make([]byte, 6)
		if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "first\n" {
			t.Fatalf("read %q, %v before the handler finished; want the flushed part", buf, err)
		}
		close(release)
		rest, _ := io.ReadAll(res.Body)
		if string(rest) != "second\n" {
			t.Fatalf("rest = %q", rest)
		}
	})
}

func TestResponseControllerReachesConn(t *testing.T) {
	logger, _ := newLogger()
	srv := httptest.NewServer(httpx.AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// SetWriteDeadline is only reachable through Unwrap.
		if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
			t.Errorf("SetWriteDeadline through the wrapper: %v", err)
		}
	})))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
}
