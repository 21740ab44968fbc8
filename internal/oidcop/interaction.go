package oidcop

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

type (
	claimsKey  struct{}
	requestKey struct{}
)

// withClaimsParam reads the OIDC "claims" request parameter, which the
// library ignores, so that a client asking for groups there (ArgoCD's
// requestedIDTokenClaims) gets them. Anything else in it is tolerated and
// ignored, as the spec allows for voluntary claims.
func (p *Provider) withClaimsParam(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil {
			if raw := r.Form.Get("claims"); raw != "" {
				var req struct {
					IDToken  map[string]json.RawMessage `json:"id_token"`
					Userinfo map[string]json.RawMessage `json:"userinfo"`
				}
				if json.Unmarshal([]byte(raw), &req) == nil {
					_, a := req.IDToken[ScopeGroups]
					_, b := req.Userinfo[ScopeGroups]
					if a || b {
						r = r.WithContext(context.WithValue(r.Context(), claimsKey{}, true))
					}
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func claimsAskGroups(ctx context.Context) bool {
	v, _ := ctx.Value(claimsKey{}).(bool)
	return v
}

// withRequest hands the request to storage methods that need the browser's
// session (RP-initiated logout).
func (p *Provider) withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, r)))
	})
}

// resume is where /authorize sends the browser (the clients' LoginURL). It
// hands over to the sign-in page when there is no session, then checks the
// user may use the app, asks for consent if the client wants it, and
// answers the client with a code.
func (p *Provider) resume(w http.ResponseWriter, r *http.Request) {
	ctx := p.issuerContext(r.Context())
	r = r.WithContext(ctx)
	id := r.URL.Query().Get("id")
	ar, err := p.st.authRequest(ctx, id)
	if err != nil {
		p.expired(w, r, err)
		return
	}
	c, err := p.st.client(ctx, ar.ClientID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	here := p.paths.resume + "?id=" + url.QueryEscape(id)
	sess, ok := p.o.CurrentSession(r)
	if !ok {
		if slices.Contains(ar.Prompt, oidc.PromptNone) {
			op.AuthRequestError(w, r, &authRequest{m: ar}, oidc.ErrLoginRequired(), p.op)
			return
		}
		http.Redirect(w, r, "/login?rd="+url.QueryEscape(here), http.StatusFound)
		return
	}
	if needsFreshLogin(ar, sess, p.o.Now()) {
		if slices.Contains(ar.Prompt, oidc.PromptNone) {
			op.AuthRequestError(w, r, &authRequest{m: ar}, oidc.ErrLoginRequired(), p.op)
			return
		}
		p.o.Pages.RenderReauth(w, r, c.name(), here)
		return
	}
	if _, _, err := p.st.userAllowed(ctx, c, sess.UserID); err != nil {
		if errors.Is(err, errNoAccess) && slices.Contains(ar.Prompt, oidc.PromptNone) {
			// prompt=none forbids any page: the client learns it in the
			// redirect (OIDC Core 3.1.2.6).
			op.AuthRequestError(w, r, &authRequest{m: ar}, oidc.ErrAccessDenied().WithDescription("the user may not use this application"), p.op)
			return
		}
		p.denied(w, r, c, err)
		return
	}
	if c.m.Consent == model.ConsentExplicit {
		granted, err := p.consented(ctx, sess.UserID, c.m.ClientID, ar.Scopes)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		if !granted {
			if slices.Contains(ar.Prompt, oidc.PromptNone) {
				op.AuthRequestError(w, r, &authRequest{m: ar}, oidc.ErrInteractionRequired().WithDescription("consent required"), p.op)
				return
			}
			p.o.Pages.RenderConsent(w, r, c.name(), ar.Scopes, p.paths.consent, id)
			return
		}
	}
	p.complete(w, r, ar, sess)
}

// needsFreshLogin applies prompt=login and max_age: the session must have
// signed in after the request was made, or within max_age.
func needsFreshLogin(ar model.AuthRequest, sess model.Session, now time.Time) bool {
	if slices.Contains(ar.Prompt, oidc.PromptLogin) && sess.CreatedAt.Before(ar.CreatedAt) {
		return true
	}
	return ar.MaxAge >= 0 && now.Sub(sess.CreatedAt) > time.Duration(ar.MaxAge)*time.Second && sess.CreatedAt.Before(ar.CreatedAt)
}

// complete marks the request authenticated and answers the client with a
// code (op.AuthResponse is what the library's own callback runs; calling it
// here saves the browser a redirect).
func (p *Provider) complete(w http.ResponseWriter, r *http.Request, ar model.AuthRequest, sess model.Session) {
	done, err := p.o.Store.UpdateAuthRequest(r.Context(), ar.ID, func(m *model.AuthRequest) error {
		if m.CodeHash != "" {
			return errAlreadyAnswered
		}
		m.UserID, m.SessionID, m.AuthTime, m.Done = sess.UserID, sess.ID, sess.CreatedAt, true
		return nil
	})
	if err != nil {
		p.expired(w, r, err)
		return
	}
	op.AuthResponse(&authRequest{m: done}, p.op, w, r)
}

var errAlreadyAnswered = errors.New("this sign-in request was already answered")

// consented reports whether the user's remembered consent covers scopes.
func (p *Provider) consented(ctx context.Context, userID, clientID string, scopes []string) (bool, error) {
	c, err := p.o.Store.GetConsent(ctx, userID, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return false, nil
		}
	}
	return true, nil
}

