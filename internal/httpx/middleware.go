package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"
)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-ID"

type requestIDKey struct{}

// RequestID gives each request an id, stored in the context (RequestIDFrom)
// and echoed in the X-Request-ID response header. An incoming X-Request-ID
// (nginx $request_id, a UUID from Traefik or Envoy) is kept when it is 1 to
// 64 characters of [A-Za-z0-9._:-], so the ingress's logs and ours
// correlate; anything else is replaced by 16 random bytes in hex. The id
// serves correlation only and is never an authorization input, so a
// well-formed id chosen by a client does no harm.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			b := make([]byte, 16)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
			r.Header.Set(RequestIDHeader, id)
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// RequestIDFrom returns the request id RequestID stored in ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Recover turns a panic in next into a logged error (with stack) and a 500.
// If the response had already started, the connection is aborted instead,
// so the client does not take a truncated body for a whole one.
// http.ErrAbortHandler passes through untouched.
func Recover(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				logger.ErrorContext(r.Context(), "panic serving request",
					"method", r.Method, "path", r.URL.Path, "request_id", RequestIDFrom(r.Context()),
					"panic", v, "stack", string(debug.Stack()))
				if sw.wroteHeader {
					panic(http.ErrAbortHandler)
				}
				http.Error(sw, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// AccessLog logs one line per request: method, path (without the query
// string), status, duration, response bytes, request id and client IP.
// Header values, cookies and query parameters are never logged. Server
// errors log at Error level, the rest at Info.
func AccessLog(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				status := sw.status
				if !sw.wroteHeader {
					status = http.StatusOK // what net/http sends for an empty reply
				}
				level := slog.LevelInfo
				if status >= 500 {
					level = slog.LevelError
				}
				attrs := []slog.Attr{
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Int("status", status),
					slog.Duration("duration", time.Since(start)),
					slog.Int64("bytes", sw.bytes),
					slog.String("request_id", RequestIDFrom(r.Context())),
				}
				if ip := ClientIPFrom(r.Context()); ip.IsValid() {
					attrs = append(attrs, slog.String("client_ip", ip.String()))
				}
				logger.LogAttrs(r.Context(), level, "http request", attrs...)
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// statusWriter records the status and size of a response, and runs
// beforeHeader once just before the header is sent. It keeps
// http.Flusher and io.ReaderFrom working, and Unwrap lets
// http.ResponseController reach the rest (hijacking, deadlines).
type statusWriter struct {
	http.ResponseWriter
	beforeHeader func(http.Header)
	status       int
	bytes        int64
	wroteHeader  bool
}

func (w *statusWriter) WriteHeader(code int) {
	// 1xx responses (103 Early Hints) precede the real one, except 101.
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if !w.wroteHeader {
		w.wroteHeader, w.status = true, code
		if w.beforeHeader != nil {
			w.beforeHeader(w.Header())
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the sendfile path of http.ServeContent.
func (w *statusWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, src)
	}
	w.bytes += n
	return n, err
}

// writerOnly hides every method but Write, so io.Copy does not loop back
// into ReadFrom.
type writerOnly struct{ io.Writer }

func (w *statusWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var (
	_ http.Flusher  = (*statusWriter)(nil)
	_ io.ReaderFrom = (*statusWriter)(nil)
)
