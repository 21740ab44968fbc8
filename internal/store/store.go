// Package store declares the storage interfaces, one per aggregate, and the
// sentinel errors every backend returns. Backends live in subpackages; only
// the composition root (internal/app) and the CLI pick one.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

var (
	// ErrNotFound is returned when the addressed record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when a unique key (username, group name, ...)
	// is already taken.
	ErrConflict = errors.New("already exists")
)

// Users stores the directory's users.
type Users interface {
	CreateUser(ctx context.Context, u model.User) error
	GetUser(ctx context.Context, id string) (model.User, error)
	// GetUserByUsername matches the username case-insensitively.
	GetUserByUsername(ctx context.Context, username string) (model.User, error)
	ListUsers(ctx context.Context) ([]model.User, error)
	// UpdateUser loads the user, applies fn and saves the result in one
	// transaction. fn must not change ID or CreatedAt; UpdatedAt is set by
	// the store.
	UpdateUser(ctx context.Context, id string, fn func(u *model.User) error) (model.User, error)
	// DeleteUser removes the user, its memberships and its sessions.
	DeleteUser(ctx context.Context, id string) error
	CountUsers(ctx context.Context) (int, error)
}

// Groups stores groups and membership.
type Groups interface {
	CreateGroup(ctx context.Context, g model.Group) error
	GetGroup(ctx context.Context, id string) (model.Group, error)
	// GetGroupByName matches the name exactly (group names are case-sensitive,
	// as OIDC group claims are).
	GetGroupByName(ctx context.Context, name string) (model.Group, error)
	ListGroups(ctx context.Context) ([]model.Group, error)
	DeleteGroup(ctx context.Context, id string) error
	// AddMember is idempotent; unknown user or group is ErrNotFound.
	AddMember(ctx context.Context, groupID, userID string) error
	// RemoveMember is ErrNotFound when the membership does not exist.
	RemoveMember(ctx context.Context, groupID, userID string) error
	ListMembers(ctx context.Context, groupID string) ([]model.User, error)
	// GroupsOfUser lists the user's groups ordered by name.
	GroupsOfUser(ctx context.Context, userID string) ([]model.Group, error)
}

// Sessions stores browser sessions.
type Sessions interface {
	CreateSession(ctx context.Context, s model.Session) error
	GetSession(ctx context.Context, id string) (model.Session, error)
	// TouchSessions writes last-seen times in one batch; unknown ids are
	// ignored.
	TouchSessions(ctx context.Context, lastSeen map[string]time.Time) error
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions ends every session of the user and returns the ids
	// it removed.
	DeleteUserSessions(ctx context.Context, userID string) ([]string, error)
	// DeleteExpiredSessions removes sessions past their absolute or idle
	// expiry at now and returns how many.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
}

// Throttle keeps brute-force failure counters.
type Throttle interface {
	// RecordFailure adds one failure to key inside a window of the given
	// length (a new window starts when the old one has passed) and locks the
	// key until now+lockout once failures reach limit. It returns the state
	// after the update.
	RecordFailure(ctx context.Context, key string, now time.Time, window time.Duration, limit int, lockout time.Duration) (model.ThrottleState, error)
	// GetThrottle returns the state of key; a key never seen is a zero
	// state with that key, not an error.
	GetThrottle(ctx context.Context, key string) (model.ThrottleState, error)
	// ClearThrottle forgets key (after a successful sign-in, or an operator
	// unlock).
	ClearThrottle(ctx context.Context, key string) error
	DeleteStaleThrottles(ctx context.Context, before time.Time) (int, error)
}

// Store is every aggregate together, as the composition root uses it.
type Store interface {
	Users
	Groups
	Sessions
	Throttle
	APITokens
	GateSessions
	OIDC
	Audit
	RecoveryTokens
	Revocations
	Leases
	Outbox
	// InTx runs fn against a view of the store inside one transaction:
	// everything fn does commits together or not at all.
	InTx(ctx context.Context, fn func(tx Store) error) error
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	Close() error
}
