package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// HandlerFunc is a handler that returns its error instead of writing it;
// Handle adapts it to http.Handler and one error writer decides what the
// user sees.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// PublicError separates what a user may see from what only the logs see.
// Message is shown with Status; Err, the internal cause, is only logged.
// Handlers return it (possibly wrapped) for expected failures.
type PublicError struct {
	Status  int
	Message string
	Err     error
}

func (e *PublicError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%d %s", e.status(), e.Message)
	}
	return fmt.Sprintf("%d %s: %v", e.status(), e.Message, e.Err)
}

func (e *PublicError) Unwrap() error { return e.Err }

func (e *PublicError) status() int {
	if e.Status < 400 || e.Status > 599 {
		return http.StatusInternalServerError
	}
	return e.Status
}

// Handle adapts fn to http.Handler: when fn returns an error, onError
// (PlainErrors(slog.Default()) when nil) writes the response. If fn had
// already started the response, onError still runs (to log) but what it
// writes is dropped.
func Handle(fn HandlerFunc, onError func(w http.ResponseWriter, r *http.Request, err error)) http.Handler {
	if onError == nil {
		onError = PlainErrors(slog.Default())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		err := fn(sw, r)
		if err == nil {
			return
		}
		if sw.wroteHeader {
			onError(discardWriter{h: http.Header{}}, r, err)
			return
		}
		onError(w, r, err)
	})
}

// PlainErrors returns an error writer for Handle that answers in plain
// text: a PublicError's status and message, or a bare 500 for any other
// error. The full error goes to logger (Error for 5xx, Info otherwise;
// Debug when the client went away).
func PlainErrors(logger *slog.Logger) func(w http.ResponseWriter, r *http.Request, err error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		status, msg := http.StatusInternalServerError, ""
		var pe *PublicError
		if errors.As(err, &pe) {
			status, msg = pe.status(), pe.Message
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		level := slog.LevelInfo
		switch {
		case errors.Is(err, context.Canceled):
			level = slog.LevelDebug
		case status >= 500:
			level = slog.LevelError
		}
		logger.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path,
			"status", status, "request_id", RequestIDFrom(r.Context()), "err", err)
		http.Error(w, msg, status)
	}
}

// discardWriter swallows an error response that can no longer be sent.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header       { return d.h }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}
