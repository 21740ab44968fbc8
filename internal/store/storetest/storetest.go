// Package storetest is the conformance suite for store.Store: every backend
// runs it from its own tests, so all of them behave alike, down to the
// sentinel errors, orderings and edge cases the rest of Gatehouse relies on.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t) })
//	}
package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// base is the suite's clock: fixed, in UTC, at microsecond precision (what
// the SQL backends keep).
var base = time.Date(2030, 3, 4, 5, 6, 7, 123456000, time.UTC)

var errBoom = errors.New("boom")

type testCase struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// Run runs the suite. open must return a new, empty, migrated store for
// each call; the subtests run in parallel, each with a store of its own,
// and Run closes each store when its subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	var cases []testCase
	cases = append(cases, userCases...)
	cases = append(cases, groupCases...)
	cases = append(cases, sessionCases...)
	cases = append(cases, throttleCases...)
	cases = append(cases, forwardAuthCases...)
	cases = append(cases, auditCases...)
	cases = append(cases, oidcCases...)
	cases = append(cases, workerCases...)
	cases = append(cases, txCases...)
	cases = append(cases, concurrencyCases...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// ---------------------------------------------------------------- users

var userCases = []testCase{
	{"Users/CreateAndGet", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		want := model.User{
			ID: "u1", Username: "Alice", Email: "alice@example.com", DisplayName: "Alice Liddell",
			Disabled: true, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
			// Another zone on the way in; UTC on the way out.
			CreatedAt: base.In(time.FixedZone("CEST", 2*3600)), UpdatedAt: base.Add(time.Minute),
		}
		mustNil(t, s.CreateUser(ctx, want))
		got, err := s.GetUser(ctx, "u1")
		mustNil(t, err)
		checkUser(t, got, want)
	}},
	{"Users/CreateDefaultsTimestamps", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		before := time.Now().Add(-time.Second)
		mustNil(t, s.CreateUser(ctx, model.User{ID: "u1", Username: "alice"}))
		got, err := s.GetUser(ctx, "u1")
		mustNil(t, err)
		if got.CreatedAt.Before(before) || !got.UpdatedAt.Equal(got.CreatedAt) {
			t.Errorf("CreatedAt=%v UpdatedAt=%v, want both set to now", got.CreatedAt, got.UpdatedAt)
		}
	}},
	{"Users/CreateRejectsMissingFields", func(t *testing.T, s store.Store) {
		for _, u := range []model.User{{Username: "noid"}, {ID: "noname"}} {
			if err := s.CreateUser(t.Context(), u); err == nil {
				t.Errorf("CreateUser(%+v) = nil, want an error", u)
			}
		}
		checkCount(t, s, 0)
	}},
	{"Users/GetByUsernameIsCaseInsensitive", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "Alice")
		for _, tc := range []struct {
			lookup string
			found  bool
		}{
			{"Alice", true}, {"alice", true}, {"ALICE", true}, {"aLiCe", true},
			{"alic", false}, {"alice ", false}, {"", false},
		} {
			got, err := s.GetUserByUsername(ctx, tc.lookup)
			switch {
			case tc.found && err != nil:
				t.Errorf("GetUserByUsername(%q): %v", tc.lookup, err)
			case tc.found && (got.ID != "u1" || got.Username != "Alice"):
				t.Errorf("GetUserByUsername(%q) = %q/%q, want u1/Alice (case as created)", tc.lookup, got.ID, got.Username)
			case !tc.found && !errors.Is(err, store.ErrNotFound):
				t.Errorf("GetUserByUsername(%q) error = %v, want ErrNotFound", tc.lookup, err)
			}
		}
	}},
	{"Users/Conflicts", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		first := mustUser(t, s, "u1", "alice")
		for _, tc := range []struct {
			name string
			u    model.User
		}{
			{"same ID", model.User{ID: "u1", Username: "bob"}},
			{"same username", model.User{ID: "u2", Username: "alice"}},
			{"username in other case", model.User{ID: "u3", Username: "ALICE"}},
		} {
			if err := s.CreateUser(ctx, tc.u); !errors.Is(err, store.ErrConflict) {
				t.Errorf("%s: CreateUser error = %v, want ErrConflict", tc.name, err)
			}
		}
		checkCount(t, s, 1)
		got, err := s.GetUser(ctx, "u1")
		mustNil(t, err)
		checkUser(t, got, first)
	}},
	{"Users/NotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		called := false
		for name, call := range map[string]func() error{
			"GetUser":           func() error { _, err := s.GetUser(ctx, "nope"); return err },
			"GetUserByUsername": func() error { _, err := s.GetUserByUsername(ctx, "nope"); return err },
			"UpdateUser": func() error {
				_, err := s.UpdateUser(ctx, "nope", func(*model.User) error { called = true; return nil })
				return err
			},
			"DeleteUser": func() error { return s.DeleteUser(ctx, "nope") },
		} {
			if err := call(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s(unknown) error = %v, want ErrNotFound", name, err)
			}
		}
		if called {
			t.Error("UpdateUser called fn for an unknown user")
		}
	}},
	{"Users/ListAndCount", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		list, err := s.ListUsers(ctx)
		mustNil(t, err)
		if len(list) != 0 {
			t.Fatalf("ListUsers on an empty store = %d users", len(list))
		}
		checkCount(t, s, 0)
		for i, name := range []string{"charlie", "Alice", "bob"} {
			mustUser(t, s, fmt.Sprintf("u%d", i), name)
		}
		list, err = s.ListUsers(ctx)
		mustNil(t, err)
		checkNames(t, "ListUsers", usernames(list), []string{"Alice", "bob", "charlie"})
		checkCount(t, s, 3)
	}},
	{"Users/Update", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		old := model.User{ID: "u1", Username: "alice", Email: "a@example.com", CreatedAt: base, UpdatedAt: base}
		mustNil(t, s.CreateUser(ctx, old))
		got, err := s.UpdateUser(ctx, "u1", func(u *model.User) error {
			checkUser(t, *u, old)
			u.Username = "Alicia"
			u.Email = "alicia@example.com"
			u.DisplayName = "Alicia"
			u.Disabled = true
			u.PasswordHash = "$argon2id$new"
			return nil
		})
		mustNil(t, err)
		if !got.UpdatedAt.After(old.UpdatedAt) {
			t.Errorf("UpdatedAt = %v, want after %v", got.UpdatedAt, old.UpdatedAt)
		}
		want := model.User{
			ID: "u1", Username: "Alicia", Email: "alicia@example.com", DisplayName: "Alicia",
			Disabled: true, PasswordHash: "$argon2id$new", CreatedAt: base, UpdatedAt: got.UpdatedAt,
		}
		checkUser(t, got, want)
		stored, err := s.GetUser(ctx, "u1")
		mustNil(t, err)
		checkUser(t, stored, want)
		if _, err := s.GetUserByUsername(ctx, "ALICIA"); err != nil {
			t.Errorf("lookup by the new username: %v", err)
		}
		if _, err := s.GetUserByUsername(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("lookup by the old username: error = %v, want ErrNotFound", err)
		}
		// A rename that only changes case is not a conflict with itself.
		got, err = s.UpdateUser(ctx, "u1", func(u *model.User) error { u.Username = "ALICIA"; return nil })
		mustNil(t, err)
		if got.Username != "ALICIA" {
			t.Errorf("Username = %q, want ALICIA", got.Username)
		}
	}},
	{"Users/UpdateConflict", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		bob := mustUser(t, s, "u2", "bob")
		_, err := s.UpdateUser(ctx, "u2", func(u *model.User) error { u.Username = "Alice"; return nil })
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("rename onto a taken username: error = %v, want ErrConflict", err)
		}
		got, err := s.GetUser(ctx, "u2")
		mustNil(t, err)
		checkUser(t, got, bob)
	}},
	{"Users/UpdateClosureErrorLeavesRowUnchanged", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		old := mustUser(t, s, "u1", "alice")
		_, err := s.UpdateUser(ctx, "u1", func(u *model.User) error {
			u.Email = "changed@example.com"
			u.Disabled = true
			return fmt.Errorf("validation: %w", errBoom)
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("UpdateUser error = %v, want the closure's error", err)
		}
		got, err := s.GetUser(ctx, "u1")
		mustNil(t, err)
		checkUser(t, got, old)
	}},
	{"Users/UpdateMustNotChangeIdentity", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		old := mustUser(t, s, "u1", "alice")
		for name, fn := range map[string]func(*model.User){
			"ID":        func(u *model.User) { u.ID = "u2" },
			"CreatedAt": func(u *model.User) { u.CreatedAt = u.CreatedAt.Add(time.Hour) },
		} {
			_, err := s.UpdateUser(ctx, "u1", func(u *model.User) error { fn(u); return nil })
			if err == nil {
				t.Errorf("UpdateUser changing %s = nil, want an error", name)
			}
		}
		got, err := s.GetUser(ctx, "u1")
		mustNil(t, err)
		checkUser(t, got, old)
		if _, err := s.GetUser(ctx, "u2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetUser(u2) error = %v, want ErrNotFound", err)
		}
	}},
	{"Users/DeleteCascades", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustUser(t, s, "u2", "bob")
		mustGroup(t, s, "g1", "admins")
		mustGroup(t, s, "g2", "devs")
		for _, m := range [][2]string{{"g1", "u1"}, {"g2", "u1"}, {"g1", "u2"}} {
			mustNil(t, s.AddMember(ctx, m[0], m[1]))
		}
		mustSession(t, s, "s1", "u1")
		mustSession(t, s, "s2", "u1")
		mustSession(t, s, "s3", "u2")

		mustNil(t, s.DeleteUser(ctx, "u1"))

		if _, err := s.GetUser(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetUser after delete: error = %v, want ErrNotFound", err)
		}
		for _, id := range []string{"s1", "s2"} {
			if _, err := s.GetSession(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetSession(%s) after deleting its user: error = %v, want ErrNotFound", id, err)
			}
		}
		if _, err := s.GetSession(ctx, "s3"); err != nil {
			t.Errorf("another user's session: %v", err)
		}
		members, err := s.ListMembers(ctx, "g1")
		mustNil(t, err)
		checkNames(t, "ListMembers(g1)", usernames(members), []string{"bob"})
		members, err = s.ListMembers(ctx, "g2")
		mustNil(t, err)
		checkNames(t, "ListMembers(g2)", usernames(members), nil)
		if _, err := s.GroupsOfUser(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GroupsOfUser(deleted user) error = %v, want ErrNotFound", err)
		}
		if err := s.DeleteUser(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second DeleteUser error = %v, want ErrNotFound", err)
		}
		checkCount(t, s, 1)
	}},
	{"Ping", func(t *testing.T, s store.Store) {
		mustNil(t, s.Ping(t.Context()))
	}},
}

