package model

import "time"

// AuditEvent is one entry of the append-only audit record: who did what,
// when, from where, and how it ended.
type AuditEvent struct {
	ID   string // time-ordered (UUIDv7), so ids sort like times
	Time time.Time
	// Action names what happened, dotted: "login.success", "user.created".
	Action string
	// Actor is who did it: a username, "cli", or "system".
	Actor   string
	ActorID string
	// Subject is what it was done to (a username, a group, a client id).
	Subject  string
	ClientIP string
	// Outcome is "success" or "failure".
	Outcome string
	// Detail is free-form context; never a secret.
	Detail map[string]string
}

// AuditFilter selects events; zero fields match everything.
type AuditFilter struct {
	// User matches events whose actor or subject is this username.
	User string
	// Action matches exactly, or as a prefix when it ends with ".".
	Action string
	Since  time.Time
	Until  time.Time
	// Limit bounds the result (newest first); 0 means 100.
	Limit int
}

// RecoveryToken is a one-time emergency sign-in link. ID is the SHA-256 of
// the secret in the URL; the secret itself is never stored.
type RecoveryToken struct {
	ID        string
	UserID    string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
}
