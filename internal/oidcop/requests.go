package oidcop

import (
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// authRequest adapts model.AuthRequest to op.AuthRequest.
type authRequest struct{ m model.AuthRequest }

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) GetID() string          { return a.m.ID }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAMR() []string       { return amr(a.m.UserID) }
func (a *authRequest) GetAudience() []string  { return []string{a.m.ClientID} }
func (a *authRequest) GetAuthTime() time.Time { return a.m.AuthTime }
func (a *authRequest) GetClientID() string    { return a.m.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.m.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.m.CodeChallenge, Method: oidc.CodeChallengeMethod(a.m.CodeChallengeMethod)}
}
func (a *authRequest) GetNonce() string                   { return a.m.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.m.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseType(a.m.ResponseType) }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(a.m.ResponseMode) }
func (a *authRequest) GetScopes() []string                { return a.m.Scopes }
func (a *authRequest) GetState() string                   { return a.m.State }
func (a *authRequest) GetSubject() string                 { return a.m.UserID }
func (a *authRequest) Done() bool                         { return a.m.Done }

// refreshRequest is the grant behind a refresh token, as the refresh
// exchange sees it.
type refreshRequest struct {
	t      model.OIDCToken
	scopes []string
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return r.t.AMR }
func (r *refreshRequest) GetAudience() []string       { return r.t.Audience }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.t.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.t.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.t.Subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// clientCredentialsRequest is a service account's token request.
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

func (c *clientCredentialsRequest) GetSubject() string    { return ServiceAccountSubject(c.clientID) }
func (c *clientCredentialsRequest) GetAudience() []string { return []string{c.clientID} }
func (c *clientCredentialsRequest) GetScopes() []string   { return c.scopes }

// ServiceAccountSubject is the sub of tokens a client gets for itself with
// client_credentials. The prefix keeps it apart from user ids, and it has
// no colon (the library's opaque tokens are "id:subject").
func ServiceAccountSubject(clientID string) string { return serviceAccountPrefix + clientID }

const serviceAccountPrefix = "client/"

func isServiceAccount(subject string) bool {
	return len(subject) > len(serviceAccountPrefix) && subject[:len(serviceAccountPrefix)] == serviceAccountPrefix
}

// amr is the authentication methods reference of a password sign-in.
func amr(userID string) []string {
	if userID == "" {
		return nil
	}
	return []string{"pwd"}
}