// ---------------------------------------------------------------- groups

var groupCases = []testCase{
	{"Groups/CreateAndGet", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		want := model.Group{ID: "g1", Name: "admins", Description: "Can do anything", CreatedAt: base}
		mustNil(t, s.CreateGroup(ctx, want))
		got, err := s.GetGroup(ctx, "g1")
		mustNil(t, err)
		checkGroup(t, got, want)
		got, err = s.GetGroupByName(ctx, "admins")
		mustNil(t, err)
		checkGroup(t, got, want)
	}},
	{"Groups/CreateDefaultsCreatedAt", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustNil(t, s.CreateGroup(ctx, model.Group{ID: "g1", Name: "admins"}))
		got, err := s.GetGroup(ctx, "g1")
		mustNil(t, err)
		if got.CreatedAt.IsZero() {
			t.Error("CreatedAt not set")
		}
	}},
	{"Groups/GetByNameIsCaseSensitive", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustGroup(t, s, "g1", "Admins")
		for _, name := range []string{"admins", "ADMINS", "Admin"} {
			if _, err := s.GetGroupByName(ctx, name); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetGroupByName(%q) error = %v, want ErrNotFound", name, err)
			}
		}
		// Names that differ in case are different groups.
		mustNil(t, s.CreateGroup(ctx, model.Group{ID: "g2", Name: "admins", CreatedAt: base}))
		got, err := s.GetGroupByName(ctx, "admins")
		mustNil(t, err)
		if got.ID != "g2" {
			t.Errorf("GetGroupByName(admins) = %s, want g2", got.ID)
		}
	}},
	{"Groups/Conflicts", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustGroup(t, s, "g1", "admins")
		for name, g := range map[string]model.Group{
			"same ID":   {ID: "g1", Name: "other"},
			"same name": {ID: "g2", Name: "admins"},
		} {
			if err := s.CreateGroup(ctx, g); !errors.Is(err, store.ErrConflict) {
				t.Errorf("%s: CreateGroup error = %v, want ErrConflict", name, err)
			}
		}
	}},
	{"Groups/NotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for name, call := range map[string]func() error{
			"GetGroup":       func() error { _, err := s.GetGroup(ctx, "nope"); return err },
			"GetGroupByName": func() error { _, err := s.GetGroupByName(ctx, "nope"); return err },
			"DeleteGroup":    func() error { return s.DeleteGroup(ctx, "nope") },
			"ListMembers":    func() error { _, err := s.ListMembers(ctx, "nope"); return err },
			"GroupsOfUser":   func() error { _, err := s.GroupsOfUser(ctx, "nope"); return err },
		} {
			if err := call(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s(unknown) error = %v, want ErrNotFound", name, err)
			}
		}
	}},
	{"Groups/ListOrderedByName", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		list, err := s.ListGroups(ctx)
		mustNil(t, err)
		if len(list) != 0 {
			t.Fatalf("ListGroups on an empty store = %d groups", len(list))
		}
		for i, name := range []string{"ops", "admins", "dev", "Admins"} {
			mustGroup(t, s, fmt.Sprintf("g%d", i), name)
		}
		list, err = s.ListGroups(ctx)
		mustNil(t, err)
		// Byte order: upper case sorts before lower case.
		checkNames(t, "ListGroups", groupNames(list), []string{"Admins", "admins", "dev", "ops"})
	}},
	{"Groups/DeleteCascadesMemberships", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustGroup(t, s, "g1", "admins")
		mustGroup(t, s, "g2", "devs")
		mustNil(t, s.AddMember(ctx, "g1", "u1"))
		mustNil(t, s.AddMember(ctx, "g2", "u1"))
		mustNil(t, s.DeleteGroup(ctx, "g1"))
		if _, err := s.GetGroup(ctx, "g1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetGroup after delete: error = %v, want ErrNotFound", err)
		}
		if _, err := s.GetUser(ctx, "u1"); err != nil {
			t.Errorf("the member must survive its group: %v", err)
		}
		groups, err := s.GroupsOfUser(ctx, "u1")
		mustNil(t, err)
		checkNames(t, "GroupsOfUser", groupNames(groups), []string{"devs"})
	}},
	{"Members/AddIsIdempotent", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustGroup(t, s, "g1", "admins")
		for range 3 {
			mustNil(t, s.AddMember(ctx, "g1", "u1"))
		}
		members, err := s.ListMembers(ctx, "g1")
		mustNil(t, err)
		checkNames(t, "ListMembers", usernames(members), []string{"alice"})
	}},
	{"Members/AddUnknownIsNotFound", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustGroup(t, s, "g1", "admins")
		for _, tc := range []struct{ name, group, user string }{
			{"unknown user", "g1", "nope"},
			{"unknown group", "nope", "u1"},
			{"both unknown", "nope", "nope"},
		} {
			if err := s.AddMember(ctx, tc.group, tc.user); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: AddMember error = %v, want ErrNotFound", tc.name, err)
			}
		}
		members, err := s.ListMembers(ctx, "g1")
		mustNil(t, err)
		checkNames(t, "ListMembers", usernames(members), nil)
	}},
	{"Members/Remove", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustUser(t, s, "u2", "bob")
		mustGroup(t, s, "g1", "admins")
		mustNil(t, s.AddMember(ctx, "g1", "u1"))
		mustNil(t, s.AddMember(ctx, "g1", "u2"))
		mustNil(t, s.RemoveMember(ctx, "g1", "u1"))
		members, err := s.ListMembers(ctx, "g1")
		mustNil(t, err)
		checkNames(t, "ListMembers", usernames(members), []string{"bob"})
		for _, tc := range []struct{ name, group, user string }{
			{"not a member any more", "g1", "u1"},
			{"unknown group", "nope", "u2"},
			{"unknown user", "g1", "nope"},
		} {
			if err := s.RemoveMember(ctx, tc.group, tc.user); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: RemoveMember error = %v, want ErrNotFound", tc.name, err)
			}
		}
	}},
	{"Members/ListMembersOrderedByUsername", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustGroup(t, s, "g1", "admins")
		mustGroup(t, s, "g2", "empty")
		for i, name := range []string{"carol", "Alice", "bob"} {
			id := fmt.Sprintf("u%d", i)
			mustUser(t, s, id, name)
			mustNil(t, s.AddMember(ctx, "g1", id))
		}
		members, err := s.ListMembers(ctx, "g1")
		mustNil(t, err)
		checkNames(t, "ListMembers", usernames(members), []string{"Alice", "bob", "carol"})
		full, err := s.GetUser(ctx, "u1")
		mustNil(t, err)
		checkUser(t, members[0], full)
		members, err = s.ListMembers(ctx, "g2")
		mustNil(t, err)
		checkNames(t, "ListMembers(empty group)", usernames(members), nil)
	}},
	{"Members/GroupsOfUserOrderedByName", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustUser(t, s, "u2", "lonely")
		for i, name := range []string{"zeta", "beta", "Alpha", "alpha"} {
			id := fmt.Sprintf("g%d", i)
			mustGroup(t, s, id, name)
			mustNil(t, s.AddMember(ctx, id, "u1"))
		}
		mustGroup(t, s, "other", "not-mine")
		groups, err := s.GroupsOfUser(ctx, "u1")
		mustNil(t, err)
		checkNames(t, "GroupsOfUser", groupNames(groups), []string{"Alpha", "alpha", "beta", "zeta"})
		full, err := s.GetGroup(ctx, "g2")
		mustNil(t, err)
		checkGroup(t, groups[0], full)
		groups, err = s.GroupsOfUser(ctx, "u2")
		mustNil(t, err)
		checkNames(t, "GroupsOfUser(no groups)", groupNames(groups), nil)
	}},
}

