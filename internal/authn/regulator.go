package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// ErrLockedOut is returned while the username or the client IP of a sign-in
// is locked after too many failures.
var ErrLockedOut = errors.New("too many failed sign-in attempts, try again later")

// RegulatorOptions configure a Regulator. Zero values take the defaults.
type RegulatorOptions struct {
	// MaxFailures locks a username after this many failures within Window
	// (default 5).
	MaxFailures int
	// IPMaxFailures locks a client IP after this many failures within
	// Window, whichever usernames they were for (default 20).
	IPMaxFailures int
	// Window is how long failures are counted together (default 10m), and
	// Lockout how long a key stays locked once it reaches its limit
	// (default 15m).
	Window, Lockout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives lockout events (default slog.Default()).
	Logger *slog.Logger
}

// Regulator counts sign-in failures per username and per client IP and
// locks either when it fails too often. It keeps no state of its own: the
// counters live in the store.Throttle, so every replica sees the same.
type Regulator struct {
	t   store.Throttle
	o   RegulatorOptions
	log *slog.Logger
}

// NewRegulator returns a Regulator keeping its counters in t.
func NewRegulator(t store.Throttle, o RegulatorOptions) *Regulator {
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.IPMaxFailures <= 0 {
		o.IPMaxFailures = 20
	}
	if o.Window <= 0 {
		o.Window = 10 * time.Minute
	}
	if o.Lockout <= 0 {
		o.Lockout = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Regulator{t: t, o: o, log: o.Logger.With("component", "authn.regulator")}
}

// userKey is the counter key of a username. Usernames match
// case-insensitively, so "Alice" and "alice" share one counter.
func userKey(username string) string { return "user:" + strings.ToLower(username) }

// ipKey is the counter key of a client IP, or "" when there is none.
// IPv4 addresses (and IPv4-mapped IPv6) count one by one; IPv6 addresses
// count by their /64, the block one subscriber or host is given, since an
// attacker can rotate through a /64 for free.
func ipKey(ip string) string {
	ip = strings.TrimSpace(ip)
	if ip == "" {
		return ""
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "ip:" + ip
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return "ip:" + netip.PrefixFrom(a, 64).Masked().String()
	}
	return "ip:" + a.String()
}

// Check returns ErrLockedOut if the username or the client IP is locked.
// An empty ip is not checked.
func (r *Regulator) Check(ctx context.Context, username, ip string) error {
	now := r.o.Now()
	for _, key := range []string{userKey(username), ipKey(ip)} {
		if key == "" {
			continue
		}
		st, err := r.t.GetThrottle(ctx, key)
		if err != nil {
			return fmt.Errorf("authn: read throttle: %w", err)
		}
		if now.Before(st.LockedUntil) {
			return ErrLockedOut
		}
	}
	return nil
}

// Fail counts one failed sign-in for the username and for the client IP.
// Unknown usernames are counted exactly like known ones.
func (r *Regulator) Fail(ctx context.Context, username, ip string) error {
	now := r.o.Now()
	var errs []error
	for _, k := range []struct {
		key   string
		limit int
	}{{userKey(username), r.o.MaxFailures}, {ipKey(ip), r.o.IPMaxFailures}} {
		if k.key == "" {
			continue
		}
		st, err := r.t.RecordFailure(ctx, k.key, now, r.o.Window, k.limit, r.o.Lockout)
		if err != nil {
			errs = append(errs, fmt.Errorf("authn: record failure: %w", err))
			continue
		}
		if st.Failures == k.limit {
			r.log.WarnContext(ctx, "sign-in locked after repeated failures",
				"key", k.key, "failures", st.Failures, "locked_until", st.LockedUntil)
		}
	}
	return errors.Join(errs...)
}

// Succeed clears the username's counter after a successful sign-in. The
// client IP's counter stays: one account the attacker owns must not reset
// the budget it spends guessing others.
func (r *Regulator) Succeed(ctx context.Context, username, ip string) error {
	if err := r.t.ClearThrottle(ctx, userKey(username)); err != nil {
		return fmt.Errorf("authn: clear throttle: %w", err)
	}
	return nil
}

// Unlock clears the username's counter and lock (an operator action).
func (r *Regulator) Unlock(ctx context.Context, username string) error {
	if err := r.t.ClearThrottle(ctx, userKey(username)); err != nil {
		return fmt.Errorf("authn: clear throttle: %w", err)
	}
	r.log.InfoContext(ctx, "sign-in unlocked", "key", userKey(username))
	return nil
}

// CheckIP is Check for a credential that names no user (a bearer token):
// only the client IP's lock applies. Counting such failures against a
// shared username key would let anyone lock every token client out.
func (r *Regulator) CheckIP(ctx context.Context, ip string) error {
	key := ipKey(ip)
	if key == "" {
		return nil
	}
	st, err := r.t.GetThrottle(ctx, key)
	if err != nil {
		return fmt.Errorf("authn: read throttle: %w", err)
	}
	if r.o.Now().Before(st.LockedUntil) {
		return ErrLockedOut
	}
	return nil
}

// FailIP counts one failed user-less credential against the client IP.
func (r *Regulator) FailIP(ctx context.Context, ip string) error {
	key := ipKey(ip)
	if key == "" {
		return nil
	}
	st, err := r.t.RecordFailure(ctx, key, r.o.Now(), r.o.Window, r.o.IPMaxFailures, r.o.Lockout)
	if err != nil {
		return fmt.Errorf("authn: record failure: %w", err)
	}
	if st.Failures == r.o.IPMaxFailures {
		r.log.WarnContext(ctx, "client locked after repeated credential failures", "key", key, "locked_until", st.LockedUntil)
	}
	return nil
}
