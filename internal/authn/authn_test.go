package authn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-sso/gatehouse/internal/authn"
	"github.com/gatehouse-sso/gatehouse/internal/authn/password"
	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// fakeThrottle follows the store.Throttle contract in memory; the SQL store
// is held to the same contract by its conformance suite.
type fakeThrottle struct {
	mu  sync.Mutex
	m   map[string]model.ThrottleState
	err error // returned by every method when set
}

var _ store.Throttle = (*fakeThrottle)(nil)

func newFakeThrottle() *fakeThrottle { return &fakeThrottle{m: map[string]model.ThrottleState{}} }

func (f *fakeThrottle) RecordFailure(_ context.Context, key string, now time.Time, window time.Duration, limit int, lockout time.Duration) (model.ThrottleState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return model.ThrottleState{}, f.err
	}
	st := f.m[key]
	st.Key = key
	if st.WindowStart.IsZero() || !now.Before(st.WindowStart.Add(window)) {
		st.Failures, st.WindowStart = 0, now
	}
	st.Failures++
	if st.Failures >= limit {
		st.LockedUntil = now.Add(lockout)
	}
	f.m[key] = st
	return st, nil
}

func (f *fakeThrottle) GetThrottle(_ context.Context, key string) (model.ThrottleState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return model.ThrottleState{}, f.err
	}
	st := f.m[key]
	st.Key = key
	return st, nil
}

func (f *fakeThrottle) ClearThrottle(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	delete(f.m, key)
	return nil
}

func (f *fakeThrottle) DeleteStaleThrottles(context.Context, time.Time) (int, error) { return 0, nil }

func (f *fakeThrottle) failures(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[key].Failures
}

// fakeUsers is an in-memory UserLookup matching usernames
// case-insensitively, as store.Users does.
type fakeUsers struct {
	mu        sync.Mutex
	byID      map[string]model.User
	getErr    error
	updateErr error
	// beforeUpdate runs inside UpdateUser before fn (a concurrent writer).
	beforeUpdate func(u *model.User)
	// gate, when set, holds GetUserByUsername until it is closed.
	gate    chan struct{}
	waiting sync.WaitGroup
	updates int
}

var _ authn.UserLookup = (*fakeUsers)(nil)

func newFakeUsers(us ...model.User) *fakeUsers {
	f := &fakeUsers{byID: map[string]model.User{}}
	for _, u := range us {
		f.byID[u.ID] = u
	}
	return f
}

func (f *fakeUsers) GetUserByUsername(_ context.Context, name string) (model.User, error) {
	if f.gate != nil {
		f.waiting.Done()
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return model.User{}, f.getErr
	}
	for _, u := range f.byID {
		if strings.EqualFold(u.Username, name) {
			return u, nil
		}
	}
	return model.User{}, fmt.Errorf("user %q: %w", name, store.ErrNotFound)
}

func (f *fakeUsers) UpdateUser(_ context.Context, id string, fn func(*model.User) error) (model.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.updateErr != nil {
		return model.User{}, f.updateErr
	}
	u, ok := f.byID[id]
	if !ok {
		return model.User{}, store.ErrNotFound
	}
	if f.beforeUpdate != nil {
		f.beforeUpdate(&u)
		f.byID[id] = u
	}
	if err := fn(&u); err != nil {
		return model.User{}, err
	}
	f.byID[id] = u
	f.updates++
	return u, nil
}