// ---------------------------------------------------------------- sessions

var sessionCases = []testCase{
	{"Sessions/CreateAndGet", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		want := model.Session{
			ID: "5e55", UserID: "u1", Level: model.LevelTwoFactor,
			CreatedAt: base, LastSeenAt: base.Add(time.Minute), ExpiresAt: base.Add(12 * time.Hour),
			IdleTimeout: 30*time.Minute + 1500*time.Microsecond,
			ClientIP:    "2001:db8::1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)",
		}
		mustNil(t, s.CreateSession(ctx, want))
		got, err := s.GetSession(ctx, "5e55")
		mustNil(t, err)
		checkSession(t, got, want)
	}},
	{"Sessions/Conflict", func(t *testing.T, s store.Store) {
		mustUser(t, s, "u1", "alice")
		mustSession(t, s, "s1", "u1")
		err := s.CreateSession(t.Context(), session("s1", "u1"))
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateSession with a taken ID: error = %v, want ErrConflict", err)
		}
	}},
	{"Sessions/UnknownUserIsNotFound", func(t *testing.T, s store.Store) {
		err := s.CreateSession(t.Context(), session("s1", "nope"))
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CreateSession for an unknown user: error = %v, want ErrNotFound", err)
		}
	}},
	{"Sessions/GetAndDelete", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustSession(t, s, "s1", "u1")
		mustSession(t, s, "s2", "u1")
		mustNil(t, s.DeleteSession(ctx, "s1"))
		if _, err := s.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSession after delete: error = %v, want ErrNotFound", err)
		}
		if _, err := s.GetSession(ctx, "s2"); err != nil {
			t.Errorf("the other session: %v", err)
		}
		if err := s.DeleteSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second DeleteSession: error = %v, want ErrNotFound", err)
		}
		if _, err := s.GetSession(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSession(unknown): error = %v, want ErrNotFound", err)
		}
	}},
	{"Sessions/TouchBatch", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		for _, id := range []string{"s1", "s2", "s3"} {
			mustSession(t, s, id, "u1")
		}
		mustNil(t, s.TouchSessions(ctx, nil))
		mustNil(t, s.TouchSessions(ctx, map[string]time.Time{
			"s1":      base.Add(10 * time.Minute),
			"s2":      base.Add(20*time.Minute + time.Microsecond),
			"unknown": base.Add(time.Minute),
		}))
		// Going back in time is ignored: a late batch must not make an
		// active session look idle.
		mustNil(t, s.TouchSessions(ctx, map[string]time.Time{"s1": base.Add(5 * time.Minute)}))
		for id, want := range map[string]time.Time{
			"s1": base.Add(10 * time.Minute),
			"s2": base.Add(20*time.Minute + time.Microsecond),
			"s3": base, // untouched
		} {
			got, err := s.GetSession(ctx, id)
			mustNil(t, err)
			if !got.LastSeenAt.Equal(want) {
				t.Errorf("%s: LastSeenAt = %v, want %v", id, got.LastSeenAt, want)
			}
		}
		if _, err := s.GetSession(ctx, "unknown"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TouchSessions created a session for an unknown id: %v", err)
		}
	}},
	{"Sessions/DeleteUserSessions", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		mustUser(t, s, "u2", "bob")
		for _, id := range []string{"sc", "sa", "sb"} {
			mustSession(t, s, id, "u1")
		}
		mustSession(t, s, "sz", "u2")
		ids, err := s.DeleteUserSessions(ctx, "u1")
		mustNil(t, err)
		slices.Sort(ids)
		checkNames(t, "DeleteUserSessions", ids, []string{"sa", "sb", "sc"})
		for _, id := range ids {
			if _, err := s.GetSession(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetSession(%s) after DeleteUserSessions: error = %v", id, err)
			}
		}
		if _, err := s.GetSession(ctx, "sz"); err != nil {
			t.Errorf("another user's session: %v", err)
		}
		ids, err = s.DeleteUserSessions(ctx, "u1")
		mustNil(t, err)
		checkNames(t, "second DeleteUserSessions", ids, nil)
		ids, err = s.DeleteUserSessions(ctx, "nope")
		mustNil(t, err)
		checkNames(t, "DeleteUserSessions(unknown user)", ids, nil)
	}},
	{"Sessions/DeleteExpired", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u1", "alice")
		now := base.Add(24 * time.Hour)
		cases := []struct {
			id          string
			lastSeen    time.Duration // relative to now
			expires     time.Duration // relative to now
			idle        time.Duration
			wantDeleted bool
		}{
			{"absolute-past", -time.Minute, -time.Microsecond, 0, true},
			{"absolute-now", -time.Minute, 0, 0, true},
			{"absolute-future", -48 * time.Hour, time.Microsecond, 0, false},
			{"idle-past", -31 * time.Minute, time.Hour, 30 * time.Minute, true},
			{"idle-exactly", -30 * time.Minute, time.Hour, 30 * time.Minute, true},
			{"idle-fresh", -30*time.Minute + time.Microsecond, time.Hour, 30 * time.Minute, false},
			{"idle-fresh-but-absolute-past", 0, -time.Second, 30 * time.Minute, true},
		}
		wantN := 0
		for _, c := range cases {
			ss := model.Session{
				ID: c.id, UserID: "u1", Level: model.LevelPassword, CreatedAt: now.Add(-72 * time.Hour),
				LastSeenAt: now.Add(c.lastSeen), ExpiresAt: now.Add(c.expires), IdleTimeout: c.idle,
			}
			// The store and model.Session.ActiveAt must agree.
			if ss.ActiveAt(now) == c.wantDeleted {
				t.Fatalf("%s: test case disagrees with ActiveAt", c.id)
			}
			mustNil(t, s.CreateSession(ctx, ss))
			if c.wantDeleted {
				wantN++
			}
		}
		n, err := s.DeleteExpiredSessions(ctx, now)
		mustNil(t, err)
		if n != wantN {
			t.Errorf("DeleteExpiredSessions = %d, want %d", n, wantN)
		}
		for _, c := range cases {
			_, err := s.GetSession(ctx, c.id)
			if gone := errors.Is(err, store.ErrNotFound); gone != c.wantDeleted {
				t.Errorf("%s: deleted = %v, want %v (err %v)", c.id, gone, c.wantDeleted, err)
			}
		}
		n, err = s.DeleteExpiredSessions(ctx, now)
		mustNil(t, err)
		if n != 0 {
			t.Errorf("second DeleteExpiredSessions = %d, want 0", n)
		}
	}},
}

