// Package directory is the service over users, groups and membership: it
// validates input, hashes passwords, and ends a user's sessions whenever
// their access changes (password, disabled, deleted).
package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// ErrInvalid wraps every input validation failure; the message says what is
// wrong and is safe to show to an administrator.
var ErrInvalid = errors.New("invalid input")

// MinPasswordLen follows NIST SP 800-63B for user-chosen passwords.
const MinPasswordLen = 8

var (
	usernameRE  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}$`)
	groupNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9 ._-]{0,63}$`)
)

// PasswordHasher turns a password into a stored hash.
type PasswordHasher interface {
	Hash(ctx context.Context, password string) (string, error)
}

// SessionRevoker ends every session of a user.
type SessionRevoker interface {
	RevokeUser(ctx context.Context, userID string) error
}

// Recorder keeps the audit record of directory changes.
type Recorder interface {
	Record(ctx context.Context, e model.AuditEvent)
}

// Options wires a Service.
type Options struct {
	Store  store.Store
	Hasher PasswordHasher
	// Revoker is told when a user's sessions must end. Nil means sessions
	// are only removed from the store (the CLI, where no cache exists).
	Revoker SessionRevoker
	// Audit records every change; nil records nothing.
	Audit  Recorder
	Now    func() time.Time
	Logger *slog.Logger
}

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, model.AuditEvent) {}

// Service is the directory.
type Service struct {
	o Options
}

// New returns the directory service.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Audit == nil {
		o.Audit = nopRecorder{}
	}
	return &Service{o: o}
}

// NewUser is the input of CreateUser.
type NewUser struct {
	Username    string
	Email       string
	DisplayName string
	// Password is hashed; empty leaves the user without a password (an
	// invitation or an imported hash sets one later).
	Password string
	// PasswordHash is a ready PHC hash (declarative config, imports); used
	// only when Password is empty.
	PasswordHash string
	Groups       []string
	Disabled     bool
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// ValidatePassword checks a new password against the policy.
func ValidatePassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinPasswordLen:
		return invalid("password must be at least %d characters", MinPasswordLen)
	case len(pw) > 1024:
		return invalid("password must be at most 1024 bytes")
	}
	return nil
}

func validateUser(username, email string) error {
	if !usernameRE.MatchString(username) {
		return invalid("username %q: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", username)
	}
	if email != "" {
		a, err := mail.ParseAddress(email)
		if err != nil || a.Address != email {
			return invalid("email %q is not a valid address", email)
		}
	}
	return nil
}

// CreateUser adds a user and its memberships in one transaction.
func (s *Service) CreateUser(ctx context.Context, in NewUser) (model.User, error) {
	in.Username = strings.TrimSpace(in.Username)
	if err := validateUser(in.Username, in.Email); err != nil {
		return model.User{}, err
	}
	hash := in.PasswordHash
	if in.Password != "" {
		if err := ValidatePassword(in.Password); err != nil {
			return model.User{}, err
		}
		h, err := s.o.Hasher.Hash(ctx, in.Password)
		if err != nil {
			return model.User{}, err
		}
		hash = h
	}
	now := s.o.Now().UTC()
	u := model.User{
		ID:           uuid.Must(uuid.NewV7()).String(),
		Username:     in.Username,
		Email:        in.Email,
		DisplayName:  in.DisplayName,
		Disabled:     in.Disabled,
		PasswordHash: hash,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	err := s.o.Store.InTx(ctx, func(tx store.Store) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("user %q: %w", in.Username, err)
			}
			return err
		}
		for _, name := range in.Groups {
			g, err := tx.GetGroupByName(ctx, name)
			if err != nil {
				return fmt.Errorf("group %q: %w", name, err)
			}
			if err := tx.AddMember(ctx, g.ID, u.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return model.User{}, err
	}
	s.o.Logger.Info("user created", "user", u.Username, "id", u.ID)
	s.record(ctx, "user.created", u.Username, map[string]string{"groups": strings.Join(in.Groups, ",")})
	return u, nil
}

// User finds a user by username.
func (s *Service) User(ctx context.Context, username string) (model.User, error) {
	u, err := s.o.Store.GetUserByUsername(ctx, username)
	if err != nil {
		return model.User{}, fmt.Errorf("user %q: %w", username, err)
	}
	return u, nil
}

// GetUser finds a user by id.
func (s *Service) GetUser(ctx context.Context, id string) (model.User, error) {
	return s.o.Store.GetUser(ctx, id)
}

// Users lists every user, ordered by username.
func (s *Service) Users(ctx context.Context) ([]model.User, error) {
	us, err := s.o.Store.ListUsers(ctx)
	sort.Slice(us, func(i, j int) bool { return strings.ToLower(us[i].Username) < strings.ToLower(us[j].Username) })
	return us, err
}

// GroupNames returns the names of the user's groups, sorted.
func (s *Service) GroupNames(ctx context.Context, userID string) ([]string, error) {
	gs, err := s.o.Store.GroupsOfUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
	}
	sort.Strings(names)
	return names, nil
}

