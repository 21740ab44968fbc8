// Package web serves Gatehouse's own browser pages: sign-in, sign-out and
// the signed-in landing page. Pages are server-rendered from embedded
// templates with no external assets.
package web

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/authn"
	"github.com/gatehouse-sso/gatehouse/internal/httpx"
	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/redirect"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// PasswordAuthenticator checks a username and password.
type PasswordAuthenticator interface {
	PasswordLogin(ctx context.Context, username, password, clientIP string) (model.User, error)
}

// Sessions creates, finds and ends browser sessions.
type Sessions interface {
	Create(ctx context.Context, userID string, level model.AuthLevel, clientIP, userAgent string) (string, model.Session, error)
	Lookup(ctx context.Context, token string) (model.Session, error)
	Revoke(ctx context.Context, token string) error
}

// Directory reads users and their groups.
type Directory interface {
	GetUser(ctx context.Context, id string) (model.User, error)
	GroupNames(ctx context.Context, userID string) ([]string, error)
}

// Recorder keeps the audit record.
type Recorder interface {
	Record(ctx context.Context, e model.AuditEvent)
}

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, model.AuditEvent) {}

// Options wires the pages.
type Options struct {
	Auth      PasswordAuthenticator
	Sessions  Sessions
	Directory Directory
	Redirects *redirect.Policy
	CSRF      *httpx.CSRF
	IPs       *httpx.IPResolver
	// CookieName is the IdP session cookie: host-only on the auth host.
	CookieName string
	Secure     bool
	Lifetime   time.Duration
	Logger     *slog.Logger
	// Audit records sign-ins, failures, lockouts and sign-outs.
	Audit Recorder
	// Recovery redeems one-time emergency links; nil disables /recover.
	Recovery RecoveryRedeemer
	// Unlock clears a user's sign-in lockout after a recovery sign-in.
	Unlock func(ctx context.Context, username string) error
	// OnSignOut runs after the session is revoked (for example to end the
	// gate cookie's access); may be nil.
	OnSignOut func(w http.ResponseWriter, r *http.Request)
}

// Handler serves the pages.
type Handler struct {
	o     Options
	pages map[string]*template.Template
}

// New parses the templates and returns the handler.
func New(o Options) (*Handler, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Audit == nil {
		o.Audit = nopRecorder{}
	}
	h := &Handler{o: o, pages: map[string]*template.Template{}}
	for _, name := range []string{"login", "home", "logout", "message", "recover"} {
		t, err := template.ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		h.pages[name] = t
	}
	return h, nil
}

// Register mounts the pages on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	mux.Handle("GET /login", h.handle(h.loginPage))
	mux.Handle("POST /login", h.handle(h.loginSubmit))
	mux.Handle("GET /logout", h.handle(h.logoutPage))
	mux.Handle("POST /logout", h.handle(h.logoutSubmit))
	mux.Handle("GET /{$}", h.handle(h.home))
	if h.o.Recovery != nil {
		mux.Handle("GET /recover", h.handle(h.recoverPage))
		mux.Handle("POST /recover", h.handle(h.recoverSubmit))
	}
}

func (h *Handler) handle(fn httpx.HandlerFunc) http.Handler {
	return httpx.Handle(fn, h.renderError)
}

type page struct {
	Title    string
	CSRF     string
	RD       string
	Error    string
	Username string
	User     model.User
	Groups   []string
	Message  string
	Link     string
	LinkText string
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := h.pages[name].ExecuteTemplate(w, "layout", p); err != nil {
		h.o.Logger.Error("rendering page", "page", name, "err", err)
	}
}

func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, err error) {
	var pe *httpx.PublicError
	if errors.As(err, &pe) {
		if pe.Err != nil {
			h.o.Logger.Warn("request refused", "path", r.URL.Path, "status", pe.Status, "err", pe.Err)
		}
		h.render(w, pe.Status, "message", page{Title: http.StatusText(pe.Status), Message: pe.Message, Link: "/", LinkText: "Back"})
		return
	}
	h.o.Logger.Error("request failed", "path", r.URL.Path, "err", err)
	h.render(w, http.StatusInternalServerError, "message", page{Title: "Something went wrong", Message: "The request could not be completed. Try again in a moment."})
}

// CurrentSession returns the signed-in session of the request, if any.
func (h *Handler) CurrentSession(r *http.Request) (model.Session, bool) {
	c, err := r.Cookie(h.o.CookieName)
	if err != nil {
		return model.Session{}, false
	}
	s, err := h.o.Sessions.Lookup(r.Context(), c.Value)
	return s, err == nil
}

// returnTo validates rd; an invalid or empty one falls back to the home page.
func (h *Handler) returnTo(rd string) string {
	if rd == "" {
		return "/"
	}
	if u, ok := h.o.Redirects.Check(rd); ok {
		return u
	}
	return "/"
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) error {
	rd := r.URL.Query().Get("rd")
	if rd != "" {
		if _, ok := h.o.Redirects.Check(rd); !ok {
			return &httpx.PublicError{Status: http.StatusBadRequest, Message: "The return address is not one Gatehouse may send you to."}
		}
	}
	if _, ok := h.CurrentSession(r); ok {
		http.Redirect(w, r, h.returnTo(rd), http.StatusFound)
		return nil
	}
	h.render(w, http.StatusOK, "login", page{Title: "Sign in", CSRF: h.o.CSRF.Token(w, r), RD: rd})
	return nil
}

