package sqlstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// ------------------------------------------------------------ revocations

// AppendRevocations adds one feed entry per session id, in one transaction.
func (s *Store) AppendRevocations(ctx context.Context, sessionIDs []string, at time.Time) error {
	if len(sessionIDs) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *Store) error {
		for _, id := range sessionIDs {
			if _, err := tx.exec(ctx, tx.tx, "INSERT INTO revocations (session_id, at) VALUES (?, ?)", id, toMicro(at)); err != nil {
				return fail("append revocation", err)
			}
		}
		return nil
	})
}

// RevocationsAfter returns up to limit entries with seq > after, ascending.
func (s *Store) RevocationsAfter(ctx context.Context, after int64, limit int) (out []model.Revocation, err error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.query(ctx, s.reader(), "SELECT seq, session_id, at FROM revocations WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
	if err != nil {
		return nil, fail("read revocations", err)
	}
	defer closeRows(rows, &err)
	for rows.Next() {
		var r model.Revocation
		var at int64
		if err := rows.Scan(&r.Seq, &r.SessionID, &at); err != nil {
			return nil, fail("read revocations", err)
		}
		r.At = fromMicro(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("read revocations", err)
	}
	return out, nil
}

// LastRevocationSeq is the highest seq in the feed, 0 when it is empty.
func (s *Store) LastRevocationSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.queryRow(ctx, s.reader(), "SELECT COALESCE(MAX(seq), 0) FROM revocations").Scan(&seq); err != nil {
		return 0, fail("last revocation", err)
	}
	return seq, nil
}

// DeleteRevocationsBefore prunes entries older than before.
func (s *Store) DeleteRevocationsBefore(ctx context.Context, before time.Time) (int, error) {
	return s.deleteCount(ctx, "delete revocations", "DELETE FROM revocations WHERE at < ?", toMicro(before))
}

// ------------------------------------------------------------------ leases

// AcquireLease takes, renews or fails to take name in one statement: the
// upsert only overwrites a row that is expired or already ours, so of two
// workers racing for a free lease exactly one sees a changed row.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" {
		return false, fail("acquire lease", errors.New("name and holder are required"))
	}
	now = now.UTC().Truncate(time.Microsecond)
	res, err := s.exec(ctx, s.writer(), `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
		name, holder, toMicro(now.Add(ttl)), toMicro(now))
	if err != nil {
		return false, fail("acquire lease", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail("acquire lease", err)
	}
	return n > 0, nil
}

// ReleaseLease deletes the lease when holder holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.exec(ctx, s.writer(), "DELETE FROM leases WHERE name = ? AND holder = ?", name, holder); err != nil {
		return fail("release lease", err)
	}
	return nil
}

// ------------------------------------------------------------------ outbox

const outboxColumns = "id, kind, target, subject, body, attempts, next_attempt_at, last_error, created_at, delivered_at, dead"

func scanOutbox(sc scanner) (model.OutboxMessage, error) {
	var m model.OutboxMessage
	var next, created, delivered int64
	if err := sc.Scan(&m.ID, &m.Kind, &m.Target, &m.Subject, &m.Body, &m.Attempts, &next, &m.LastError, &created, &delivered, &m.Dead); err != nil {
		return model.OutboxMessage{}, err
	}
	m.NextAttemptAt, m.CreatedAt, m.DeliveredAt = fromMicro(next), fromMicro(created), fromMicro(delivered)
	return m, nil
}

// EnqueueOutbox stores m, due at NextAttemptAt (CreatedAt when unset).
func (s *Store) EnqueueOutbox(ctx context.Context, m model.OutboxMessage) error {
	const op = "enqueue outbox"
	if m.ID == "" || m.Kind == "" || m.Target == "" {
		return fail(op, errors.New("ID, kind and target are required"))
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = s.nowMicro()
	}
	if m.NextAttemptAt.IsZero() {
		m.NextAttemptAt = m.CreatedAt
	}
	_, err := s.exec(ctx, s.writer(), "INSERT INTO outbox ("+outboxColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		m.ID, m.Kind, m.Target, m.Subject, m.Body, m.Attempts, toMicro(m.NextAttemptAt), m.LastError,
		toMicro(m.CreatedAt), toMicro(m.DeliveredAt), m.Dead)
	if err != nil {
		return fail(op, err)
	}
	return nil
}

// ClaimOutbox selects due messages and pushes their due time out by lease
// in one transaction. On PostgreSQL the rows are locked with SKIP LOCKED,
// so two workers claiming at once get disjoint batches instead of waiting.
func (s *Store) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]model.OutboxMessage, error) {
	const op = "claim outbox"
	if limit <= 0 {
		limit = 50
	}
	lock := ""
	if s.d.forUpdate != "" {
		lock = s.d.forUpdate + " SKIP LOCKED"
	}
	var out []model.OutboxMessage
	err := s.inTx(ctx, func(tx *Store) (err error) {
		rows, err := tx.query(ctx, tx.tx, "SELECT "+outboxColumns+" FROM outbox WHERE delivered_at = 0 AND dead = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?"+lock,
			false, toMicro(now), limit)
		if err != nil {
			return fail(op, err)
		}
		for rows.Next() {
			m, err := scanOutbox(rows)
			if err != nil {
				_ = rows.Close()
				return fail(op, err)
			}
			out = append(out, m)
		}
		if err := rows.Close(); err != nil {
			return fail(op, err)
		}
		if err := rows.Err(); err != nil {
			return fail(op, err)
		}
		until := toMicro(now.Add(lease))
		for i := range out {
			if _, err := tx.exec(ctx, tx.tx, "UPDATE outbox SET next_attempt_at = ? WHERE id = ?", until, out[i].ID); err != nil {
				return fail(op, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MarkOutboxDelivered records a successful delivery.
func (s *Store) MarkOutboxDelivered(ctx context.Context, id string, at time.Time) error {
	res, err := s.exec(ctx, s.writer(), "UPDATE outbox SET delivered_at = ?, last_error = '' WHERE id = ?", toMicro(at), id)
	if err != nil {
		return fail("mark outbox delivered", err)
	}
	return mustAffect("mark outbox delivered", res)
}

// MarkOutboxFailed records a failed attempt.
func (s *Store) MarkOutboxFailed(ctx context.Context, id string, attempts int, next time.Time, lastError string, dead bool) error {
	res, err := s.exec(ctx, s.writer(), "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, dead = ? WHERE id = ?",
		attempts, toMicro(next), truncateString(lastError, 1000), dead, id)
	if err != nil {
		return fail("mark outbox failed", err)
	}
	return mustAffect("mark outbox failed", res)
}

// GetOutbox returns one message.
func (s *Store) GetOutbox(ctx context.Context, id string) (model.OutboxMessage, error) {
	m, err := scanOutbox(s.queryRow(ctx, s.reader(), "SELECT "+outboxColumns+" FROM outbox WHERE id = ?", id))
	if err != nil {
		return model.OutboxMessage{}, fail("get outbox", err)
	}
	return m, nil
}

// DeleteOutboxBefore removes finished (delivered or dead) messages created
// before before.
func (s *Store) DeleteOutboxBefore(ctx context.Context, before time.Time) (int, error) {
	return s.deleteCount(ctx, "delete outbox", "DELETE FROM outbox WHERE created_at < ? AND (delivered_at <> 0 OR dead = ?)", toMicro(before), true)
}

// deleteCount runs a DELETE and returns how many rows it removed.
func (s *Store) deleteCount(ctx context.Context, op, query string, args ...any) (int, error) {
	res, err := s.exec(ctx, s.writer(), query, args...)
	if err != nil {
		return 0, fail(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fail(op, err)
	}
	return int(n), nil
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