// SetPassword replaces the user's password and ends all their sessions.
func (s *Service) SetPassword(ctx context.Context, username, password string) error {
	if err := ValidatePassword(password); err != nil {
		return err
	}
	hash, err := s.o.Hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	u, err := s.update(ctx, username, func(u *model.User) error { u.PasswordHash = hash; return nil })
	if err != nil {
		return err
	}
	s.o.Logger.Info("password changed", "user", u.Username)
	s.record(ctx, "user.password_changed", u.Username, nil)
	return s.revoke(ctx, u.ID)
}

// SetDisabled disables or enables a user; disabling ends all their sessions.
func (s *Service) SetDisabled(ctx context.Context, username string, disabled bool) error {
	u, err := s.update(ctx, username, func(u *model.User) error { u.Disabled = disabled; return nil })
	if err != nil {
		return err
	}
	s.o.Logger.Info("user disabled state changed", "user", u.Username, "disabled", disabled)
	if disabled {
		s.record(ctx, "user.disabled", u.Username, nil)
	} else {
		s.record(ctx, "user.enabled", u.Username, nil)
	}
	if disabled {
		return s.revoke(ctx, u.ID)
	}
	return nil
}

// UpdateProfile changes email and display name.
func (s *Service) UpdateProfile(ctx context.Context, username, email, displayName string) (model.User, error) {
	if err := validateUser(username, email); err != nil {
		return model.User{}, err
	}
	u, err := s.update(ctx, username, func(u *model.User) error {
		u.Email, u.DisplayName = email, displayName
		return nil
	})
	if err == nil {
		s.record(ctx, "user.updated", u.Username, nil)
	}
	return u, err
}

// DeleteUser removes a user, their memberships and sessions.
func (s *Service) DeleteUser(ctx context.Context, username string) error {
	u, err := s.User(ctx, username)
	if err != nil {
		return err
	}
	if err := s.o.Store.DeleteUser(ctx, u.ID); err != nil {
		return err
	}
	s.o.Logger.Info("user deleted", "user", u.Username)
	s.record(ctx, "user.deleted", u.Username, nil)
	return s.revoke(ctx, u.ID)
}

func (s *Service) update(ctx context.Context, username string, fn func(*model.User) error) (model.User, error) {
	u, err := s.User(ctx, username)
	if err != nil {
		return model.User{}, err
	}
	return s.o.Store.UpdateUser(ctx, u.ID, fn)
}

func (s *Service) revoke(ctx context.Context, userID string) error {
	if s.o.Revoker != nil {
		return s.o.Revoker.RevokeUser(ctx, userID)
	}
	_, err := s.o.Store.DeleteUserSessions(ctx, userID)
	return err
}

