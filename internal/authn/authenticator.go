package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/gatehouse-sso/gatehouse/internal/authn/password"
	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// ErrInvalidCredentials is the one answer to every failed password sign-in:
// unknown user, wrong password, disabled account, account without password.
var ErrInvalidCredentials = errors.New("invalid username or password")

// UserLookup is what the Authenticator needs from the directory.
type UserLookup interface {
	// GetUserByUsername returns store.ErrNotFound for an unknown user.
	GetUserByUsername(ctx context.Context, name string) (model.User, error)
	UpdateUser(ctx context.Context, id string, fn func(*model.User) error) (model.User, error)
}

var _ UserLookup = store.Users(nil)

// Options configure an Authenticator.
type Options struct {
	// Logger receives sign-in events (default slog.Default()). Passwords are
	// never logged.
	Logger *slog.Logger
}

// Authenticator checks password sign-ins.
type Authenticator struct {
	users  UserLookup
	hasher *password.Hasher
	reg    *Regulator
	log    *slog.Logger
}

// NewAuthenticator returns an Authenticator. Time enters through the
// Regulator's clock, the only part that depends on it.
func NewAuthenticator(users UserLookup, hasher *password.Hasher, reg *Regulator, o Options) *Authenticator {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Authenticator{users: users, hasher: hasher, reg: reg, log: o.Logger.With("component", "authn")}
}

// errHashChanged stops a rehash when the stored hash changed meanwhile.
var errHashChanged = errors.New("password hash changed during sign-in")

// PasswordLogin checks username and password for a sign-in from clientIP.
// It returns the user on success, ErrLockedOut while the username or the IP
// is locked, ErrInvalidCredentials for every kind of failure, and another
// error only when the store or ctx fails (the caller answers 500 then).
//
// On success with a hash in an old format or with old parameters, the
// password is hashed again and saved; a failure to do so is logged and the
// sign-in still succeeds.
func (a *Authenticator) PasswordLogin(ctx context.Context, username, pw, clientIP string) (model.User, error) {
	log := a.log.With("username", username, "client_ip", clientIP)
	if err := a.reg.Check(ctx, username, clientIP); err != nil {
		if errors.Is(err, ErrLockedOut) {
			log.InfoContext(ctx, "sign-in refused: locked")
		}
		return model.User{}, err
	}

	u, ok, rehash, reason, err := a.check(ctx, log, username, pw)
	if err != nil {
		return model.User{}, err
	}

	// Check again: attempts that were already past the first check when a
	// burst of parallel failures locked the key get no answer either way,
	// so a burst cannot try more than about MaxConcurrent extra passwords.
	if err := a.reg.Check(ctx, username, clientIP); err != nil {
		if errors.Is(err, ErrLockedOut) {
			log.InfoContext(ctx, "sign-in refused: locked while checking")
		}
		return model.User{}, err
	}

	if !ok {
		log.InfoContext(ctx, "sign-in failed", "reason", reason)
		if err := a.reg.Fail(ctx, username, clientIP); err != nil {
			log.ErrorContext(ctx, "record sign-in failure", "err", err)
		}
		return model.User{}, ErrInvalidCredentials
	}
	if err := a.reg.Succeed(ctx, username, clientIP); err != nil {
		log.ErrorContext(ctx, "clear failure counter", "err", err)
	}
	if rehash {
		u = a.rehash(ctx, log, u, pw)
	}
	log.InfoContext(ctx, "sign-in succeeded", "user_id", u.ID)
	return u, nil
}

// check verifies the password of username. For every kind of failure it
// does the same hashing work and returns ok=false with a reason for the log;
// err is only for a failing store or an ended ctx.
func (a *Authenticator) check(ctx context.Context, log *slog.Logger, username, pw string) (u model.User, ok, rehash bool, reason string, err error) {
	u, err = a.users.GetUserByUsername(ctx, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return model.User{}, false, false, "unknown user", a.hasher.DummyVerify(ctx, pw)
	case err != nil:
		return model.User{}, false, false, "", fmt.Errorf("authn: look up user: %w", err)
	case u.PasswordHash == "":
		return model.User{}, false, false, "no password", a.hasher.DummyVerify(ctx, pw)
	}

	ok, rehash, err = a.hasher.Verify(ctx, pw, u.PasswordHash)
	switch {
	case err != nil && ctx.Err() != nil:
		return model.User{}, false, false, "", ctx.Err()
	case err != nil:
		// The stored hash is broken: nobody can sign in with it. Spend the
		// time a real check takes so the answer does not stand out.
		log.ErrorContext(ctx, "stored password hash unusable", "user_id", u.ID, "err", err)
		return model.User{}, false, false, "unusable hash", a.hasher.DummyVerify(ctx, pw)
	case u.Disabled:
		// Decided after hashing, so a disabled account answers as slowly as
		// any other, and counted as a failure whatever the password.
		return model.User{}, false, false, "disabled", nil
	case !ok:
		return model.User{}, false, false, "wrong password", nil
	}
	return u, true, rehash, "", nil
}

// rehash replaces u's password hash with one in the current format. It
// leaves the hash alone if it changed since u was read (a concurrent
// password change wins).
func (a *Authenticator) rehash(ctx context.Context, log *slog.Logger, u model.User, pw string) model.User {
	enc, err := a.hasher.Hash(ctx, pw)
	if err != nil {
		log.WarnContext(ctx, "rehash password", "user_id", u.ID, "err", err)
		return u
	}
	old := u.PasswordHash
	nu, err := a.users.UpdateUser(ctx, u.ID, func(cur *model.User) error {
		if cur.PasswordHash != old {
			return errHashChanged
		}
		cur.PasswordHash = enc
		return nil
	})
	if err != nil {
		log.WarnContext(ctx, "save rehashed password", "user_id", u.ID, "err", err)
		return u
	}
	log.InfoContext(ctx, "password hash upgraded", "user_id", u.ID)
	return nu
}
