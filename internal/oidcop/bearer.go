package oidcop

import (
	"context"
	"errors"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// Identity is who an access token speaks for.
type Identity struct {
	// Subject is the user id, or ServiceAccountSubject(client) for a
	// client_credentials token.
	Subject  string
	ClientID string
	// ServiceAccount is set for client_credentials tokens; Groups are then
	// the client's groups.
	ServiceAccount bool
	Groups         []string
	Scopes         []string
}

// VerifyBearer checks an access token this provider issued (opaque or JWT)
// and returns its subject. ok is false for anything not a live token of
// ours: unknown, forged, expired, revoked, or whose user was disabled or
// deleted. err is reserved for failures of the store. Forward auth uses it
// to accept "Authorization: Bearer" from OAuth clients.
//
// Service-account (client_credentials) tokens are not users: VerifyBearer
// reports them as not valid; Bearer returns them with their groups.
func (p *Provider) VerifyBearer(ctx context.Context, token string) (userID, clientID string, ok bool, err error) {
	id, ok, err := p.Bearer(ctx, token)
	if !ok || err != nil || id.ServiceAccount {
		return "", "", false, err
	}
	return id.Subject, id.ClientID, true, nil
}

// Bearer is VerifyBearer with the whole identity.
func (p *Provider) Bearer(ctx context.Context, token string) (Identity, bool, error) {
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 8192 {
		return Identity{}, false, nil
	}
	ctx = p.issuerContext(ctx)
	tokenID, subject, ok := p.tokenIDAndSubject(ctx, token)
	if !ok {
		return Identity{}, false, nil
	}
	t, err := p.st.activeToken(ctx, tokenID, subject)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errTokenInactive):
		return Identity{}, false, nil
	case err != nil:
		return Identity{}, false, err
	}
	id := Identity{Subject: t.Subject, ClientID: t.ClientID, Scopes: t.Scopes, ServiceAccount: isServiceAccount(t.Subject)}
	if id.ServiceAccount {
		c, err := p.st.client(ctx, t.ClientID)
		if err != nil {
			return Identity{}, false, nil
		}
		id.Groups = c.m.Groups
		return id, true, nil
	}
	c, err := p.st.client(ctx, t.ClientID)
	if err != nil {
		return Identity{}, false, nil
	}
	_, groups, err := p.st.userAllowed(ctx, c, t.Subject)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errNoAccess):
		return Identity{}, false, nil
	case err != nil:
		return Identity{}, false, err
	}
	id.Groups = groups
	return id, true, nil
}

// tokenIDAndSubject opens an opaque token or verifies a JWT one, as the
// library's userinfo endpoint does.
func (p *Provider) tokenIDAndSubject(ctx context.Context, token string) (string, string, bool) {
	if plain, err := p.op.Crypto().Decrypt(token); err == nil {
		id, sub, found := strings.Cut(plain, ":")
		return id, sub, found && !strings.Contains(sub, ":")
	}
	claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, token, p.op.AccessTokenVerifier(ctx))
	if err != nil {
		return "", "", false
	}
	return claims.JWTID, claims.Subject, true
}
