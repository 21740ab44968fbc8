// Package cache is Gatehouse's Redis backend: connection from redis_url
// (redis://, rediss://, redis-sentinel://), a key prefix per deployment,
// health tracking with automatic recovery, the session-revocation pub/sub
// channel and brute-force counters shared by every replica.
//
// Redis is an accelerator, never the source of truth: sessions, users and
// everything durable live in the SQL store. When Redis is unreachable the
// Client reports itself unhealthy, every caller falls back to the store,
// and nobody is signed out; when Redis returns the Client notices by itself
// and the fast paths resume. Only internal/app wires this package.
package cache

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// DefaultPrefix namespaces every key and channel unless the URL sets
// ?prefix=, so that several deployments (or test runs) can share a Redis.
const DefaultPrefix = "gatehouse:"

// Options configure Open.
type Options struct {
	// URL is redis://[user:pass@]host:port[/db], rediss://... (TLS) or
	// redis-sentinel://[user:pass@]host:port[,host:port...]/mastername[?db=N].
	// Any of them may carry ?prefix=NAME: to namespace keys.
	URL string
	// PingEvery is the health-check period (default 1s).
	PingEvery time.Duration
	// OnHealth is told of every health change (for metrics); it may be nil.
	OnHealth func(up bool)
	Logger   *slog.Logger
}

// Client is a Redis connection with health state. It is safe for
// concurrent use.
type Client struct {
	rdb     *redis.Client
	prefix  string
	o       Options
	log     *slog.Logger
	healthy atomic.Bool
	// changed is closed and replaced on every health change, so waiters
	// (tests, the pub/sub loop) can block on it.
	changes atomic.Pointer[chan struct{}]
}

// Open parses the URL and returns a Client. It does not require Redis to be
// up: a replica that starts during a Redis outage serves degraded and
// recovers when Redis comes back. Only a malformed URL is an error.
func Open(ctx context.Context, o Options) (*Client, error) {
	if o.PingEvery <= 0 {
		o.PingEvery = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	t, err := ParseURL(o.URL)
	if err != nil {
		return nil, err
	}
	c := &Client{rdb: t.client(), prefix: t.Prefix, o: o, log: o.Logger.With("component", "redis")}
	ch := make(chan struct{})
	c.changes.Store(&ch)
	c.check(ctx)
	if !c.healthy.Load() {
		c.log.Warn("redis does not answer at start; serving from the store until it does")
	}
	return c, nil
}

// Target is a parsed redis_url: either a single server or a Sentinel
// master, and the key prefix.
type Target struct {
	Single   *redis.Options
	Failover *redis.FailoverOptions
	Prefix   string
}

// Timeouts are short on purpose: a slow Redis must cost a request
// milliseconds, not go-redis's default seconds.
const (
	dialTimeout = time.Second
	ioTimeout   = 500 * time.Millisecond
)

func (t Target) client() *redis.Client {
	if t.Failover != nil {
		return redis.NewFailoverClient(t.Failover)
	}
	return redis.NewClient(t.Single)
}

// ParseURL parses a redis_url: redis://[user:pass@]host:port[/db],
// rediss://... (TLS), or
// redis-sentinel://[user:pass@]host:port[,host:port...]/mastername[?db=N&sentinel_password=P]
// (rediss-sentinel:// for TLS). Any of them may carry ?prefix=NAME to
// namespace keys (default "gatehouse:").
func ParseURL(raw string) (Target, error) {
	// A Sentinel URL lists several host:port pairs, which url.Parse
	// rejects; parse it with a stand-in host and put the list back.
	raw, hosts := cutSentinelHosts(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, errors.New("cache: redis_url does not parse") // no echo: it may hold a password
	}
	if hosts != "" {
		u.Host = hosts
	}
	q := u.Query()
	t := Target{Prefix: DefaultPrefix}
	if q.Has("prefix") {
		t.Prefix = q.Get("prefix")
		q.Del("prefix")
		u.RawQuery = q.Encode()
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
		o, err := redis.ParseURL(u.String())
		if err != nil {
			return Target{}, fmt.Errorf("cache: redis_url: %w", redactURLError(err))
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = dialTimeout, ioTimeout, ioTimeout, dialTimeout
		o.MaxRetries = 1
		// Gatehouse needs none of the maintenance push notifications;
		// leaving them on costs an extra command per connection.
		o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		o.DisableIdentity = true
		t.Single = o
	case "redis-sentinel", "rediss-sentinel":
		fo, err := sentinelOptions(u)
		if err != nil {
			return Target{}, err
		}
		fo.DialTimeout, fo.ReadTimeout, fo.WriteTimeout, fo.PoolTimeout = dialTimeout, ioTimeout, ioTimeout, dialTimeout
		fo.MaxRetries = 1
		fo.DisableIdentity = true
		t.Failover = fo
	default:
		return Target{}, fmt.Errorf("cache: redis_url scheme %q is not redis, rediss or redis-sentinel", u.Scheme)
	}
	return t, nil
}

const sentinelStandIn = "sentinels.invalid"

// cutSentinelHosts replaces the host list of a redis-sentinel URL by a
// stand-in and returns it separately; other URLs pass unchanged.
func cutSentinelHosts(raw string) (string, string) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "redis-sentinel" && scheme != "rediss-sentinel") {
		return raw, ""
	}
	authority, path := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	userinfo := ""
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, authority = authority[:i+1], authority[i+1:]
	}
	return scheme + "://" + userinfo + sentinelStandIn + path, authority
}

