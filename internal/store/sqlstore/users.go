package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

const userColumns = "id, username, email, display_name, disabled, password_hash, created_at, updated_at"

// usernameKey is the case-folded username the unique index and lookups use.
func usernameKey(username string) string { return strings.ToLower(username) }

type scanner interface{ Scan(dest ...any) error }

func scanUser(sc scanner) (model.User, error) {
	var (
		u                model.User
		created, updated int64
	)
	if err := sc.Scan(&u.ID, &u.Username, &u.Email, &u.DisplayName, &u.Disabled, &u.PasswordHash, &created, &updated); err != nil {
		return model.User{}, err
	}
	u.CreatedAt, u.UpdatedAt = fromMicro(created), fromMicro(updated)
	return u, nil
}

func validateUser(u model.User) error {
	if u.ID == "" {
		return errors.New("user ID is empty")
	}
	if strings.TrimSpace(u.Username) == "" {
		return errors.New("username is empty")
	}
	return nil
}

// CreateUser inserts u. A missing CreatedAt is set to now, a missing
// UpdatedAt to CreatedAt. A taken ID or username (in any case) is
// store.ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u model.User) error {
	op := fmt.Sprintf("create user %q", u.Username)
	if err := validateUser(u); err != nil {
		return fail(op, err)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.nowMicro()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	_, err := s.exec(ctx, s.writer(), `INSERT INTO users
		(id, username, username_key, email, display_name, disabled, password_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, usernameKey(u.Username), u.Email, u.DisplayName, u.Disabled, u.PasswordHash,
		toMicro(u.CreatedAt), toMicro(u.UpdatedAt))
	if err != nil {
		return fail(op, err)
	}
	return nil
}

// GetUser returns the user with the given ID.
func (s *Store) GetUser(ctx context.Context, id string) (model.User, error) {
	u, err := scanUser(s.queryRow(ctx, s.reader(), "SELECT "+userColumns+" FROM users WHERE id = ?", id))
	if err != nil {
		return model.User{}, fail(fmt.Sprintf("get user %q", id), err)
	}
	return u, nil
}

// GetUserByUsername matches username case-insensitively.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (model.User, error) {
	u, err := scanUser(s.queryRow(ctx, s.reader(),
		"SELECT "+userColumns+" FROM users WHERE username_key = ?", usernameKey(username)))
	if err != nil {
		return model.User{}, fail(fmt.Sprintf("get user by username %q", username), err)
	}
	return u, nil
}

// ListUsers returns every user, ordered by username (case-insensitively).
func (s *Store) ListUsers(ctx context.Context) ([]model.User, error) {
	return s.listUsers(ctx, "list users", "SELECT "+userColumns+" FROM users ORDER BY username_key")
}

func (s *Store) listUsers(ctx context.Context, op, query string, args ...any) (us []model.User, err error) {
	rows, err := s.query(ctx, s.reader(), query, args...)
	if err != nil {
		return nil, fail(op, err)
	}
	defer closeRows(rows, &err)
	us = []model.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fail(op, err)
		}
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(op, err)
	}
	return us, nil
}

// UpdateUser loads the user (locking its row on PostgreSQL), applies fn and
// writes the result back in one transaction. An error from fn is returned
// as it is and leaves the row unchanged. fn must not call the store: on
// SQLite the transaction holds the only writer connection.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(u *model.User) error) (model.User, error) {
	op := fmt.Sprintf("update user %q", id)
	var out model.User
	err := s.inTx(ctx, func(tx *Store) error {
		old, err := scanUser(tx.queryRow(ctx, tx.tx,
			"SELECT "+userColumns+" FROM users WHERE id = ?"+tx.d.forUpdate, id))
		if err != nil {
			return fail(op, err)
		}
		u := old
		if err := fn(&u); err != nil {
			return err
		}
		if u.ID != old.ID || !u.CreatedAt.Equal(old.CreatedAt) {
			return fail(op, errors.New("the update function changed ID or CreatedAt"))
		}
		if err := validateUser(u); err != nil {
			return fail(op, err)
		}
		u.UpdatedAt = tx.nowMicro()
		if !u.UpdatedAt.After(old.UpdatedAt) {
			// Keep UpdatedAt moving forward even if the clock stepped
			// back or two updates fall in one microsecond: callers use it
			// as a version.
			u.UpdatedAt = old.UpdatedAt.Add(time.Microsecond)
		}
		res, err := tx.exec(ctx, tx.tx, `UPDATE users SET
			username = ?, username_key = ?, email = ?, display_name = ?, disabled = ?, password_hash = ?, updated_at = ?
			WHERE id = ?`,
			u.Username, usernameKey(u.Username), u.Email, u.DisplayName, u.Disabled, u.PasswordHash,
			toMicro(u.UpdatedAt), id)
		if err != nil {
			return fail(op, err)
		}
		if err := mustAffect(op, res); err != nil {
			return err
		}
		out = u
		return nil
	})
	if err != nil {
		return model.User{}, err
	}
	return out, nil
}

// DeleteUser removes the user; the foreign keys cascade to its memberships
// and sessions.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	op := fmt.Sprintf("delete user %q", id)
	res, err := s.exec(ctx, s.writer(), "DELETE FROM users WHERE id = ?", id)
	if err != nil {
		return fail(op, err)
	}
	return mustAffect(op, res)
}

// CountUsers returns the number of users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.queryRow(ctx, s.reader(), "SELECT count(*) FROM users").Scan(&n); err != nil {
		return 0, fail("count users", err)
	}
	return n, nil
}

// exists reports whether query (a SELECT 1 ... by key) finds a row.
func (s *Store) exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var one int
	err := s.queryRow(ctx, q, query, args...).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
