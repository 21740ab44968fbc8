package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

const apiTokenColumns = "id, user_id, name, kind, hash, created_at, expires_at"

func scanAPIToken(sc scanner) (model.APIToken, error) {
	var (
		t                model.APIToken
		kind             string
		created, expires int64
	)
	if err := sc.Scan(&t.ID, &t.UserID, &t.Name, &kind, &t.Hash, &created, &expires); err != nil {
		return model.APIToken{}, err
	}
	t.Kind = model.TokenKind(kind)
	t.CreatedAt, t.ExpiresAt = fromMicro(created), fromMicro(expires)
	return t, nil
}

// CreateAPIToken inserts t. A taken ID or hash is store.ErrConflict, an
// unknown user store.ErrNotFound.
func (s *Store) CreateAPIToken(ctx context.Context, t model.APIToken) error {
	const op = "create API token"
	if t.ID == "" || t.UserID == "" || t.Hash == "" {
		return fail(op, errors.New("token ID, user ID and hash are required"))
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.nowMicro()
	}
	_, err := s.exec(ctx, s.writer(), "INSERT INTO api_tokens ("+apiTokenColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		t.ID, t.UserID, t.Name, string(t.Kind), t.Hash, toMicro(t.CreatedAt), toMicro(t.ExpiresAt))
	if err != nil {
		return fail(fmt.Sprintf("%s for user %q", op, t.UserID), err)
	}
	return nil
}

// GetAPITokenByHash returns the token with the given keyed hash.
func (s *Store) GetAPITokenByHash(ctx context.Context, hash string) (model.APIToken, error) {
	t, err := scanAPIToken(s.queryRow(ctx, s.reader(), "SELECT "+apiTokenColumns+" FROM api_tokens WHERE hash = ?", hash))
	if err != nil {
		return model.APIToken{}, fail("get API token", err)
	}
	return t, nil
}

// ListAPITokens lists the user's tokens, or everyone's for userID "".
func (s *Store) ListAPITokens(ctx context.Context, userID string) (ts []model.APIToken, err error) {
	const op = "list API tokens"
	q, args := "SELECT "+apiTokenColumns+" FROM api_tokens ORDER BY created_at, id", []any(nil)
	if userID != "" {
		q, args = "SELECT "+apiTokenColumns+" FROM api_tokens WHERE user_id = ? ORDER BY created_at, id", []any{userID}
	}
	rows, err := s.query(ctx, s.reader(), q, args...)
	if err != nil {
		return nil, fail(op, err)
	}
	defer closeRows(rows, &err)
	ts = []model.APIToken{}
	for rows.Next() {
		t, err := scanAPIToken(rows)
		if err != nil {
			return nil, fail(op, err)
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(op, err)
	}
	return ts, nil
}

// DeleteAPIToken removes the token and returns what it was.
func (s *Store) DeleteAPIToken(ctx context.Context, id string) (model.APIToken, error) {
	t, err := scanAPIToken(s.queryRow(ctx, s.writer(), "DELETE FROM api_tokens WHERE id = ? RETURNING "+apiTokenColumns, id))
	if err != nil {
		return model.APIToken{}, fail(fmt.Sprintf("delete API token %q", id), err)
	}
	return t, nil
}