// CreateGroup adds a group.
func (s *Service) CreateGroup(ctx context.Context, name, description string) (model.Group, error) {
	name = strings.TrimSpace(name)
	if !groupNameRE.MatchString(name) {
		return model.Group{}, invalid("group name %q: use 1-64 letters, digits, spaces, '.', '_' or '-'", name)
	}
	g := model.Group{ID: uuid.Must(uuid.NewV7()).String(), Name: name, Description: description, CreatedAt: s.o.Now().UTC()}
	if err := s.o.Store.CreateGroup(ctx, g); err != nil {
		return model.Group{}, fmt.Errorf("group %q: %w", name, err)
	}
	s.o.Logger.Info("group created", "group", name)
	s.record(ctx, "group.created", name, nil)
	return g, nil
}

// Group finds a group by name.
func (s *Service) Group(ctx context.Context, name string) (model.Group, error) {
	g, err := s.o.Store.GetGroupByName(ctx, name)
	if err != nil {
		return model.Group{}, fmt.Errorf("group %q: %w", name, err)
	}
	return g, nil
}

// Groups lists every group, ordered by name.
func (s *Service) Groups(ctx context.Context) ([]model.Group, error) {
	gs, err := s.o.Store.ListGroups(ctx)
	sort.Slice(gs, func(i, j int) bool { return gs[i].Name < gs[j].Name })
	return gs, err
}

// Members lists the users in a group.
func (s *Service) Members(ctx context.Context, group string) ([]model.User, error) {
	g, err := s.Group(ctx, group)
	if err != nil {
		return nil, err
	}
	return s.o.Store.ListMembers(ctx, g.ID)
}

// DeleteGroup removes a group and its memberships.
func (s *Service) DeleteGroup(ctx context.Context, name string) error {
	g, err := s.Group(ctx, name)
	if err != nil {
		return err
	}
	if err := s.o.Store.DeleteGroup(ctx, g.ID); err != nil {
		return err
	}
	s.record(ctx, "group.deleted", name, nil)
	return nil
}

// AddMember puts a user into a group (idempotent).
func (s *Service) AddMember(ctx context.Context, group, username string) error {
	g, err := s.Group(ctx, group)
	if err != nil {
		return err
	}
	u, err := s.User(ctx, username)
	if err != nil {
		return err
	}
	if err := s.o.Store.AddMember(ctx, g.ID, u.ID); err != nil {
		return err
	}
	s.record(ctx, "group.member_added", u.Username, map[string]string{"group": g.Name})
	return nil
}

// RemoveMember takes a user out of a group.
func (s *Service) RemoveMember(ctx context.Context, group, username string) error {
	g, err := s.Group(ctx, group)
	if err != nil {
		return err
	}
	u, err := s.User(ctx, username)
	if err != nil {
		return err
	}
	if err := s.o.Store.RemoveMember(ctx, g.ID, u.ID); err != nil {
		return fmt.Errorf("%s is not a member of %s: %w", username, group, err)
	}
	s.record(ctx, "group.member_removed", u.Username, map[string]string{"group": g.Name})
	return nil
}

// Bootstrap creates the first administrator and its group when the
// directory has no users at all. It returns whether it created the user.
// The password is the given one; the caller generates a random one when
// none is configured and prints it once.
func (s *Service) Bootstrap(ctx context.Context, username, group, password string) (bool, error) {
	n, err := s.o.Store.CountUsers(ctx)
	if err != nil || n > 0 {
		return false, err
	}
	if _, err := s.o.Store.GetGroupByName(ctx, group); errors.Is(err, store.ErrNotFound) {
		if _, err := s.CreateGroup(ctx, group, "Administrators"); err != nil && !errors.Is(err, store.ErrConflict) {
			return false, err
		}
	} else if err != nil {
		return false, err
	}
	_, err = s.CreateUser(ctx, NewUser{Username: username, DisplayName: "Administrator", Password: password, Groups: []string{group}})
	if errors.Is(err, store.ErrConflict) {
		return false, nil // another replica bootstrapped first
	}
	return err == nil, err
}

func (s *Service) record(ctx context.Context, action, subject string, detail map[string]string) {
	s.o.Audit.Record(ctx, model.AuditEvent{Action: action, Subject: subject, Detail: detail})
}