func (f *fakeUsers) get(id string) model.User {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byID[id]
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var tiny = password.Params{Memory: 64, Time: 1, Threads: 1}

type env struct {
	auth     *authn.Authenticator
	reg      *authn.Regulator
	users    *fakeUsers
	throttle *fakeThrottle
	clock    *clock
	hasher   *password.Hasher
	logs     *bytes.Buffer
}

const (
	alicePW = "alice-secret-pw"
	ip1     = "192.0.2.1"
)

func hashOf(t testing.TB, h *password.Hasher, pw string) string {
	t.Helper()
	enc, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// newEnv builds an Authenticator over fakes with users alice (password
// alicePW), bob (disabled, password "bob-pw") and carol (no password).
func newEnv(t testing.TB, ro authn.RegulatorOptions) *env {
	t.Helper()
	e := &env{
		throttle: newFakeThrottle(),
		clock:    &clock{now: time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)},
		hasher:   password.NewHasher(password.Options{Params: tiny}),
		logs:     &bytes.Buffer{},
	}
	logger := slog.New(slog.NewTextHandler(lockedWriter{w: e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.users = newFakeUsers(
		model.User{ID: "u1", Username: "alice", PasswordHash: hashOf(t, e.hasher, alicePW)},
		model.User{ID: "u2", Username: "bob", Disabled: true, PasswordHash: hashOf(t, e.hasher, "bob-pw")},
		model.User{ID: "u3", Username: "carol"},
		model.User{ID: "u4", Username: "dave", PasswordHash: "$argon2id$v=19$broken"},
	)
	ro.Now, ro.Logger = e.clock.Now, logger
	e.reg = authn.NewRegulator(e.throttle, ro)
	e.auth = authn.NewAuthenticator(e.users, e.hasher, e.reg, authn.Options{Logger: logger})
	return e
}

var logMu sync.Mutex

type lockedWriter struct{ w *bytes.Buffer }

func (l lockedWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return l.w.Write(p)
}

func (e *env) login(t testing.TB, user, pw, ip string) error {
	t.Helper()
	_, err := e.auth.PasswordLogin(t.Context(), user, pw, ip)
	return err
}

func TestPasswordLogin(t *testing.T) {
	tests := []struct {
		name, user, pw string
		want           error
		wantID         string
	}{
		{"right password", "alice", alicePW, nil, "u1"},
		{"username case-insensitive", "ALICE", alicePW, nil, "u1"},
		{"wrong password", "alice", "nope", authn.ErrInvalidCredentials, ""},
		{"empty password", "alice", "", authn.ErrInvalidCredentials, ""},
		{"unknown user", "mallory", alicePW, authn.ErrInvalidCredentials, ""},
		{"empty username", "", alicePW, authn.ErrInvalidCredentials, ""},
		{"disabled, right password", "bob", "bob-pw", authn.ErrInvalidCredentials, ""},
		{"disabled, wrong password", "bob", "nope", authn.ErrInvalidCredentials, ""},
		{"no password", "carol", "", authn.ErrInvalidCredentials, ""},
		{"no password, some password", "carol", "x", authn.ErrInvalidCredentials, ""},
		{"broken stored hash", "dave", "x", authn.ErrInvalidCredentials, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, authn.RegulatorOptions{})
			u, err := e.auth.PasswordLogin(t.Context(), tt.user, tt.pw, ip1)
			if !errors.Is(err, tt.want) {
				t.Fatalf("PasswordLogin = %v, want %v", err, tt.want)
			}
			if u.ID != tt.wantID {
				t.Fatalf("user ID = %q, want %q", u.ID, tt.wantID)
			}
			// Each failure counts once for the username and once for the IP.
			wantFailures := 0
			if tt.want != nil {
				wantFailures = 1
			}
			if got := e.throttle.failures("user:" + strings.ToLower(tt.user)); got != wantFailures {
				t.Errorf("username failures = %d, want %d", got, wantFailures)
			}
			if got := e.throttle.failures("ip:" + ip1); got != wantFailures {
				t.Errorf("IP failures = %d, want %d", got, wantFailures)
			}
			if tt.pw != "" && strings.Contains(e.logs.String(), tt.pw) {
				t.Errorf("password appears in the log:\n%s", e.logs)
			}
		})
	}
}

func TestLockoutAfterMaxFailures(t *testing.T) {
	for _, user := range []string{"alice", "mallory" /* unknown */, "bob" /* disabled */} {
		t.Run(user, func(t *testing.T) {
			e := newEnv(t, authn.RegulatorOptions{})
			for i := range 5 {
				// A different IP each time: only the username counter acts.
				if err := e.login(t, user, "guess", fmt.Sprintf("198.51.100.%d", i)); !errors.Is(err, authn.ErrInvalidCredentials) {
					t.Fatalf("attempt %d = %v, want ErrInvalidCredentials", i+1, err)
				}
			}
			pw := "guess"
			if user == "alice" {
				pw = alicePW
			}
			if err := e.login(t, user, pw, "203.0.113.9"); !errors.Is(err, authn.ErrLockedOut) {
				t.Fatalf("attempt 6 = %v, want ErrLockedOut", err)
			}
			// Case does not give a fresh budget.
			if err := e.login(t, strings.ToUpper(user), pw, "203.0.113.9"); !errors.Is(err, authn.ErrLockedOut) {
				t.Fatalf("upper-case attempt = %v, want ErrLockedOut", err)
			}
			// Other users are unaffected.
			if user != "alice" {
				if err := e.login(t, "alice", alicePW, "203.0.113.10"); err != nil {
					t.Fatalf("alice while %s is locked = %v", user, err)
				}
			}
		})
	}
}

func TestIPLimitAcrossUsernames(t *testing.T) {
	tests := []struct {
		name    string
		ipOf    func(i int) string
		nextIP  string
		wantKey string
	}{
		{"IPv4", func(int) string { return ip1 }, ip1, "ip:" + ip1},
		{"IPv4-mapped IPv6", func(int) string { return "::ffff:" + ip1 }, ip1, "ip:" + ip1},
		{"IPv6 same /64", func(i int) string { return fmt.Sprintf("2001:db8:1:2::%x", i+1) }, "2001:db8:1:2:ffff::1", "ip:2001:db8:1:2::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, authn.RegulatorOptions{IPMaxFailures: 20})
			for i := range 20 {
				if err := e.login(t, fmt.Sprintf("user%d", i), "guess", tt.ipOf(i)); !errors.Is(err, authn.ErrInvalidCredentials) {
					t.Fatalf("attempt %d = %v, want ErrInvalidCredentials", i+1, err)
				}
			}
			if got := e.throttle.failures(tt.wantKey); got != 20 {
				t.Fatalf("%s failures = %d, want 20", tt.wantKey, got)
			}
			if err := e.login(t, "alice", alicePW, tt.nextIP); !errors.Is(err, authn.ErrLockedOut) {
				t.Fatalf("alice from the locked IP = %v, want ErrLockedOut", err)
			}
			if err := e.login(t, "alice", alicePW, "203.0.113.1"); err != nil {
				t.Fatalf("alice from another IP = %v", err)
			}
		})
	}
}

func TestSuccessClearsUsernameOnly(t *testing.T) {
	e := newEnv(t, authn.RegulatorOptions{})
	for range 4 {
		_ = e.login(t, "alice", "guess", ip1)
	}
	if err := e.login(t, "alice", alicePW, ip1); err != nil {
		t.Fatal(err)
	}
	if got := e.throttle.failures("user:alice"); got != 0 {
		t.Errorf("username failures after success = %d, want 0", got)
	}
	if got := e.throttle.failures("ip:" + ip1); got != 4 {
		t.Errorf("IP failures after success = %d, want 4 (kept)", got)
	}
	for range 4 {
		_ = e.login(t, "alice", "guess", ip1)
	}
	if err := e.login(t, "alice", alicePW, ip1); err != nil {
		t.Fatalf("after 4+4 failures split by a success = %v, want success", err)
	}
}

func TestWindowAndLockoutExpiry(t *testing.T) {
	e := newEnv(t, authn.RegulatorOptions{Window: 10 * time.Minute, Lockout: 15 * time.Minute})
	for range 4 {
		_ = e.login(t, "alice", "guess", ip1)
	}
	e.clock.Advance(10*time.Minute + time.Second)
	for range 4 {
		_ = e.login(t, "alice", "guess", ip1)
	}
	if err := e.reg.Check(t.Context(), "alice", ip1); err != nil {
		t.Fatalf("4 failures in each of two windows = %v, want not locked", err)
	}
	_ = e.login(t, "alice", "guess", ip1) // the fifth in this window
	if err := e.login(t, "alice", alicePW, ip1); !errors.Is(err, authn.ErrLockedOut) {
		t.Fatalf("after 5 failures = %v, want ErrLockedOut", err)
	}
	e.clock.Advance(14 * time.Minute)
	if err := e.login(t, "alice", alicePW, ip1); !errors.Is(err, authn.ErrLockedOut) {
		t.Fatalf("14m into the lockout = %v, want ErrLockedOut", err)
	}
	e.clock.Advance(time.Minute)
	if err := e.login(t, "alice", alicePW, ip1); err != nil {
		t.Fatalf("after the lockout = %v, want success", err)
	}
}

func TestUnlock(t *testing.T) {
	e := newEnv(t, authn.RegulatorOptions{MaxFailures: 3})
	for range 3 {
		_ = e.login(t, "Alice", "guess", ip1)
	}
	if err := e.login(t, "alice", alicePW, ip1); !errors.Is(err, authn.ErrLockedOut) {
		t.Fatalf("= %v, want ErrLockedOut", err)
	}
	if err := e.reg.Unlock(t.Context(), "ALICE"); err != nil {
		t.Fatal(err)
	}
	if err := e.login(t, "alice", alicePW, ip1); err != nil {
		t.Fatalf("after Unlock = %v", err)
	}
}

func TestRegulatorDefaults(t *testing.T) {
	e := newEnv(t, authn.RegulatorOptions{})
	for i := range 4 {
		_ = e.reg.Fail(t.Context(), "alice", fmt.Sprintf("198.51.100.%d", i))
	}
	if err := e.reg.Check(t.Context(), "alice", ""); err != nil {
		t.Fatalf("after 4 failures = %v", err)
	}
	_ = e.reg.Fail(t.Context(), "alice", "")
	if err := e.reg.Check(t.Context(), "alice", ""); !errors.Is(err, authn.ErrLockedOut) {
		t.Fatalf("after 5 failures = %v, want ErrLockedOut", err)
	}
	if st, _ := e.throttle.GetThrottle(t.Context(), "user:alice"); !st.LockedUntil.Equal(e.clock.Now().Add(15 * time.Minute)) {
		t.Errorf("LockedUntil = %v, want now+15m", st.LockedUntil)
	}
	for i := range 19 {
		_ = e.reg.Fail(t.Context(), fmt.Sprintf("u%d", i), ip1)
	}
	if err := e.reg.Check(t.Context(), "someone", ip1); err != nil {
		t.Fatalf("after 19 IP failures = %v", err)
	}
	_ = e.reg.Fail(t.Context(), "u19", ip1)
	if err := e.reg.Check(t.Context(), "someone", ip1); !errors.Is(err, authn.ErrLockedOut) {
		t.Fatalf("after 20 IP failures = %v, want ErrLockedOut", err)
	}
}

func TestRehash(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte("imported-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	older := password.NewHasher(password.Options{Params: password.Params{Memory: 32, Time: 1, Threads: 1}})
	tests := []struct {
		name         string
		hash         string
		updateErr    error
		concurrentPW string // a password change racing the rehash
		wantUpgraded bool
	}{
		{"bcrypt", string(bc), nil, "", true},
		{"argon2id with old params", hashOf(t, older, "imported-pw"), nil, "", true},
		{"current argon2id", "", nil, "", false},
		{"save fails", string(bc), errors.New("disk full"), "", false},
		{"password changed meanwhile", string(bc), nil, "newer-pw", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, authn.RegulatorOptions{})
			if tt.hash == "" {
				tt.hash = hashOf(t, e.hasher, "imported-pw")
			}
			e.users.byID["u9"] = model.User{ID: "u9", Username: "imported", PasswordHash: tt.hash}
			e.users.updateErr = tt.updateErr
			var changedTo string
			if tt.concurrentPW != "" {
				changedTo = hashOf(t, e.hasher, tt.concurrentPW)
				e.users.beforeUpdate = func(u *model.User) { u.PasswordHash = changedTo }
			}

			u, err := e.auth.PasswordLogin(t.Context(), "imported", "imported-pw", ip1)
			if err != nil {
				t.Fatalf("PasswordLogin = %v; a failed rehash must not fail the sign-in", err)
			}
			stored := e.users.get("u9").PasswordHash
			switch {
			case tt.wantUpgraded:
				if stored == tt.hash || !strings.HasPrefix(stored, "$argon2id$v=19$m=64,t=1,p=1$") {
					t.Fatalf("stored hash = %q, want a current argon2id hash", stored)
				}
				if u.PasswordHash != stored {
					t.Errorf("returned user has hash %q, store has %q", u.PasswordHash, stored)
				}
				ok, rehash, err := e.hasher.Verify(t.Context(), "imported-pw", stored)
				if !ok || rehash || err != nil {
					t.Fatalf("Verify(upgraded hash) = %v, %v, %v", ok, rehash, err)
				}
				// And the new hash signs in without another upgrade.
				if err := e.login(t, "imported", "imported-pw", ip1); err != nil || e.users.updates != 1 {
					t.Fatalf("second sign-in = %v, updates = %d; want nil, 1", err, e.users.updates)
				}
			case tt.concurrentPW != "":
				if stored != changedTo {
					t.Fatalf("rehash overwrote a concurrent password change")
				}
			default:
				if stored != tt.hash {
					t.Fatalf("stored hash changed to %q", stored)
				}
			}
			if tt.updateErr != nil && !strings.Contains(e.logs.String(), "disk full") {
				t.Errorf("failed rehash not logged:\n%s", e.logs)
			}
		})
	}
}

