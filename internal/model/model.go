// Package model holds the plain domain types shared by every layer. It has
// no behaviour beyond small helpers and imports nothing from the project.
package model

import "time"

// User is a person (or, later, a service account) in the directory.
type User struct {
	ID          string
	Username    string
	Email       string
	DisplayName string
	Disabled    bool
	// PasswordHash is a PHC string (argon2id, or an imported bcrypt/PBKDF2
	// hash). Empty means the user cannot sign in with a password.
	PasswordHash string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Group is a named set of users; group names drive access rules and the
// groups claim.
type Group struct {
	ID          string
	Name        string
	Description string
	CreatedAt   time.Time
}

// AuthLevel is how strongly a session was authenticated.
type AuthLevel int

const (
	// LevelNone is an anonymous request.
	LevelNone AuthLevel = iota
	// LevelPassword is one factor (password or an equivalent single factor).
	LevelPassword
	// LevelTwoFactor is a password plus a second factor, or a passkey.
	LevelTwoFactor
)

// Session is the server-side record of a browser sign-in. ID is the SHA-256
// (hex) of the random cookie value, so a copy of the store does not hand out
// live cookies.
type Session struct {
	ID         string
	UserID     string
	Level      AuthLevel
	CreatedAt  time.Time
	LastSeenAt time.Time
	// ExpiresAt is the absolute end of the session; IdleTimeout ends it
	// earlier when it is not used.
	ExpiresAt   time.Time
	IdleTimeout time.Duration
	ClientIP    string
	UserAgent   string
}

// ActiveAt reports whether the session may be used at time now.
func (s Session) ActiveAt(now time.Time) bool {
	if !now.Before(s.ExpiresAt) {
		return false
	}
	if s.IdleTimeout > 0 && now.Sub(s.LastSeenAt) >= s.IdleTimeout {
		return false
	}
	return true
}

// ThrottleState is the failure counter behind brute-force protection for one
// key (a username or a client IP).
type ThrottleState struct {
	Key         string
	Failures    int
	WindowStart time.Time
	LockedUntil time.Time
}
