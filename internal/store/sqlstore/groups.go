package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

const groupColumns = "g.id, g.name, g.description, g.created_at"

func scanGroup(sc scanner) (model.Group, error) {
	var (
		g       model.Group
		created int64
	)
	if err := sc.Scan(&g.ID, &g.Name, &g.Description, &created); err != nil {
		return model.Group{}, err
	}
	g.CreatedAt = fromMicro(created)
	return g, nil
}

// CreateGroup inserts g; a missing CreatedAt is set to now. A taken ID or
// name is store.ErrConflict.
func (s *Store) CreateGroup(ctx context.Context, g model.Group) error {
	op := fmt.Sprintf("create group %q", g.Name)
	switch {
	case g.ID == "":
		return fail(op, errors.New("group ID is empty"))
	case strings.TrimSpace(g.Name) == "":
		return fail(op, errors.New("group name is empty"))
	}
	if g.CreatedAt.IsZero() {
		g.CreatedAt = s.nowMicro()
	}
	_, err := s.exec(ctx, s.writer(),
		"INSERT INTO groups (id, name, description, created_at) VALUES (?, ?, ?, ?)",
		g.ID, g.Name, g.Description, toMicro(g.CreatedAt))
	if err != nil {
		return fail(op, err)
	}
	return nil
}

// GetGroup returns the group with the given ID.
func (s *Store) GetGroup(ctx context.Context, id string) (model.Group, error) {
	g, err := scanGroup(s.queryRow(ctx, s.reader(), "SELECT "+groupColumns+" FROM groups g WHERE g.id = ?", id))
	if err != nil {
		return model.Group{}, fail(fmt.Sprintf("get group %q", id), err)
	}
	return g, nil
}

// GetGroupByName matches name exactly, case included.
func (s *Store) GetGroupByName(ctx context.Context, name string) (model.Group, error) {
	g, err := scanGroup(s.queryRow(ctx, s.reader(), "SELECT "+groupColumns+" FROM groups g WHERE g.name = ?", name))
	if err != nil {
		return model.Group{}, fail(fmt.Sprintf("get group by name %q", name), err)
	}
	return g, nil
}

// ListGroups returns every group ordered by name (byte order).
func (s *Store) ListGroups(ctx context.Context) ([]model.Group, error) {
	return s.listGroups(ctx, "list groups", "SELECT "+groupColumns+" FROM groups g ORDER BY g.name"+s.d.byteOrder)
}

func (s *Store) listGroups(ctx context.Context, op, query string, args ...any) (gs []model.Group, err error) {
	rows, err := s.query(ctx, s.reader(), query, args...)
	if err != nil {
		return nil, fail(op, err)
	}
	defer closeRows(rows, &err)
	gs = []model.Group{}
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, fail(op, err)
		}
		gs = append(gs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(op, err)
	}
	return gs, nil
}

// DeleteGroup removes the group and, by cascade, its memberships.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	op := fmt.Sprintf("delete group %q", id)
	res, err := s.exec(ctx, s.writer(), "DELETE FROM groups WHERE id = ?", id)
	if err != nil {
		return fail(op, err)
	}
	return mustAffect(op, res)
}

// AddMember puts the user in the group; adding an existing member is a
// no-op, an unknown user or group is store.ErrNotFound.
func (s *Store) AddMember(ctx context.Context, groupID, userID string) error {
	op := fmt.Sprintf("add user %q to group %q", userID, groupID)
	// Selecting the pair from the parent tables inserts nothing when either
	// is missing, instead of failing on the foreign key: on PostgreSQL a
	// failed statement would abort a surrounding InTx.
	res, err := s.exec(ctx, s.writer(), `INSERT INTO group_members (group_id, user_id)
		SELECT g.id, u.id FROM groups g, users u WHERE g.id = ? AND u.id = ?
		ON CONFLICT (group_id, user_id) DO NOTHING`, groupID, userID)
	if err != nil {
		return fail(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail(op, err)
	}
	if n > 0 {
		return nil
	}
	// Nothing inserted: either already a member (fine) or a parent is
	// missing. Ask the writer, which has seen its own insert attempt.
	ok, err := s.exists(ctx, s.writer(), "SELECT 1 FROM group_members WHERE group_id = ? AND user_id = ?", groupID, userID)
	if err != nil {
		return fail(op, err)
	}
	if !ok {
		return fmt.Errorf("sqlstore: %s: %w", op, store.ErrNotFound)
	}
	return nil
}

// RemoveMember takes the user out of the group; store.ErrNotFound when the
// user was not a member.
func (s *Store) RemoveMember(ctx context.Context, groupID, userID string) error {
	op := fmt.Sprintf("remove user %q from group %q", userID, groupID)
	res, err := s.exec(ctx, s.writer(), "DELETE FROM group_members WHERE group_id = ? AND user_id = ?", groupID, userID)
	if err != nil {
		return fail(op, err)
	}
	return mustAffect(op, res)
}

// ListMembers returns the group's users ordered by username; an unknown
// group is store.ErrNotFound.
func (s *Store) ListMembers(ctx context.Context, groupID string) ([]model.User, error) {
	op := fmt.Sprintf("list members of group %q", groupID)
	us, err := s.listUsers(ctx, op, "SELECT "+prefixColumns("u.", userColumns)+
		" FROM users u JOIN group_members m ON m.user_id = u.id WHERE m.group_id = ? ORDER BY u.username_key"+s.d.byteOrder,
		groupID)
	if err != nil || len(us) > 0 {
		return us, err
	}
	if err := s.mustExist(ctx, op, "SELECT 1 FROM groups WHERE id = ?", groupID); err != nil {
		return nil, err
	}
	return us, nil
}

// GroupsOfUser returns the user's groups ordered by name (byte order); an
// unknown user is store.ErrNotFound.
func (s *Store) GroupsOfUser(ctx context.Context, userID string) ([]model.Group, error) {
	op := fmt.Sprintf("list groups of user %q", userID)
	gs, err := s.listGroups(ctx, op, "SELECT "+groupColumns+
		" FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.name"+s.d.byteOrder,
		userID)
	if err != nil || len(gs) > 0 {
		return gs, err
	}
	if err := s.mustExist(ctx, op, "SELECT 1 FROM users WHERE id = ?", userID); err != nil {
		return nil, err
	}
	return gs, nil
}

// mustExist is store.ErrNotFound unless query finds a row; lists use it to
// tell "no members" from "no such group".
func (s *Store) mustExist(ctx context.Context, op, query string, args ...any) error {
	ok, err := s.exists(ctx, s.reader(), query, args...)
	if err != nil {
		return fail(op, err)
	}
	if !ok {
		return fmt.Errorf("sqlstore: %s: %w", op, store.ErrNotFound)
	}
	return nil
}

// prefixColumns qualifies a comma-separated column list with a table alias.
func prefixColumns(prefix, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, p := range parts {
		parts[i] = prefix + p
	}
	return strings.Join(parts, ", ")
}
