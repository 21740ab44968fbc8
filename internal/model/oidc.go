package model

import "time"

// OIDC grant types a client may use.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
)

// Consent modes of an OIDC client.
const (
	// ConsentImplicit never asks: first-party apps the operator declared.
	ConsentImplicit = "implicit"
	// ConsentExplicit asks once per user and set of scopes, then remembers.
	ConsentExplicit = "explicit"
)

// Access token formats.
const (
	// TokenOpaque is an encrypted reference checked against the store on
	// every use, so revocation is immediate.
	TokenOpaque = "opaque"
	// TokenJWT is a signed JWT that resource servers may verify offline.
	TokenJWT = "jwt"
)

// OIDCClient is an OAuth 2.0 / OpenID Connect client, declared under an app
// in the configuration and reconciled into the store at start.
type OIDCClient struct {
	ClientID string
	AppSlug  string
	AppName  string
	// Public clients (native apps, CLIs, SPAs) have no secret and must use
	// PKCE.
	Public bool
	// SecretHash is the keyed hash of the client secret (see oidcop); empty
	// means no secret has been set yet, so the client cannot authenticate.
	SecretHash string
	// SecretFromConfig is true when the secret comes from the config file,
	// which then wins over a secret rotated with the CLI.
	SecretFromConfig       bool
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	// AllowGroups limits who may sign in; empty allows every user.
	AllowGroups []string
	// Groups are the service account's groups (client_credentials).
	Groups      []string
	Consent     string
	TokenFormat string
	// Lifetimes; zero means the server default.
	AccessTokenLifetime  time.Duration
	IDTokenLifetime      time.Duration
	RefreshTokenLifetime time.Duration
	CreatedAt            time.Time
	UpdatedAt            time.Time
}

// HasGrant reports whether the client may use grant.
func (c OIDCClient) HasGrant(grant string) bool {
	for _, g := range c.GrantTypes {
		if g == grant {
			return true
		}
	}
	return false
}

// AuthRequest is one authorization request between /authorize and the code
// exchange. It lives in the store so any replica can continue it. After the
// code is redeemed the record stays (without being usable) until ExpiresAt so
// that a replayed code can be recognised and what it issued revoked.
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State               string
	Nonce               string
	ResponseType        string
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	// MaxAge is the max_age parameter in seconds; -1 when absent.
	MaxAge int64
	// ClaimsGroups is set when the claims parameter asked for groups.
	ClaimsGroups bool
	// Set when the user has signed in and is allowed.
	UserID    string
	SessionID string
	AuthTime  time.Time
	Done      bool
	// CodeHash is the SHA-256 of the issued code; empty until one is
	// issued.
	CodeHash string
	// RedeemedAt is when the code was exchanged; FamilyID names the tokens
	// it issued, revoked if the code is replayed.
	RedeemedAt time.Time
	FamilyID   string
	CreatedAt  time.Time
	ExpiresAt  time.Time
}

// Token kinds.
const (
	TokenAccess  = "access"
	TokenRefresh = "refresh"
)

// OIDCToken is an issued access or refresh token. Refresh tokens are stored
// by the SHA-256 of their value; access tokens by their random id (the jti,
// or the id inside the opaque token).
type OIDCToken struct {
	ID       string
	Kind     string
	FamilyID string
	ClientID string
	// Subject is the user id, or "client/<client_id>" for a service account.
	Subject   string
	Scopes    []string
	Audience  []string
	AMR       []string
	SessionID string
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is set when a refresh token was exchanged (rotated).
	UsedAt    time.Time
	RevokedAt time.Time
}

// ActiveAt reports whether the token may be used at now.
func (t OIDCToken) ActiveAt(now time.Time) bool {
	return t.RevokedAt.IsZero() && now.Before(t.ExpiresAt)
}

// SigningKey is a token signing key. Private is the PKCS#8 private key,
// sealed with the server's secret key.
type SigningKey struct {
	ID        string
	Algorithm string
	Private   []byte
	CreatedAt time.Time
	// ActiveAt is when the key starts signing; until then it is only
	// published, so verifiers that cache the key set learn it first.
	ActiveAt time.Time
	// ExpiresAt is when it leaves the key set: after a newer key took over
	// and every token it signed has expired.
	ExpiresAt time.Time
}

// Consent is a user's remembered approval of a client's scopes.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
}

// DeviceAuth is an RFC 8628 device authorization.
type DeviceAuth struct {
	// ID is the SHA-256 of the device code.
	ID       string
	UserCode string
	ClientID string
	Scopes   []string
	UserID   string
	AuthTime time.Time
	Done     bool
	Denied   bool
	// Redeemed is set once the tokens were handed to the device.
	Redeemed  bool
	CreatedAt time.Time
	ExpiresAt time.Time
}