func redactURLError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// sentinelOptions builds options for a master found through Sentinel. The
// URL's credentials are the master's; sentinel_password= sets the
// Sentinels' own.
func sentinelOptions(u *url.URL) (*redis.FailoverOptions, error) {
	master := strings.Trim(u.Path, "/")
	if master == "" {
		return nil, errors.New("cache: redis-sentinel URL needs the master name as its path (redis-sentinel://host:26379/mymaster)")
	}
	var addrs []string
	for _, a := range strings.Split(u.Host, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if !strings.Contains(a, ":") {
				a += ":26379"
			}
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("cache: redis-sentinel URL names no sentinel")
	}
	q := u.Query()
	db := 0
	if s := q.Get("db"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("cache: redis-sentinel db=%q is not a database number", s)
		}
		db = n
	}
	fo := &redis.FailoverOptions{
		MasterName:       master,
		SentinelAddrs:    addrs,
		SentinelPassword: q.Get("sentinel_password"),
		DB:               db,
	}
	if u.User != nil {
		fo.Username = u.User.Username()
		fo.Password, _ = u.User.Password()
	}
	if u.Scheme == "rediss-sentinel" {
		fo.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return fo, nil
}

// Prefix is the deployment's key prefix.
func (c *Client) Prefix() string { return c.prefix }

// Key returns the namespaced key for name.
func (c *Client) Key(name string) string { return c.prefix + name }

// Redis is the underlying client, for tests and diagnostics.
func (c *Client) Redis() *redis.Client { return c.rdb }

// Healthy reports whether the last health check (or command) succeeded.
func (c *Client) Healthy() bool { return c.healthy.Load() }

// Changed returns a channel closed at the next health change.
func (c *Client) Changed() <-chan struct{} { return *c.changes.Load() }

// Run checks health every PingEvery until ctx ends. go-redis reconnects by
// itself; Run only notices when it succeeds.
func (c *Client) Run(ctx context.Context) {
	t := time.NewTicker(c.o.PingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.check(ctx)
		}
	}
}

func (c *Client) check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(c.o.PingEvery/2, 200*time.Millisecond))
	defer cancel()
	err := c.rdb.Ping(ctx).Err()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return // shutting down, not a Redis problem
	}
	c.setHealthy(err == nil, err)
}

// failed marks Redis unhealthy after a command error, so callers stop
// trying it until the next successful health check.
func (c *Client) failed(err error) {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) {
		return
	}
	c.setHealthy(false, err)
}

func (c *Client) setHealthy(up bool, err error) {
	if c.healthy.Swap(up) == up {
		return
	}
	if up {
		c.log.Info("redis is reachable again; shared counters and pub/sub resumed")
	} else {
		c.log.Warn("redis unreachable; serving degraded from the store", "err", err)
	}
	if c.o.OnHealth != nil {
		c.o.OnHealth(up)
	}
	next := make(chan struct{})
	old := c.changes.Swap(&next)
	close(*old)
}

// Close closes the connection pool.
func (c *Client) Close() error { return c.rdb.Close() }
