package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

const sessionColumns = "id, user_id, level, created_at, last_seen_at, expires_at, idle_timeout, client_ip, user_agent"

func scanSession(sc scanner) (model.Session, error) {
	var (
		ss                               model.Session
		level                            int
		created, lastSeen, expires, idle int64
	)
	if err := sc.Scan(&ss.ID, &ss.UserID, &level, &created, &lastSeen, &expires, &idle, &ss.ClientIP, &ss.UserAgent); err != nil {
		return model.Session{}, err
	}
	ss.Level = model.AuthLevel(level)
	ss.CreatedAt, ss.LastSeenAt, ss.ExpiresAt = fromMicro(created), fromMicro(lastSeen), fromMicro(expires)
	ss.IdleTimeout = time.Duration(idle) * time.Microsecond
	return ss, nil
}

// CreateSession inserts ss. A taken ID is store.ErrConflict, an unknown user
// store.ErrNotFound.
func (s *Store) CreateSession(ctx context.Context, ss model.Session) error {
	const op = "create session"
	if ss.ID == "" || ss.UserID == "" {
		return fail(op, errors.New("session ID and user ID are required"))
	}
	_, err := s.exec(ctx, s.writer(), "INSERT INTO sessions ("+sessionColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		ss.ID, ss.UserID, int(ss.Level), toMicro(ss.CreatedAt), toMicro(ss.LastSeenAt), toMicro(ss.ExpiresAt),
		ss.IdleTimeout.Microseconds(), ss.ClientIP, ss.UserAgent)
	if err != nil {
		return fail(fmt.Sprintf("%s for user %q", op, ss.UserID), err)
	}
	return nil
}

// GetSession returns the session with the given ID, expired or not: the
// caller decides with Session.ActiveAt.
func (s *Store) GetSession(ctx context.Context, id string) (model.Session, error) {
	ss, err := scanSession(s.queryRow(ctx, s.reader(), "SELECT "+sessionColumns+" FROM sessions WHERE id = ?", id))
	if err != nil {
		// Session IDs are hashes of live cookies: keep them out of errors.
		return model.Session{}, fail("get session", err)
	}
	return ss, nil
}

// TouchSessions writes the last-seen times in one transaction. A time only
// moves forward, so batches flushed out of order (or by two replicas) cannot
// shorten a session's idle expiry; unknown ids are ignored.
func (s *Store) TouchSessions(ctx context.Context, lastSeen map[string]time.Time) error {
	if len(lastSeen) == 0 {
		return nil
	}
	// A fixed order keeps two concurrent batches on PostgreSQL from
	// locking the same rows in opposite orders and deadlocking.
	ids := make([]string, 0, len(lastSeen))
	for id := range lastSeen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return s.inTx(ctx, func(tx *Store) error {
		stmt, err := tx.tx.PrepareContext(ctx, tx.d.rebind("UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?"))
		if err != nil {
			return fail("touch sessions", err)
		}
		defer func() { _ = stmt.Close() }()
		for _, id := range ids {
			t := toMicro(lastSeen[id])
			if _, err := stmt.ExecContext(ctx, t, id, t); err != nil {
				return fail("touch sessions", err)
			}
		}
		return nil
	})
}

// DeleteSession removes one session; store.ErrNotFound when there is none.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	const op = "delete session"
	res, err := s.exec(ctx, s.writer(), "DELETE FROM sessions WHERE id = ?", id)
	if err != nil {
		return fail(op, err)
	}
	return mustAffect(op, res)
}

// DeleteUserSessions removes every session of the user and returns their
// ids, sorted.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (ids []string, err error) {
	op := fmt.Sprintf("delete sessions of user %q", userID)
	rows, err := s.query(ctx, s.writer(), "DELETE FROM sessions WHERE user_id = ? RETURNING id", userID)
	if err != nil {
		return nil, fail(op, err)
	}
	defer closeRows(rows, &err)
	ids = []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fail(op, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(op, err)
	}
	slices.Sort(ids)
	return ids, nil
}

// DeleteExpiredSessions removes the sessions that model.Session.ActiveAt
// would reject at now: past their absolute expiry, or idle for at least
// their idle timeout.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	n := toMicro(now)
	res, err := s.exec(ctx, s.writer(), `DELETE FROM sessions
		WHERE expires_at <= ? OR (idle_timeout > 0 AND last_seen_at + idle_timeout <= ?)`, n, n)
	if err != nil {
		return 0, fail("delete expired sessions", err)
	}
	c, err := res.RowsAffected()
	if err != nil {
		return 0, fail("delete expired sessions", err)
	}
	return int(c), nil
}