// ---------------------------------------------------------------- throttle

var throttleCases = []testCase{
	{"Throttle/UnknownKeyIsZeroState", func(t *testing.T, s store.Store) {
		got, err := s.GetThrottle(t.Context(), "user:nobody")
		mustNil(t, err)
		checkThrottle(t, got, model.ThrottleState{Key: "user:nobody"})
	}},
	{"Throttle/WindowAndLockout", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const (
			key     = "user:alice"
			window  = 10 * time.Minute
			limit   = 3
			lockout = 15 * time.Minute
		)
		steps := []struct {
			name string
			at   time.Duration // after base
			want model.ThrottleState
		}{
			{"first failure opens a window", 0,
				model.ThrottleState{Key: key, Failures: 1, WindowStart: base}},
			{"second failure in the window", time.Minute,
				model.ThrottleState{Key: key, Failures: 2, WindowStart: base}},
			{"limit reached locks", 2 * time.Minute,
				model.ThrottleState{Key: key, Failures: 3, WindowStart: base, LockedUntil: base.Add(2*time.Minute + lockout)}},
			{"past the limit extends the lock", 3 * time.Minute,
				model.ThrottleState{Key: key, Failures: 4, WindowStart: base, LockedUntil: base.Add(3*time.Minute + lockout)}},
			{"window passed: new window, lock kept", window,
				model.ThrottleState{Key: key, Failures: 1, WindowStart: base.Add(window), LockedUntil: base.Add(3*time.Minute + lockout)}},
		}
		for _, st := range steps {
			got, err := s.RecordFailure(ctx, key, base.Add(st.at), window, limit, lockout)
			mustNil(t, err)
			checkThrottle(t, got, st.want)
			stored, err := s.GetThrottle(ctx, key)
			mustNil(t, err)
			checkThrottle(t, stored, st.want)
		}
	}},
	{"Throttle/LockIsNeverShortened", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		_, err := s.RecordFailure(ctx, "k", base, time.Minute, 1, time.Hour)
		mustNil(t, err)
		got, err := s.RecordFailure(ctx, "k", base.Add(time.Second), time.Minute, 1, time.Minute)
		mustNil(t, err)
		if !got.LockedUntil.Equal(base.Add(time.Hour)) {
			t.Errorf("LockedUntil = %v, want %v", got.LockedUntil, base.Add(time.Hour))
		}
	}},
	{"Throttle/KeysAreIndependent", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for range 3 {
			_, err := s.RecordFailure(ctx, "ip:192.0.2.1", base, time.Hour, 10, time.Hour)
			mustNil(t, err)
		}
		got, err := s.RecordFailure(ctx, "ip:192.0.2.2", base, time.Hour, 10, time.Hour)
		mustNil(t, err)
		checkThrottle(t, got, model.ThrottleState{Key: "ip:192.0.2.2", Failures: 1, WindowStart: base})
	}},
	{"Throttle/Clear", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		_, err := s.RecordFailure(ctx, "k", base, time.Hour, 1, time.Hour)
		mustNil(t, err)
		_, err = s.RecordFailure(ctx, "other", base, time.Hour, 1, time.Hour)
		mustNil(t, err)
		mustNil(t, s.ClearThrottle(ctx, "k"))
		got, err := s.GetThrottle(ctx, "k")
		mustNil(t, err)
		checkThrottle(t, got, model.ThrottleState{Key: "k"})
		other, err := s.GetThrottle(ctx, "other")
		mustNil(t, err)
		if other.Failures != 1 {
			t.Errorf("ClearThrottle touched another key: %+v", other)
		}
		mustNil(t, s.ClearThrottle(ctx, "never-seen"))
		// A cleared key starts from scratch.
		got, err = s.RecordFailure(ctx, "k", base.Add(time.Second), time.Hour, 5, time.Hour)
		mustNil(t, err)
		checkThrottle(t, got, model.ThrottleState{Key: "k", Failures: 1, WindowStart: base.Add(time.Second)})
	}},
	{"Throttle/DeleteStale", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		cutoff := base.Add(-time.Hour)
		for _, f := range []struct {
			key     string
			at      time.Time
			lockout time.Duration
		}{
			{"old", base.Add(-2 * time.Hour), 0},
			{"old-still-locked", base.Add(-2 * time.Hour), 3 * time.Hour},
			{"recent", base, 0},
		} {
			_, err := s.RecordFailure(ctx, f.key, f.at, time.Minute, 1, f.lockout)
			mustNil(t, err)
		}
		n, err := s.DeleteStaleThrottles(ctx, cutoff)
		mustNil(t, err)
		if n != 1 {
			t.Errorf("DeleteStaleThrottles = %d, want 1", n)
		}
		for key, wantFailures := range map[string]int{"old": 0, "old-still-locked": 1, "recent": 1} {
			got, err := s.GetThrottle(ctx, key)
			mustNil(t, err)
			if got.Failures != wantFailures {
				t.Errorf("%s: Failures = %d, want %d", key, got.Failures, wantFailures)
			}
		}
	}},
}

