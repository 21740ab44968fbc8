package oidcop

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// withDeviceClientAuth authenticates confidential clients on device-code
// token requests before the library sees them. The library reads (and we
// spend) an approved device code before it checks the client, and knows
// only HTTP Basic: without this, anyone holding a device code could burn
// it for a confidential client, and client_secret_post clients would be
// refused. Accepted credentials are handed on as Basic auth. The device
// authorization endpoint stays lenient: golang.org/x/oauth2 sends no
// secret there, and a pending code is worth nothing without one.
func (p *Provider) withDeviceClientAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			writeOAuthError(w, http.StatusBadRequest, oidc.ErrInvalidRequest().WithDescription("malformed form"))
			return
		}
		if r.PostForm.Get("grant_type") != string(oidc.GrantTypeDeviceCode) {
			next.ServeHTTP(w, r)
			return
		}
		id, secret, basic := r.BasicAuth()
		if basic {
			// RFC 6749 §2.3.1: Basic credentials are form-urlencoded.
			if u, err := url.QueryUnescape(id); err == nil {
				id = u
			}
			if s, err := url.QueryUnescape(secret); err == nil {
				secret = s
			}
		} else {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		c, err := p.st.client(r.Context(), id)
		if err != nil {
			writeOAuthError(w, http.StatusUnauthorized, oidc.ErrInvalidClient().WithDescription("unknown client"))
			return
		}
		if c.m.Public {
			next.ServeHTTP(w, r)
			return
		}
		if !p.o.SecretHasher.Verify(secret, c.m.SecretHash) {
			writeOAuthError(w, http.StatusUnauthorized, oidc.ErrInvalidClient().WithDescription("client authentication failed"))
			return
		}
		if !basic {
			r.PostForm.Del("client_secret")
			r.Form.Del("client_secret")
			r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		}
		next.ServeHTTP(w, r)
	})
}

func writeOAuthError(w http.ResponseWriter, status int, e *oidc.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": string(e.ErrorType), "error_description": e.Description})
}
