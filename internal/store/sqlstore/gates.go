package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

const gateColumns = "id, kind, session_id, user_id, host, created_at, expires_at"

func scanGate(sc scanner) (model.GateSession, error) {
	var (
		g                model.GateSession
		kind             string
		created, expires int64
	)
	if err := sc.Scan(&g.ID, &kind, &g.SessionID, &g.UserID, &g.Host, &created, &expires); err != nil {
		return model.GateSession{}, err
	}
	g.Kind = model.GateKind(kind)
	g.CreatedAt, g.ExpiresAt = fromMicro(created), fromMicro(expires)
	return g, nil
}

// CreateGateSession inserts g; an unknown IdP session is store.ErrNotFound.
func (s *Store) CreateGateSession(ctx context.Context, g model.GateSession) error {
	const op = "create gate session"
	if g.ID == "" || g.SessionID == "" || g.UserID == "" {
		return fail(op, errors.New("gate ID, session ID and user ID are required"))
	}
	if g.CreatedAt.IsZero() {
		g.CreatedAt = s.nowMicro()
	}
	_, err := s.exec(ctx, s.writer(), "INSERT INTO gate_sessions ("+gateColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		g.ID, string(g.Kind), g.SessionID, g.UserID, g.Host, toMicro(g.CreatedAt), toMicro(g.ExpiresAt))
	if err != nil {
		// IDs are hashes of live cookies: keep them out of errors.
		return fail(op, err)
	}
	return nil
}

// GetGateSession returns the record, expired or not.
func (s *Store) GetGateSession(ctx context.Context, id string) (model.GateSession, error) {
	g, err := scanGate(s.queryRow(ctx, s.reader(), "SELECT "+gateColumns+" FROM gate_sessions WHERE id = ?", id))
	if err != nil {
		return model.GateSession{}, fail("get gate session", err)
	}
	return g, nil
}

// TakeGateSession deletes the record and returns it: of two concurrent
// callers only one gets it.
func (s *Store) TakeGateSession(ctx context.Context, id string, kind model.GateKind) (model.GateSession, error) {
	g, err := scanGate(s.queryRow(ctx, s.writer(), "DELETE FROM gate_sessions WHERE id = ? AND kind = ? RETURNING "+gateColumns, id, string(kind)))
	if err != nil {
		return model.GateSession{}, fail("take gate session", err)
	}
	return g, nil
}

// DeleteExpiredGateSessions removes records expired at now.
func (s *Store) DeleteExpiredGateSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := s.exec(ctx, s.writer(), "DELETE FROM gate_sessions WHERE expires_at <= ?", toMicro(now))
	if err != nil {
		return 0, fail("delete expired gate sessions", err)
	}
	c, err := res.RowsAffected()
	if err != nil {
		return 0, fail("delete expired gate sessions", err)
	}
	return int(c), nil
}