// ---------------------------------------------------------------- transactions

var txCases = []testCase{
	{"Tx/Commit", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		err := s.InTx(ctx, func(tx store.Store) error {
			if err := tx.CreateUser(ctx, user("u1", "alice")); err != nil {
				return err
			}
			if err := tx.CreateGroup(ctx, group("g1", "admins")); err != nil {
				return err
			}
			if err := tx.AddMember(ctx, "g1", "u1"); err != nil {
				return err
			}
			if err := tx.CreateSession(ctx, session("s1", "u1")); err != nil {
				return err
			}
			// The transaction sees its own writes.
			if _, err := tx.GetUserByUsername(ctx, "ALICE"); err != nil {
				return fmt.Errorf("read own write: %w", err)
			}
			gs, err := tx.GroupsOfUser(ctx, "u1")
			if err != nil || len(gs) != 1 {
				return fmt.Errorf("GroupsOfUser in tx = %v, %v", gs, err)
			}
			return nil
		})
		mustNil(t, err)
		checkCount(t, s, 1)
		groups, err := s.GroupsOfUser(ctx, "u1")
		mustNil(t, err)
		checkNames(t, "GroupsOfUser", groupNames(groups), []string{"admins"})
		if _, err := s.GetSession(ctx, "s1"); err != nil {
			t.Errorf("session after commit: %v", err)
		}
	}},
	{"Tx/RollbackOnError", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u0", "zed")
		err := s.InTx(ctx, func(tx store.Store) error {
			if err := tx.CreateUser(ctx, user("u1", "alice")); err != nil {
				return err
			}
			if err := tx.DeleteUser(ctx, "u0"); err != nil {
				return err
			}
			if _, err := tx.RecordFailure(ctx, "k", base, time.Hour, 5, time.Hour); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx error = %v, want fn's error", err)
		}
		checkRolledBack(t, s)
	}},
	{"Tx/RollbackOnPanic", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		mustUser(t, s, "u0", "zed")
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Errorf("recovered %v, want the panic to pass through InTx", r)
				}
			}()
			_ = s.InTx(ctx, func(tx store.Store) error {
				mustNil(t, tx.CreateUser(ctx, user("u1", "alice")))
				mustNil(t, tx.DeleteUser(ctx, "u0"))
				_, err := tx.RecordFailure(ctx, "k", base, time.Hour, 5, time.Hour)
				mustNil(t, err)
				panic("boom")
			})
		}()
		checkRolledBack(t, s)
		// The store still works: the transaction's connection went back.
		mustUser(t, s, "u2", "bob")
		mustNil(t, s.InTx(ctx, func(tx store.Store) error { return tx.CreateUser(ctx, user("u3", "carol")) }))
		checkCount(t, s, 3)
	}},
	{"Tx/NestedJoinsOuter", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		err := s.InTx(ctx, func(tx store.Store) error {
			if err := tx.InTx(ctx, func(inner store.Store) error {
				return inner.CreateUser(ctx, user("u1", "alice"))
			}); err != nil {
				return err
			}
			// The inner "commit" is only the outer transaction's.
			if _, err := tx.GetUser(ctx, "u1"); err != nil {
				return fmt.Errorf("inner write not visible to the outer tx: %w", err)
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx error = %v, want errBoom", err)
		}
		checkCount(t, s, 0)

		err = s.InTx(ctx, func(tx store.Store) error {
			return tx.InTx(ctx, func(store.Store) error { return errBoom })
		})
		if !errors.Is(err, errBoom) {
			t.Errorf("inner error = %v, want errBoom", err)
		}
	}},
	{"Tx/UpdateUserJoinsTx", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		old := mustUser(t, s, "u1", "alice")
		err := s.InTx(ctx, func(tx store.Store) error {
			u, err := tx.UpdateUser(ctx, "u1", func(u *model.User) error { u.Email = "new@example.com"; return nil })
			if err != nil {
				return err
			}
			if u.Email != "new@example.com" {
				return fmt.Errorf("UpdateUser returned %+v", u)
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx error = %v, want errBoom", err)
		}
		got, err := s.GetUser(ctx, "u1")
		mustNil(t, err)
		checkUser(t, got, old)
	}},
}

// checkRolledBack checks what the rollback tests' transactions undid.
func checkRolledBack(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.GetUser(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("user created in the rolled-back tx: error = %v, want ErrNotFound", err)
	}
	if _, err := s.GetUser(ctx, "u0"); err != nil {
		t.Errorf("user deleted in the rolled-back tx: %v", err)
	}
	st, err := s.GetThrottle(ctx, "k")
	mustNil(t, err)
	if st.Failures != 0 {
		t.Errorf("failure recorded in the rolled-back tx: %+v", st)
	}
}

// ---------------------------------------------------------------- concurrency

var concurrencyCases = []testCase{
	{"Concurrency/RecordFailure", func(t *testing.T, s store.Store) {
		const n = 20
		results := parallel(n, func(int) (int, error) {
			st, err := s.RecordFailure(t.Context(), "hot", base, time.Hour, 1000, time.Hour)
			return st.Failures, err
		})
		var counts []int
		for _, r := range results {
			mustNil(t, r.err)
			counts = append(counts, r.v)
		}
		slices.Sort(counts)
		// Every call saw a different count: no two read the same state.
		for i, c := range counts {
			if c != i+1 {
				t.Fatalf("counts returned = %v, want 1..%d once each", counts, n)
			}
		}
		st, err := s.GetThrottle(t.Context(), "hot")
		mustNil(t, err)
		if st.Failures != n {
			t.Errorf("Failures = %d, want %d", st.Failures, n)
		}
	}},
	{"Concurrency/CreateUserSameName", func(t *testing.T, s store.Store) {
		const n = 10
		names := []string{"dup", "Dup", "DUP", "dUp"}
		results := parallel(n, func(i int) (struct{}, error) {
			return struct{}{}, s.CreateUser(t.Context(), user(fmt.Sprintf("u%d", i), names[i%len(names)]))
		})
		ok := 0
		for _, r := range results {
			switch {
			case r.err == nil:
				ok++
			case !errors.Is(r.err, store.ErrConflict):
				t.Errorf("CreateUser error = %v, want nil or ErrConflict", r.err)
			}
		}
		if ok != 1 {
			t.Errorf("%d concurrent creates succeeded, want exactly 1", ok)
		}
		checkCount(t, s, 1)
	}},
	{"Concurrency/UpdateUserNoLostUpdates", func(t *testing.T, s store.Store) {
		const n = 10
		mustUser(t, s, "u1", "alice")
		results := parallel(n, func(int) (model.User, error) {
			return s.UpdateUser(t.Context(), "u1", func(u *model.User) error { u.DisplayName += "x"; return nil })
		})
		for _, r := range results {
			mustNil(t, r.err)
		}
		got, err := s.GetUser(t.Context(), "u1")
		mustNil(t, err)
		if strings.Count(got.DisplayName, "x") != n {
			t.Errorf("DisplayName = %q after %d concurrent appends: updates were lost", got.DisplayName, n)
		}
	}},
	{"Concurrency/TouchAndDeleteSessions", func(t *testing.T, s store.Store) {
		// Touch batches racing with deletes and expiry sweeps must neither
		// fail nor resurrect sessions.
		mustUser(t, s, "u1", "alice")
		const n = 8
		for i := range n {
			mustSession(t, s, fmt.Sprintf("s%d", i), "u1")
		}
		results := parallel(3*n, func(i int) (struct{}, error) {
			ctx := t.Context()
			switch i % 3 {
			case 0:
				batch := map[string]time.Time{}
				for j := range n {
					batch[fmt.Sprintf("s%d", j)] = base.Add(time.Duration(i) * time.Second)
				}
				return struct{}{}, s.TouchSessions(ctx, batch)
			case 1:
				err := s.DeleteSession(ctx, fmt.Sprintf("s%d", i/3))
				if errors.Is(err, store.ErrNotFound) {
					err = nil
				}
				return struct{}{}, err
			default:
				_, err := s.DeleteExpiredSessions(ctx, base)
				return struct{}{}, err
			}
		})
		for _, r := range results {
			mustNil(t, r.err)
		}
		for i := range n {
			if _, err := s.GetSession(t.Context(), fmt.Sprintf("s%d", i)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("s%d survived its deletion: %v", i, err)
			}
		}
	}},
}

type result[T any] struct {
	v   T
	err error
}

// parallel runs fn(0..n-1) in n goroutines released together.
func parallel[T any](n int, fn func(i int) (T, error)) []result[T] {
	out := make([]result[T], n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			v, err := fn(i)
			out[i] = result[T]{v, err}
		})
	}
	close(start)
	wg.Wait()
	return out
}

