package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// AppendEvent writes one audit event.
func (s *Store) AppendEvent(ctx context.Context, e model.AuditEvent) error {
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return fail("append event", err)
		}
	}
	_, err := s.exec(ctx, s.writer(), `INSERT INTO audit_events (id, at, action, actor, actor_id, subject, client_ip, outcome, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, toMicro(e.Time), e.Action, e.Actor, e.ActorID, e.Subject, e.ClientIP, e.Outcome, string(detail))
	if err != nil {
		return fail("append event", err)
	}
	return nil
}

// ListEvents returns matching events, newest first.
func (s *Store) ListEvents(ctx context.Context, f model.AuditFilter) (events []model.AuditEvent, err error) {
	var where []string
	var args []any
	if f.User != "" {
		where = append(where, "(actor = ? OR subject = ?)")
		args = append(args, f.User, f.User)
	}
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			// A prefix match without LIKE, so '_' and '%' in names mean nothing.
			where = append(where, "substr(action, 1, ?) = ?")
			args = append(args, len(f.Action), f.Action)
		} else {
			where = append(where, "action = ?")
			args = append(args, f.Action)
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, toMicro(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "at < ?")
		args = append(args, toMicro(f.Until))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT id, at, action, actor, actor_id, subject, client_ip, outcome, detail FROM audit_events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY at DESC, id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.query(ctx, s.reader(), q, args...)
	if err != nil {
		return nil, fail("list events", err)
	}
	defer closeRows(rows, &err)
	for rows.Next() {
		var e model.AuditEvent
		var at int64
		var detail string
		if err := rows.Scan(&e.ID, &at, &e.Action, &e.Actor, &e.ActorID, &e.Subject, &e.ClientIP, &e.Outcome, &detail); err != nil {
			return nil, fail("list events", err)
		}
		e.Time = fromMicro(at)
		if detail != "" && detail != "{}" {
			if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
				return nil, fail("list events", err)
			}
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("list events", err)
	}
	return events, nil
}

// DeleteEventsBefore removes events older than before.
func (s *Store) DeleteEventsBefore(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, s.writer(), "DELETE FROM audit_events WHERE at < ?", toMicro(before))
	if err != nil {
		return 0, fail("delete events", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// CreateRecoveryToken stores a recovery link's hash.
func (s *Store) CreateRecoveryToken(ctx context.Context, t model.RecoveryToken) error {
	_, err := s.exec(ctx, s.writer(), `INSERT INTO recovery_tokens (id, user_id, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.UserID, t.CreatedBy, toMicro(t.CreatedAt), toMicro(t.ExpiresAt))
	if err != nil {
		return fail("create recovery token", err)
	}
	return nil
}

// ConsumeRecoveryToken deletes and returns a live token. The DELETE decides
// who wins when two requests race: only one of them removes the row.
func (s *Store) ConsumeRecoveryToken(ctx context.Context, id string, now time.Time) (model.RecoveryToken, error) {
	var t model.RecoveryToken
	err := s.inTx(ctx, func(tx *Store) error {
		var created, expires int64
		err := tx.queryRow(ctx, tx.tx, "SELECT id, user_id, created_by, created_at, expires_at FROM recovery_tokens WHERE id = ?"+tx.d.forUpdate, id).
			Scan(&t.ID, &t.UserID, &t.CreatedBy, &created, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return fail("consume recovery token", store.ErrNotFound)
		}
		if err != nil {
			return fail("consume recovery token", err)
		}
		t.CreatedAt, t.ExpiresAt = fromMicro(created), fromMicro(expires)
		res, err := tx.exec(ctx, tx.tx, "DELETE FROM recovery_tokens WHERE id = ?", id)
		if err != nil {
			return fail("consume recovery token", err)
		}
		// An expired token is deleted all the same and reported below.
		return mustAffect("consume recovery token", res)
	})
	if err != nil {
		return model.RecoveryToken{}, err
	}
	if !now.Before(t.ExpiresAt) {
		return model.RecoveryToken{}, fail("consume recovery token", store.ErrNotFound)
	}
	return t, nil
}

// DeleteExpiredRecoveryTokens removes links past their expiry.
func (s *Store) DeleteExpiredRecoveryTokens(ctx context.Context, now time.Time) (int, error) {
	res, err := s.exec(ctx, s.writer(), "DELETE FROM recovery_tokens WHERE expires_at <= ?", toMicro(now))
	if err != nil {
		return 0, fail("delete expired recovery tokens", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