// genericLoginError never tells whether the account exists.
const genericLoginError = "Incorrect username or password."

func (h *Handler) loginSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return &httpx.PublicError{Status: http.StatusBadRequest, Message: "The form could not be read.", Err: err}
	}
	if !h.o.CSRF.Verify(r) {
		return &httpx.PublicError{Status: http.StatusForbidden, Message: "The form expired. Go back, reload the page and try again."}
	}
	username, password, rd := r.PostFormValue("username"), r.PostFormValue("password"), r.PostFormValue("rd")
	ip := h.o.IPs.ClientIP(r).String()
	again := page{Title: "Sign in", CSRF: h.o.CSRF.Token(w, r), RD: rd, Username: username}

	u, err := h.o.Auth.PasswordLogin(r.Context(), username, password, ip)
	switch {
	case errors.Is(err, authn.ErrInvalidCredentials):
		h.o.Audit.Record(r.Context(), model.AuditEvent{Action: "login.failure", Actor: username, ClientIP: ip, Outcome: "failure"})
		again.Error = genericLoginError
		h.render(w, http.StatusUnauthorized, "login", again)
		return nil
	case errors.Is(err, authn.ErrLockedOut):
		h.o.Audit.Record(r.Context(), model.AuditEvent{Action: "login.locked_out", Actor: username, ClientIP: ip, Outcome: "failure"})
		again.Error = "Too many failed sign-in attempts. Wait a few minutes and try again."
		h.render(w, http.StatusTooManyRequests, "login", again)
		return nil
	case err != nil:
		return err
	}
	if err := h.startSession(w, r, u, model.LevelPassword, ip, "login.success"); err != nil {
		return err
	}
	http.Redirect(w, r, h.returnTo(rd), http.StatusFound)
	return nil
}

// startSession creates the IdP session, sets its cookie and records it.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, u model.User, level model.AuthLevel, ip, action string) error {
	token, _, err := h.o.Sessions.Create(r.Context(), u.ID, level, ip, r.UserAgent())
	if err != nil {
		return err
	}
	h.o.Audit.Record(r.Context(), model.AuditEvent{Action: action, Actor: u.Username, ActorID: u.ID, ClientIP: ip})
	http.SetCookie(w, h.sessionCookie(token, int(h.o.Lifetime.Seconds())))
	return nil
}

func (h *Handler) sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     h.o.CookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   h.o.Secure,
		SameSite: http.SameSiteLaxMode,
	}
}

func (h *Handler) logoutPage(w http.ResponseWriter, r *http.Request) error {
	rd := r.URL.Query().Get("rd")
	if _, ok := h.CurrentSession(r); !ok {
		http.Redirect(w, r, loginURL(h.returnTo(rd)), http.StatusFound)
		return nil
	}
	h.render(w, http.StatusOK, "logout", page{Title: "Sign out", CSRF: h.o.CSRF.Token(w, r), RD: rd})
	return nil
}

func (h *Handler) logoutSubmit(w http.ResponseWriter, r *http.Request) error {
	if !h.o.CSRF.Verify(r) {
		return &httpx.PublicError{Status: http.StatusForbidden, Message: "The form expired. Go back, reload the page and try again."}
	}
	if c, err := r.Cookie(h.o.CookieName); err == nil {
		if s, err := h.o.Sessions.Lookup(r.Context(), c.Value); err == nil {
			h.o.Audit.Record(r.Context(), model.AuditEvent{Action: "logout", ActorID: s.UserID, Actor: h.username(r.Context(), s.UserID), ClientIP: h.o.IPs.ClientIP(r).String()})
		}
		if err := h.o.Sessions.Revoke(r.Context(), c.Value); err != nil {
			return err
		}
	}
	http.SetCookie(w, h.sessionCookie("", -1))
	if h.o.OnSignOut != nil {
		h.o.OnSignOut(w, r)
	}
	http.Redirect(w, r, loginURL(h.returnTo(r.PostFormValue("rd"))), http.StatusFound)
	return nil
}

func loginURL(rd string) string {
	if rd == "" || rd == "/" {
		return "/login"
	}
	return "/login?rd=" + url.QueryEscape(rd)
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) error {
	s, ok := h.CurrentSession(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusFound)
		return nil
	}
	u, err := h.o.Directory.GetUser(r.Context(), s.UserID)
	if err != nil {
		return err
	}
	groups, err := h.o.Directory.GroupNames(r.Context(), u.ID)
	if err != nil {
		return err
	}
	h.render(w, http.StatusOK, "home", page{Title: "Signed in", CSRF: h.o.CSRF.Token(w, r), User: u, Groups: groups})
	return nil
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// username names a user for the audit record; the id stands in when the
// user cannot be read.
func (h *Handler) username(ctx context.Context, id string) string {
	if u, err := h.o.Directory.GetUser(ctx, id); err == nil {
		return u.Username
	}
	return id
}