// ---------------------------------------------------------------- fixtures

func user(id, username string) model.User {
	return model.User{
		ID: id, Username: username, Email: username + "@example.com", DisplayName: username,
		PasswordHash: "$argon2id$" + id, CreatedAt: base, UpdatedAt: base,
	}
}

func group(id, name string) model.Group {
	return model.Group{ID: id, Name: name, Description: "the " + name, CreatedAt: base}
}

func session(id, userID string) model.Session {
	return model.Session{
		ID: id, UserID: userID, Level: model.LevelPassword,
		CreatedAt: base, LastSeenAt: base, ExpiresAt: base.Add(24 * time.Hour), IdleTimeout: time.Hour,
		ClientIP: "192.0.2.7", UserAgent: "test",
	}
}

func mustUser(t *testing.T, s store.Store, id, username string) model.User {
	t.Helper()
	u := user(id, username)
	mustNil(t, s.CreateUser(t.Context(), u))
	return u
}

func mustGroup(t *testing.T, s store.Store, id, name string) model.Group {
	t.Helper()
	g := group(id, name)
	mustNil(t, s.CreateGroup(t.Context(), g))
	return g
}

func mustSession(t *testing.T, s store.Store, id, userID string) model.Session {
	t.Helper()
	ss := session(id, userID)
	mustNil(t, s.CreateSession(t.Context(), ss))
	return ss
}

