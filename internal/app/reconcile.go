package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-sso/gatehouse/internal/audit"
	"github.com/gatehouse-sso/gatehouse/internal/directory"
	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// ReconcileDirectory makes the groups and users declared in the
// configuration exist as declared (GitOps). It creates what is missing and
// updates what differs; it never deletes anything the file does not name,
// and it leaves a declared user's password alone once the user exists, so a
// password changed by its owner is not reverted on the next start.
func (a *App) ReconcileDirectory(ctx context.Context) error {
	ctx = audit.WithActor(ctx, "config", "")
	for _, g := range a.Config.Groups {
		if _, err := a.Store.GetGroupByName(ctx, g.Name); errors.Is(err, store.ErrNotFound) {
			if _, err := a.Directory.CreateGroup(ctx, g.Name, g.Description); err != nil && !errors.Is(err, store.ErrConflict) {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	for _, cu := range a.Config.Users {
		u, err := a.Store.GetUserByUsername(ctx, cu.Username)
		if errors.Is(err, store.ErrNotFound) {
			_, err = a.Directory.CreateUser(ctx, directory.NewUser{
				Username: cu.Username, Email: cu.Email, DisplayName: cu.Name,
				PasswordHash: cu.PasswordHash, Groups: cu.Groups, Disabled: cu.Disabled,
			})
			if err != nil && !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("declared user %q: %w", cu.Username, err)
			}
			continue
		}
		if err != nil {
			return err
		}
		if u.Email != cu.Email || u.DisplayName != cu.Name {
			if _, err := a.Directory.UpdateProfile(ctx, u.Username, cu.Email, cu.Name); err != nil {
				return fmt.Errorf("declared user %q: %w", cu.Username, err)
			}
		}
		if u.Disabled != cu.Disabled {
			if err := a.Directory.SetDisabled(ctx, u.Username, cu.Disabled); err != nil {
				return err
			}
		}
		if err := a.syncMemberships(ctx, u, cu.Groups); err != nil {
			return fmt.Errorf("declared user %q: %w", cu.Username, err)
		}
	}
	return nil
}

// syncMemberships sets a declared user's groups to exactly the declared
// ones.
func (a *App) syncMemberships(ctx context.Context, u model.User, want []string) error {
	have, err := a.Store.GroupsOfUser(ctx, u.ID)
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, g := range want {
		wanted[g] = true
	}
	for _, g := range have {
		if !wanted[g.Name] {
			if err := a.Directory.RemoveMember(ctx, g.Name, u.Username); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		delete(wanted, g.Name)
	}
	for name := range wanted {
		if err := a.Directory.AddMember(ctx, name, u.Username); err != nil {
			return err
		}
	}
	return nil
}
