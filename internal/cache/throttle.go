package cache

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// Throttle is a store.Throttle that keeps brute-force counters in Redis,
// shared by every replica with one round trip per failure, and falls back
// to the store's counters whenever Redis is unhealthy or a command fails.
// authn.Regulator uses it unchanged.
//
// During an outage failures are counted in the store; after it, reads go
// back to Redis, so a counter may restart from the Redis side. The lock
// durations are minutes, the outage window is usually seconds: the
// trade-off is a few extra guesses at worst, never a user locked out by
// Redis trouble.
type Throttle struct {
	c        *Client
	fallback store.Throttle
}

var _ store.Throttle = (*Throttle)(nil)

// NewThrottle returns a Throttle over c with fallback for outages.
func NewThrottle(c *Client, fallback store.Throttle) *Throttle {
	return &Throttle{c: c, fallback: fallback}
}

// recordScript is RecordFailure's logic (see sqlstore) done atomically in
// Redis: reset the window if it passed, count, lock at the limit (never
// shortening a longer lock), and expire the key when neither the window
// nor the lock needs it any more. Times are unix microseconds.
var recordScript = redis.NewScript(`
local now, window, limit, lockout = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local v = redis.call('HMGET', KEYS[1], 'f', 'ws', 'lu')
local f, ws, lu = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
if ws == 0 or now >= ws + window then
  f, ws = 0, now
end
f = f + 1
if limit > 0 and f >= limit and now + lockout > lu then
  lu = now + lockout
end
redis.call('HSET', KEYS[1], 'f', f, 'ws', ws, 'lu', lu)
local keep = math.max(ws + window, lu) - now
redis.call('PEXPIRE', KEYS[1], math.floor(keep / 1000) + 1000)
return {f, ws, lu}
`)

func (t *Throttle) key(k string) string { return t.c.Key("throttle:" + k) }

// RecordFailure counts one failure in Redis, or in the store while Redis
// is down.
func (t *Throttle) RecordFailure(ctx context.Context, key string, now time.Time, window time.Duration, limit int, lockout time.Duration) (model.ThrottleState, error) {
	if t.c.Healthy() {
		now = now.UTC().Truncate(time.Microsecond)
		res, err := recordScript.Run(ctx, t.c.rdb, []string{t.key(key)},
			now.UnixMicro(), window.Microseconds(), limit, lockout.Microseconds()).Int64Slice()
		if err == nil && len(res) == 3 {
			return model.ThrottleState{Key: key, Failures: int(res[0]), WindowStart: fromMicro(res[1]), LockedUntil: fromMicro(res[2])}, nil
		}
		t.c.failed(err)
	}
	return t.fallback.RecordFailure(ctx, key, now, window, limit, lockout)
}

// GetThrottle reads the counter from Redis, or from the store while Redis
// is down. A lock recorded in the store during an outage still applies
// after it: the later of the two locks wins.
func (t *Throttle) GetThrottle(ctx context.Context, key string) (model.ThrottleState, error) {
	if !t.c.Healthy() {
		return t.fallback.GetThrottle(ctx, key)
	}
	v, err := t.c.rdb.HMGet(ctx, t.key(key), "f", "ws", "lu").Result()
	if err != nil {
		t.c.failed(err)
		return t.fallback.GetThrottle(ctx, key)
	}
	st := model.ThrottleState{Key: key}
	st.Failures = int(atoi(v[0]))
	st.WindowStart = fromMicro(atoi(v[1]))
	st.LockedUntil = fromMicro(atoi(v[2]))
	// One primary-key read: sign-in is not the hot path, and it keeps a
	// lock taken while Redis was down.
	if fb, err := t.fallback.GetThrottle(ctx, key); err == nil && fb.LockedUntil.After(st.LockedUntil) {
		return fb, nil
	}
	return st, nil
}

// ClearThrottle forgets key in both places, so an operator unlock also
// clears a lock taken during an outage.
func (t *Throttle) ClearThrottle(ctx context.Context, key string) error {
	var rerr error
	if t.c.Healthy() {
		if rerr = t.c.rdb.Del(ctx, t.key(key)).Err(); rerr != nil {
			t.c.failed(rerr)
		}
	}
	return errors.Join(rerr, t.fallback.ClearThrottle(ctx, key))
}

// DeleteStaleThrottles prunes the store's counters; Redis keys expire by
// themselves.
func (t *Throttle) DeleteStaleThrottles(ctx context.Context, before time.Time) (int, error) {
	return t.fallback.DeleteStaleThrottles(ctx, before)
}

func atoi(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func fromMicro(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}