// ---------------------------------------------------------------- checks

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func checkCount(t *testing.T, s store.Store, want int) {
	t.Helper()
	n, err := s.CountUsers(t.Context())
	mustNil(t, err)
	if n != want {
		t.Errorf("CountUsers = %d, want %d", n, want)
	}
}

func usernames(us []model.User) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out
}

func groupNames(gs []model.Group) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Name)
	}
	return out
}

func checkNames(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// checkTime compares instants and insists that a stored time comes back in
// UTC.
func checkTime(t *testing.T, field string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", field, got, want)
	}
	if !got.IsZero() && got.Location() != time.UTC {
		t.Errorf("%s is in %v, want UTC", field, got.Location())
	}
}

func checkUser(t *testing.T, got, want model.User) {
	t.Helper()
	checkTime(t, "User.CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "User.UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Errorf("user = %+v, want %+v", got, want)
	}
}

func checkGroup(t *testing.T, got, want model.Group) {
	t.Helper()
	checkTime(t, "Group.CreatedAt", got.CreatedAt, want.CreatedAt)
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("group = %+v, want %+v", got, want)
	}
}

func checkSession(t *testing.T, got, want model.Session) {
	t.Helper()
	checkTime(t, "Session.CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "Session.LastSeenAt", got.LastSeenAt, want.LastSeenAt)
	checkTime(t, "Session.ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	got.CreatedAt, got.LastSeenAt, got.ExpiresAt = time.Time{}, time.Time{}, time.Time{}
	want.CreatedAt, want.LastSeenAt, want.ExpiresAt = time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Errorf("session = %+v, want %+v", got, want)
	}
}

func checkThrottle(t *testing.T, got, want model.ThrottleState) {
	t.Helper()
	checkTime(t, "ThrottleState.WindowStart", got.WindowStart, want.WindowStart)
	checkTime(t, "ThrottleState.LockedUntil", got.LockedUntil, want.LockedUntil)
	if got.Key != want.Key || got.Failures != want.Failures {
		t.Errorf("throttle = %+v, want %+v", got, want)
	}
}
