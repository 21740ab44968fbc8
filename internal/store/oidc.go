package store

import (
	"context"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// OIDC stores everything the OpenID provider needs across replicas:
// clients, authorization requests and codes, tokens, signing keys, consents
// and device authorizations. Nothing of a flow in progress lives only in
// one process's memory.
type OIDC interface {
	OIDCClients
	OIDCAuthRequests
	OIDCTokens
	OIDCKeys
	OIDCConsents
	OIDCDevices
	// DeleteExpiredOIDC removes auth requests, tokens, device
	// authorizations and signing keys past their expiry at now, and
	// returns how many rows went.
	DeleteExpiredOIDC(ctx context.Context, now time.Time) (int, error)
}

// OIDCClients stores clients.
type OIDCClients interface {
	// PutOIDCClient creates or replaces the client. When c.SecretHash is
	// empty and c.SecretFromConfig is false, a secret set earlier (with the
	// CLI) is kept.
	PutOIDCClient(ctx context.Context, c model.OIDCClient) error
	GetOIDCClient(ctx context.Context, clientID string) (model.OIDCClient, error)
	// ListOIDCClients returns every client ordered by client id.
	ListOIDCClients(ctx context.Context) ([]model.OIDCClient, error)
	// DeleteOIDCClient removes the client and every token, auth request,
	// consent and device authorization of it.
	DeleteOIDCClient(ctx context.Context, clientID string) error
	// SetOIDCClientSecret replaces the secret hash.
	SetOIDCClientSecret(ctx context.Context, clientID, hash string, fromConfig bool) error
}

// OIDCAuthRequests stores authorization requests and their codes.
type OIDCAuthRequests interface {
	CreateAuthRequest(ctx context.Context, ar model.AuthRequest) error
	GetAuthRequest(ctx context.Context, id string) (model.AuthRequest, error)
	// GetAuthRequestByCode finds the request by the hash of its code,
	// redeemed or not.
	GetAuthRequestByCode(ctx context.Context, codeHash string) (model.AuthRequest, error)
	// UpdateAuthRequest loads the request, applies fn and saves it in one
	// transaction.
	UpdateAuthRequest(ctx context.Context, id string, fn func(ar *model.AuthRequest) error) (model.AuthRequest, error)
	DeleteAuthRequest(ctx context.Context, id string) error
}

// OIDCTokens stores access and refresh tokens.
type OIDCTokens interface {
	CreateOIDCToken(ctx context.Context, t model.OIDCToken) error
	GetOIDCToken(ctx context.Context, id string) (model.OIDCToken, error)
	// UseRefreshToken marks the refresh token used at now, atomically: it
	// returns ErrConflict when the token was already used or revoked (the
	// caller then revokes the family) and ErrNotFound when there is none.
	UseRefreshToken(ctx context.Context, id string, now time.Time) (model.OIDCToken, error)
	// RevokeOIDCToken revokes one token; ErrNotFound when there is none.
	RevokeOIDCToken(ctx context.Context, id string, now time.Time) error
	// RevokeOIDCFamily revokes every token of the family and returns how
	// many were still unrevoked.
	RevokeOIDCFamily(ctx context.Context, familyID string, now time.Time) (int, error)
	// RevokeOIDCTokens revokes the tokens of a subject, limited to one
	// client and/or one IdP session when those are not empty.
	RevokeOIDCTokens(ctx context.Context, subject, clientID, sessionID string, now time.Time) (int, error)
}

// OIDCKeys stores signing keys.
type OIDCKeys interface {
	CreateSigningKey(ctx context.Context, k model.SigningKey) error
	// ListSigningKeys returns the keys ordered by ActiveAt, newest first.
	ListSigningKeys(ctx context.Context) ([]model.SigningKey, error)
	// UpdateSigningKeyExpiry sets when the key leaves the key set.
	UpdateSigningKeyExpiry(ctx context.Context, id string, expires time.Time) error
}

// OIDCConsents stores remembered consent.
type OIDCConsents interface {
	GetConsent(ctx context.Context, userID, clientID string) (model.Consent, error)
	PutConsent(ctx context.Context, c model.Consent) error
	DeleteConsent(ctx context.Context, userID, clientID string) error
}

// OIDCDevices stores device authorizations.
type OIDCDevices interface {
	// CreateDeviceAuth returns ErrConflict when the user code is taken.
	CreateDeviceAuth(ctx context.Context, d model.DeviceAuth) error
	GetDeviceAuth(ctx context.Context, id string) (model.DeviceAuth, error)
	GetDeviceAuthByUserCode(ctx context.Context, userCode string) (model.DeviceAuth, error)
	UpdateDeviceAuth(ctx context.Context, id string, fn func(d *model.DeviceAuth) error) (model.DeviceAuth, error)
}
