// Package revocation carries session revocations between replicas, so that
// signing out, changing a password or disabling a user on one replica
// stops access through every replica within a second.
//
// Each replica keeps sessions in a short-lived in-process cache
// (session.Manager). When one replica ends sessions, Feed.Revoked (wired to
// Manager.OnRevoke) writes them to the store's revocation feed and, when
// Redis is configured and healthy, publishes them on a Redis channel. Every
// replica drops the ids from its cache as soon as either path delivers
// them: Redis pub/sub in milliseconds, the store feed within one poll
// (250 ms without Redis). The store feed is durable, so a Redis outage or
// restart loses no revocation; the session cache TTL remains the last
// safety net.
package revocation

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// Publisher is the fast path (Redis pub/sub); it may fail, the store feed
// still carries the revocation.
type Publisher interface {
	PublishRevocations(ctx context.Context, ids []string) error
}

// Options configure a Feed.
type Options struct {
	Store store.Revocations
	// Invalidate drops ids from this replica's cache
	// (session.Manager.Invalidate plus anything bound to sessions).
	Invalidate func(ids []string)
	// Fast is the optional push channel; FastHealthy reports whether it
	// works right now (when it does, the store is polled less often).
	Fast        Publisher
	FastHealthy func() bool
	// Poll is the store polling period without a healthy fast path
	// (default 250ms); SlowPoll the period with one (default 1s).
	Poll, SlowPoll time.Duration
	// HoleWait is how long a gap in the sequence is waited for before the
	// cursor moves past it (default 2s). On PostgreSQL two transactions can
	// commit their feed rows out of sequence order; a gap that never fills
	// is a rolled-back insert.
	HoleWait time.Duration
	// OnReceived counts delivered revocations by source ("store",
	// "redis"); may be nil.
	OnReceived func(source string, n int)
	Logger     *slog.Logger
	Now        func() time.Time
}

// Feed publishes this replica's revocations and applies everyone's.
type Feed struct {
	o   Options
	log *slog.Logger

	mu     sync.Mutex
	cursor int64               // every seq <= cursor is applied or given up on
	seen   map[int64]bool      // applied seqs above cursor
	holes  map[int64]time.Time // missing seqs above cursor, and since when
	ready  bool                // cursor initialised
}

// New returns a Feed; call Run to start receiving.
func New(o Options) *Feed {
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.SlowPoll <= 0 {
		o.SlowPoll = time.Second
	}
	if o.HoleWait <= 0 {
		o.HoleWait = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OnReceived == nil {
		o.OnReceived = func(string, int) {}
	}
	return &Feed{o: o, log: o.Logger.With("component", "revocation"), seen: map[int64]bool{}, holes: map[int64]time.Time{}}
}

// Revoked publishes ids ended on this replica. It is synchronous (one
// store insert, one Redis publish) so that when the sign-out response is
// sent, every other replica can already learn of it; errors are logged,
// not returned, because the sessions are already gone from the store and
// other replicas' caches expire within their TTL regardless.
func (f *Feed) Revoked(ids []string) {
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := f.o.Store.AppendRevocations(ctx, ids, f.o.Now()); err != nil {
		f.log.Warn("writing revocations to the store feed; other replicas rely on Redis or the cache TTL", "sessions", len(ids), "err", err)
	}
	if f.o.Fast != nil && (f.o.FastHealthy == nil || f.o.FastHealthy()) {
		if err := f.o.Fast.PublishRevocations(ctx, ids); err != nil {
			f.log.Debug("publishing revocations to redis; the store feed carries them", "err", err)
		}
	}
}

// Received applies ids pushed by the fast path.
func (f *Feed) Received(source string, ids []string) {
	if len(ids) == 0 {
		return
	}
	f.o.Invalidate(ids)
	f.o.OnReceived(source, len(ids))
}

// Run polls the store feed until ctx ends.
func (f *Feed) Run(ctx context.Context) {
	for {
		d := f.o.Poll
		if f.o.Fast != nil && f.o.FastHealthy != nil && f.o.FastHealthy() {
			d = f.o.SlowPoll
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		if err := f.Poll(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("reading the revocation feed", "err", err)
		}
	}
}

// maxGap is the widest run of missing sequence numbers treated as
// transactions in flight rather than as rows pruned before this replica
// looked.
const maxGap = 256

// Poll reads the feed once and applies what is new. The first call only
// positions the cursor at the end: this replica's cache starts empty, so
// older revocations concern nothing it holds.
func (f *Feed) Poll(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready {
		last, err := f.o.Store.LastRevocationSeq(ctx)
		if err != nil {
			return err
		}
		f.cursor, f.ready = last, true
		return nil
	}
	const batch = 1000
	for {
		rs, err := f.o.Store.RevocationsAfter(ctx, f.cursor, batch)
		if err != nil {
			return err
		}
		now := f.o.Now()
		// A hole stands for a transaction still in flight, and only a few
		// run at once. A wide gap before the first new row is instead a
		// pruned feed (an empty table reports 0 while the sequence has
		// moved on): jump it rather than wait on thousands of holes.
		if len(rs) > 0 && rs[0].Seq-f.cursor > maxGap {
			f.cursor = rs[0].Seq - 1
		}
		var ids []string
		for _, r := range rs {
			if f.seen[r.Seq] {
				continue
			}
			f.seen[r.Seq] = true
			delete(f.holes, r.Seq)
			ids = append(ids, r.SessionID)
		}
		if len(rs) > 0 {
			for s := f.cursor + 1; s < rs[len(rs)-1].Seq; s++ {
				if !f.seen[s] {
					if _, ok := f.holes[s]; !ok {
						f.holes[s] = now
					}
				}
			}
		}
		f.advance(now)
		if len(ids) > 0 {
			f.o.Invalidate(ids)
			f.o.OnReceived("store", len(ids))
		}
		if len(rs) < batch {
			return nil
		}
	}
}

// advance moves the cursor over applied seqs and over holes older than
// HoleWait.
func (f *Feed) advance(now time.Time) {
	for {
		next := f.cursor + 1
		if f.seen[next] {
			delete(f.seen, next)
			f.cursor = next
			continue
		}
		if since, ok := f.holes[next]; ok && now.Sub(since) >= f.o.HoleWait {
			delete(f.holes, next)
			f.cursor = next
			continue
		}
		return
	}
}

// Cursor is the feed position, for tests.
func (f *Feed) Cursor() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cursor
}
