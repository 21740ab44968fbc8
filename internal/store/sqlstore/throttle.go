package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// RecordFailure counts one failure for key and returns the new state. It
// reads and writes the counter in one transaction with the row locked (FOR
// UPDATE on PostgreSQL; on SQLite the transaction holds the write lock from
// BEGIN), so concurrent failures, from goroutines or from other replicas,
// are all counted.
func (s *Store) RecordFailure(ctx context.Context, key string, now time.Time, window time.Duration, limit int, lockout time.Duration) (model.ThrottleState, error) {
	const op = "record failure"
	now = now.UTC().Truncate(time.Microsecond)
	var st model.ThrottleState
	err := s.inTx(ctx, func(tx *Store) error {
		// Make sure the row exists, so that there is something to lock:
		// SELECT ... FOR UPDATE of a missing row locks nothing, and two
		// first failures would both insert.
		if _, err := tx.exec(ctx, tx.tx, `INSERT INTO throttle (key, failures, window_start, locked_until)
			VALUES (?, 0, 0, 0) ON CONFLICT (key) DO NOTHING`, key); err != nil {
			return fail(op, err)
		}
		var ws, lu int64
		if err := tx.queryRow(ctx, tx.tx, "SELECT failures, window_start, locked_until FROM throttle WHERE key = ?"+tx.d.forUpdate, key).
			Scan(&st.Failures, &ws, &lu); err != nil {
			return fail(op, err)
		}
		st.Key, st.WindowStart, st.LockedUntil = key, fromMicro(ws), fromMicro(lu)
		if st.WindowStart.IsZero() || !now.Before(st.WindowStart.Add(window)) {
			st.Failures, st.WindowStart = 0, now
		}
		st.Failures++
		if limit > 0 && st.Failures >= limit {
			// Never shorten a lock that is already longer.
			if until := now.Add(lockout); until.After(st.LockedUntil) {
				st.LockedUntil = until
			}
		}
		_, err := tx.exec(ctx, tx.tx, "UPDATE throttle SET failures = ?, window_start = ?, locked_until = ? WHERE key = ?",
			st.Failures, toMicro(st.WindowStart), toMicro(st.LockedUntil), key)
		if err != nil {
			return fail(op, err)
		}
		return nil
	})
	if err != nil {
		return model.ThrottleState{}, err
	}
	return st, nil
}

// GetThrottle returns the state of key; a key never seen is the zero state
// with Key set.
func (s *Store) GetThrottle(ctx context.Context, key string) (model.ThrottleState, error) {
	st := model.ThrottleState{Key: key}
	var ws, lu int64
	err := s.queryRow(ctx, s.reader(), "SELECT failures, window_start, locked_until FROM throttle WHERE key = ?", key).
		Scan(&st.Failures, &ws, &lu)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return st, nil
	case err != nil:
		return model.ThrottleState{}, fail("get throttle", err)
	}
	st.WindowStart, st.LockedUntil = fromMicro(ws), fromMicro(lu)
	return st, nil
}

// ClearThrottle forgets key; clearing an unknown key is not an error.
func (s *Store) ClearThrottle(ctx context.Context, key string) error {
	if _, err := s.exec(ctx, s.writer(), "DELETE FROM throttle WHERE key = ?", key); err != nil {
		return fail("clear throttle", err)
	}
	return nil
}

// DeleteStaleThrottles removes the counters whose window started before
// before and that are not locked at or after before, and returns how many.
func (s *Store) DeleteStaleThrottles(ctx context.Context, before time.Time) (int, error) {
	b := toMicro(before)
	res, err := s.exec(ctx, s.writer(), "DELETE FROM throttle WHERE window_start < ? AND locked_until < ?", b, b)
	if err != nil {
		return 0, fail("delete stale throttles", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fail("delete stale throttles", err)
	}
	return int(n), nil
}
