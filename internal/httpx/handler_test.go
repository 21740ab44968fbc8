package httpx_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-sso/gatehouse/internal/httpx"
)

func TestHandle(t *testing.T) {
	secret := errors.New("pq: relation users does not exist")
	tests := []struct {
		name       string
		fn         httpx.HandlerFunc
		wantStatus int
		wantBody   string
		wantLog    string
		logsCause  bool
	}{
		{"no error", func(w http.ResponseWriter, r *http.Request) error {
			_, _ = w.Write([]byte("fine"))
			return nil
		}, 200, "fine", "", false},
		{"public error", func(w http.ResponseWriter, r *http.Request) error {
			return &httpx.PublicError{Status: http.StatusBadRequest, Message: "The sign-in link has expired.", Err: secret}
		}, 400, "The sign-in link has expired.\n", "level=INFO", true},
		{"wrapped public error", func(w http.ResponseWriter, r *http.Request) error {
			return fmt.Errorf("start: %w", &httpx.PublicError{Status: http.StatusForbidden, Message: "Not allowed."})
		}, 403, "Not allowed.\n", "level=INFO", false},
		{"public error without message", func(w http.ResponseWriter, r *http.Request) error {
			return &httpx.PublicError{Status: http.StatusNotFound}
		}, 404, "Not Found\n", "level=INFO", false},
		{"public error with a bad status", func(w http.ResponseWriter, r *http.Request) error {
			return &httpx.PublicError{Status: 200, Message: "Oops."}
		}, 500, "Oops.\n", "level=ERROR", false},
		{"internal error", func(w http.ResponseWriter, r *http.Request) error {
			return fmt.Errorf("load user: %w", secret)
		}, 500, "Internal Server Error\n", "level=ERROR", true},
		{"error after writing", func(w http.ResponseWriter, r *http.Request) error {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte("partial"))
			return secret
		}, 202, "partial", "level=ERROR", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := newLogger()
			rec := httptest.NewRecorder()
			httpx.Handle(tt.fn, httpx.PlainErrors(logger)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/p", nil))
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
			}
			if strings.Contains(rec.Body.String(), "pq:") {
				t.Fatal("internal cause leaked into the response")
			}
			if tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Fatalf("log lacks %q:\n%s", tt.wantLog, logs)
			}
			if tt.logsCause && !strings.Contains(logs.String(), "relation users") {
				t.Fatalf("internal cause not logged:\n%s", logs)
			}
		})
	}
}

func TestHandleCustomWriter(t *testing.T) {
	var got error
	h := httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		return errors.New("x")
	}, func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		w.WriteHeader(http.StatusTeapot)
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if got == nil || rec.Code != http.StatusTeapot {
		t.Fatalf("onError not used: %v, %d", got, rec.Code)
	}
}

func TestPublicErrorUnwrap(t *testing.T) {
	cause := errors.New("cause")
	err := fmt.Errorf("wrapped: %w", &httpx.PublicError{Status: 409, Message: "Taken.", Err: cause})
	if !errors.Is(err, cause) {
		t.Fatal("errors.Is does not reach the cause")
	}
	if s := err.Error(); !strings.Contains(s, "409 Taken.: cause") {
		t.Fatalf("Error() = %q", s)
	}
}
