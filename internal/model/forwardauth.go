package model

import "time"

// TokenKind says how a machine credential is presented.
type TokenKind string

const (
	// TokenAPI is sent as "Authorization: Bearer <token>".
	TokenAPI TokenKind = "api"
	// TokenAppPassword is sent as the password of "Authorization: Basic"
	// with the owner's username, for clients that only speak Basic auth.
	TokenAppPassword TokenKind = "app-password"
)

// APIToken is a user's machine credential for forward-auth apps that allow
// it (Prometheus behind the gate, scraped by Grafana). The secret itself is
// never stored: Hash is a keyed hash of it, so a copy of the store grants
// nothing and a lookup by hash needs no slow password hash.
type APIToken struct {
	// ID is a short public handle for listing and revoking.
	ID     string
	UserID string
	Name   string
	Kind   TokenKind
	// Hash is the hex HMAC-SHA256 of the secret under a server-derived key.
	Hash      string
	CreatedAt time.Time
	// ExpiresAt is zero for a token that does not expire.
	ExpiresAt time.Time
}

// ActiveAt reports whether the token may be used at time now.
func (t APIToken) ActiveAt(now time.Time) bool {
	return t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt)
}

// GateKind tells a gate record's use.
type GateKind string

const (
	// GateCookie is a forward-auth cookie: on the cookie domain when Host
	// is empty, host-only on Host otherwise (per-app mode).
	GateCookie GateKind = "cookie"
	// GateCode is a one-time code that a per-app callback on Host exchanges
	// for a host-only GateCookie.
	GateCode GateKind = "code"
)

// GateSession is the server side of a forward-auth gate cookie or of a
// one-time code. It is bound to an IdP session and ends with it. ID is the
// SHA-256 (hex) of the random value the browser holds.
type GateSession struct {
	ID        string
	Kind      GateKind
	SessionID string
	UserID    string
	Host      string
	CreatedAt time.Time
	ExpiresAt time.Time
}
