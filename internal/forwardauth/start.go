package forwardauth

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// checkRD validates a return address for /start: an absolute http(s) URL
// on the cookie domain or a declared app host (redirect.Policy), never a
// path on Gatehouse itself nor anything else. It returns the URL to send
// the browser to and its host.
func (h *Handler) checkRD(rd string) (string, *url.URL, bool) {
	if !hasPrefixFold(rd, "https://") && !hasPrefixFold(rd, "http://") {
		return "", nil, false
	}
	checked, ok := h.o.Redirects.Check(rd)
	if !ok {
		return "", nil, false
	}
	u, err := url.Parse(checked)
	if err != nil || u.Host == "" {
		return "", nil, false
	}
	return checked, u, true
}

// underCookieDomain reports whether a host receives the domain gate cookie.
func (h *Handler) underCookieDomain(host string) bool {
	return h.cookieSfx != "" && (host == h.o.CookieDomain || strings.HasSuffix(host, h.cookieSfx))
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}

// start is where a proxy sends a browser that must sign in:
// /gate/start?rd=URL (alias /outpost.goauthentik.io/start). It signs the
// user in if needed (through the login page, which returns here), mints
// the gate, and sends the browser back to rd in one redirect.
func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	rd, u, ok := h.checkRD(r.URL.Query().Get("rd"))
	if !ok {
		refuse(w, http.StatusBadRequest, "The return address is not one Gatehouse may send you to.")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s, ok := h.idpSession(r)
	if !ok {
		// The login page accepts a path on our own host as its rd.
		back := StartPath + "?rd=" + url.QueryEscape(rd)
		http.Redirect(w, r, h.loginURL+"?rd="+url.QueryEscape(back), http.StatusFound)
		return
	}
	host := strings.ToLower(u.Hostname())
	ctx := r.Context()
	if h.underCookieDomain(host) {
		if v := cookieValue(r.Header, h.gateName); v != "" {
			if g, err := h.gates.cookie(ctx, v); err == nil && g.SessionID == s.ID && g.Host == "" {
				http.Redirect(w, r, rd, http.StatusFound) // already holds a live gate
				return
			}
		}
		v, err := h.gates.mint(ctx, model.GateCookie, s, "", s.ExpiresAt, "")
		if err != nil {
			h.fail(w, err)
			return
		}
		http.SetCookie(w, h.gateCookie(v, h.o.CookieDomain, s.ExpiresAt))
		http.Redirect(w, r, rd, http.StatusFound)
		return
	}
	// Per-app mode: the browser cannot carry our cookie to this host, so
	// it carries a one-time code to a callback on the app's own host. The
	// code is bound to the nonce the app host's check gave this browser;
	// without one, the app is opened again to get one.
	nonce := r.URL.Query().Get("n")
	if !validNonce(nonce) {
		http.Redirect(w, r, rd, http.StatusFound)
		return
	}
	code, err := h.gates.mint(ctx, model.GateCode, s, host, h.o.Now().Add(h.o.CodeTTL), nonce)
	if err != nil {
		h.fail(w, err)
		return
	}
	cb := url.URL{Scheme: u.Scheme, Host: u.Host, Path: outpostCallback,
		RawQuery: url.Values{"code": {code}, "rd": {rd}}.Encode()}
	http.Redirect(w, r, cb.String(), http.StatusFound)
}

// callback runs on an app's own host (the ingress routes
// /outpost.goauthentik.io/ there to Gatehouse): it exchanges the one-time
// code for a host-only gate cookie and returns to rd on the same host.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	q := r.URL.Query()
	rd, u, ok := h.checkRD(q.Get("rd"))
	if !ok {
		refuse(w, http.StatusBadRequest, "The return address is not one Gatehouse may send you to.")
		return
	}
	var here target
	if err := parseHostPort(r.Host, &here); err != nil {
		refuse(w, http.StatusBadRequest, "Bad host.")
		return
	}
	ctx := r.Context()
	nonce := cookieValue(r.Header, h.nonceName)
	http.SetCookie(w, &http.Cookie{Name: h.nonceName, Path: outpost + "/", MaxAge: -1, HttpOnly: true, Secure: h.o.Secure, SameSite: http.SameSiteLaxMode})
	g, err := h.gates.take(ctx, q.Get("code"), nonce)
	if err != nil && !errors.Is(err, errNoGate) {
		h.fail(w, err)
		return
	}
	host := strings.ToLower(u.Hostname())
	// The code is bound to the host it was issued for, and the cookie is
	// set on, and only returns to, that same host.
	if err != nil || g.Host != here.host || host != here.host {
		refuse(w, http.StatusBadRequest, "This sign-in link is invalid or has expired. Open the application again.")
		return
	}
	s, err := h.o.Sessions.LookupID(ctx, g.SessionID)
	if err != nil {
		refuse(w, http.StatusBadRequest, "Your session has ended. Open the application again.")
		return
	}
	v, err := h.gates.mint(ctx, model.GateCookie, s, host, s.ExpiresAt, "")
	if err != nil {
		h.fail(w, err)
		return
	}
	http.SetCookie(w, h.gateCookie(v, "", s.ExpiresAt))
	http.Redirect(w, r, rd, http.StatusFound)
}

// signOut sends the browser to Gatehouse's sign-out confirmation, which
// ends the IdP session — and with it every gate cookie bound to it, on
// every host — after a click on a CSRF-protected form. Signing out on a
// plain GET would let any page that links here sign the user out.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		refuse(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	dest := h.logoutURL
	if rd, _, ok := h.checkRD(r.URL.Query().Get("rd")); ok {
		dest += "?rd=" + url.QueryEscape(StartPath+"?rd="+url.QueryEscape(rd))
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// idpSession returns the IdP session of the browser (auth host only).
func (h *Handler) idpSession(r *http.Request) (model.Session, bool) {
	if h.o.SessionCookieName == "" {
		return model.Session{}, false
	}
	v := cookieValue(r.Header, h.o.SessionCookieName)
	if v == "" {
		return model.Session{}, false
	}
	s, err := h.o.Sessions.Lookup(r.Context(), v)
	return s, err == nil
}

// gateCookie builds the gate cookie: on domain ("" = host-only), HttpOnly,
// SameSite=Lax (sent on top-level navigation from the sign-in redirect),
// Secure on https. A zero expiry deletes it.
func (h *Handler) gateCookie(v, domain string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: h.gateName, Value: v, Domain: domain, Path: "/", HttpOnly: true, Secure: h.o.Secure, SameSite: http.SameSiteLaxMode}
	if expires.IsZero() {
		c.MaxAge = -1
	} else {
		c.MaxAge = max(1, int(expires.Sub(h.o.Now()).Seconds()))
	}
	return c
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrNotFound) {
		refuse(w, http.StatusBadRequest, "Your session has ended. Open the application again.")
		return
	}
	h.o.Logger.Error("forward auth", "err", err)
	refuse(w, http.StatusInternalServerError, "Something went wrong. Try again in a moment.")
}