// TestBurstIsCutOff sends parallel attempts that all pass the first check
// before any failure is recorded. Once the username locks, the attempts
// still in flight get ErrLockedOut, the right password included, so the
// burst learns nothing beyond the counted failures.
func TestBurstIsCutOff(t *testing.T) {
	e := newEnv(t, authn.RegulatorOptions{})
	e.users.gate = make(chan struct{})
	const n = 8
	e.users.waiting.Add(n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		pw := "guess"
		if i == n-1 {
			pw = alicePW
		}
		wg.Go(func() { errs[i] = e.login(t, "alice", pw, fmt.Sprintf("198.51.100.%d", i)) })
	}
	e.users.waiting.Wait() // all n are past the first check
	for range 5 {
		_ = e.reg.Fail(t.Context(), "alice", "")
	}
	close(e.users.gate)
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, authn.ErrLockedOut) {
			t.Errorf("attempt %d = %v, want ErrLockedOut", i, err)
		}
	}
	if got := e.throttle.failures("user:alice"); got != 5 {
		t.Errorf("failures = %d, want 5 (locked attempts do not extend the lock)", got)
	}
}

func TestStoreErrors(t *testing.T) {
	boom := errors.New("database is down")
	t.Run("throttle", func(t *testing.T) {
		e := newEnv(t, authn.RegulatorOptions{})
		e.throttle.err = boom
		if err := e.login(t, "alice", alicePW, ip1); !errors.Is(err, boom) {
			t.Fatalf("= %v, want the store error (fail closed)", err)
		}
	})
	t.Run("users", func(t *testing.T) {
		e := newEnv(t, authn.RegulatorOptions{})
		e.users.getErr = boom
		err := e.login(t, "alice", alicePW, ip1)
		if !errors.Is(err, boom) || errors.Is(err, authn.ErrInvalidCredentials) {
			t.Fatalf("= %v, want the store error", err)
		}
		if got := e.throttle.failures("user:alice"); got != 0 {
			t.Errorf("a store error counted as a failure (%d)", got)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		e := newEnv(t, authn.RegulatorOptions{})
		ctx, cancel := context.WithCancel(t.Context())
		e.users.beforeUpdate = nil
		cancel()
		if _, err := e.auth.PasswordLogin(ctx, "mallory", "x", ip1); !errors.Is(err, context.Canceled) {
			t.Fatalf("= %v, want context.Canceled", err)
		}
	})
}