// consent receives the consent form.
func (p *Provider) consent(w http.ResponseWriter, r *http.Request) {
	ctx := p.issuerContext(r.Context())
	r = r.WithContext(ctx)
	id := r.PostFormValue("id")
	ar, err := p.st.authRequest(ctx, id)
	if err != nil {
		p.expired(w, r, err)
		return
	}
	sess, ok := p.o.CurrentSession(r)
	if !ok {
		http.Redirect(w, r, "/login?rd="+url.QueryEscape(p.paths.resume+"?id="+url.QueryEscape(id)), http.StatusSeeOther)
		return
	}
	c, err := p.st.client(ctx, ar.ClientID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if _, _, err := p.st.userAllowed(ctx, c, sess.UserID); err != nil {
		if errors.Is(err, errNoAccess) && slices.Contains(ar.Prompt, oidc.PromptNone) {
			// prompt=none forbids any page: the client learns it in the
			// redirect (OIDC Core 3.1.2.6).
			op.AuthRequestError(w, r, &authRequest{m: ar}, oidc.ErrAccessDenied().WithDescription("the user may not use this application"), p.op)
			return
		}
		p.denied(w, r, c, err)
		return
	}
	if r.PostFormValue("decision") != "allow" {
		_ = p.o.Store.DeleteAuthRequest(ctx, ar.ID)
		op.AuthRequestError(w, r, &authRequest{m: ar}, oidc.ErrAccessDenied().WithDescription("the user declined"), p.op)
		return
	}
	if err := p.o.Store.PutConsent(ctx, model.Consent{UserID: sess.UserID, ClientID: c.m.ClientID, Scopes: ar.Scopes, GrantedAt: p.o.Now().UTC()}); err != nil {
		p.fail(w, r, err)
		return
	}
	p.complete(w, r, ar, sess)
}

// deviceForm shows the device verification page (RFC 8628 §3.3).
func (p *Provider) deviceForm(w http.ResponseWriter, r *http.Request) {
	code := normalizeUserCode(r.URL.Query().Get("user_code"))
	if _, ok := p.o.CurrentSession(r); !ok {
		here := p.paths.deviceForm
		if code != "" {
			here += "?user_code=" + url.QueryEscape(code)
		}
		http.Redirect(w, r, "/login?rd="+url.QueryEscape(here), http.StatusFound)
		return
	}
	p.o.Pages.RenderDevice(w, r, code, p.paths.deviceForm, "")
}

// deviceSubmit approves or denies a device for the signed-in user.
func (p *Provider) deviceSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	code := normalizeUserCode(r.PostFormValue("user_code"))
	sess, ok := p.o.CurrentSession(r)
	if !ok {
		http.Redirect(w, r, "/login?rd="+url.QueryEscape(p.paths.deviceForm), http.StatusSeeOther)
		return
	}
	d, err := p.o.Store.GetDeviceAuthByUserCode(ctx, code)
	if err != nil || d.Done || !p.o.Now().Before(d.ExpiresAt) {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			p.fail(w, r, err)
			return
		}
		p.o.Pages.RenderDevice(w, r, code, p.paths.deviceForm, "That code is unknown or has expired. Check the code on your device.")
		return
	}
	c, err := p.st.client(ctx, d.ClientID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	_, _, accessErr := p.st.userAllowed(ctx, c, sess.UserID)
	deny := accessErr != nil || r.PostFormValue("decision") != "allow"
	if _, err := p.o.Store.UpdateDeviceAuth(ctx, d.ID, func(x *model.DeviceAuth) error {
		if x.Done {
			return errAlreadyAnswered
		}
		x.Done, x.Denied, x.UserID, x.AuthTime = true, deny, sess.UserID, sess.CreatedAt
		return nil
	}); err != nil {
		p.fail(w, r, err)
		return
	}
	switch {
	case accessErr != nil:
		p.denied(w, r, c, accessErr)
	case deny:
		p.o.Pages.RenderMessage(w, r, http.StatusOK, "Device not connected", "You declined. The device will not be signed in.")
	default:
		p.o.Pages.RenderMessage(w, r, http.StatusOK, "Device connected", c.name()+" on your device is now signed in. You can close this page.")
	}
}

// normalizeUserCode accepts codes typed in lower case, with spaces or
// without the dash.
func normalizeUserCode(s string) string {
	s = strings.ToUpper(strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, s))
	if len(s) == 8 {
		return s[:4] + "-" + s[4:]
	}
	return s
}

func (p *Provider) denied(w http.ResponseWriter, r *http.Request, c *client, err error) {
	if errors.Is(err, errNoAccess) || errors.Is(err, store.ErrNotFound) {
		p.o.Logger.Info("OIDC sign-in refused: no access", "client", c.m.ClientID, "path", r.URL.Path)
		p.o.Pages.RenderMessage(w, r, http.StatusForbidden, "No access to "+c.name(),
			"You are signed in, but your account is not allowed to use "+c.name()+". Ask an administrator to give you access.")
		return
	}
	p.fail(w, r, err)
}

func (p *Provider) expired(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, errAlreadyAnswered) {
		p.o.Pages.RenderMessage(w, r, http.StatusBadRequest, "Sign-in link expired",
			"This sign-in request has expired or was already used. Go back to the app and sign in again.")
		return
	}
	p.fail(w, r, err)
}

func (p *Provider) fail(w http.ResponseWriter, r *http.Request, err error) {
	p.o.Logger.Error("OIDC interaction failed", "path", r.URL.Path, "err", err)
	p.o.Pages.RenderMessage(w, r, http.StatusInternalServerError, "Something went wrong", "The request could not be completed. Try again in a moment.")
}
