package cache

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-sso/gatehouse/internal/testenv"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url        string
		wantErr    bool
		addr       string
		db         int
		prefix     string
		sentinels  []string
		master     string
		tls        bool
		password   string
		sentinelPw string
	}{
		{url: "redis://127.0.0.1:6379", addr: "127.0.0.1:6379", prefix: DefaultPrefix},
		{url: "redis://:s3cret@redis:6380/2?prefix=prod:", addr: "redis:6380", db: 2, prefix: "prod:", password: "s3cret"},
		{url: "rediss://redis.example:6380/0", addr: "redis.example:6380", prefix: DefaultPrefix, tls: true},
		{url: "redis-sentinel://s1:26379,s2:26380,s3/mymaster?db=1&prefix=gh:&sentinel_password=sp", master: "mymaster",
			sentinels: []string{"s1:26379", "s2:26380", "s3:26379"}, db: 1, prefix: "gh:", sentinelPw: "sp"},
		{url: "redis-sentinel://:pw@s1:26379/m", master: "m", sentinels: []string{"s1:26379"}, prefix: DefaultPrefix, password: "pw"},
		{url: "redis-sentinel://s1:26379/", wantErr: true},
		{url: "redis-sentinel://s1:26379/m?db=x", wantErr: true},
		{url: "memcached://x", wantErr: true},
		{url: "redis://x:6379/notadb", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			got, err := ParseURL(tc.url)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Prefix != tc.prefix {
				t.Errorf("prefix %q, want %q", got.Prefix, tc.prefix)
			}
			if tc.master != "" {
				f := got.Failover
				if f == nil || f.MasterName != tc.master || !slices.Equal(f.SentinelAddrs, tc.sentinels) || f.DB != tc.db ||
					f.Password != tc.password || f.SentinelPassword != tc.sentinelPw {
					t.Fatalf("failover options %+v", f)
				}
				return
			}
			o := got.Single
			if o == nil || o.Addr != tc.addr || o.DB != tc.db || o.Password != tc.password || (o.TLSConfig != nil) != tc.tls {
				t.Fatalf("options %+v", o)
			}
			if o.ReadTimeout != ioTimeout || o.DialTimeout != dialTimeout {
				t.Errorf("timeouts not applied: %+v", o)
			}
		})
	}
}

func openTest(t *testing.T, url string) *Client {
	t.Helper()
	c, err := Open(t.Context(), Options{URL: url, PingEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestPubSubAcrossClients(t *testing.T) {
	url := testenv.RedisURL(t)
	a, b := openTest(t, url), openTest(t, url)
	if !a.Healthy() {
		t.Fatal("client not healthy against a running redis")
	}
	got := make(chan []string, 4)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.SubscribeRevocations(ctx, func(ids []string) { got <- ids })
	// The subscription is asynchronous: publish until it is seen.
	deadline := time.After(5 * time.Second)
	for {
		if err := a.PublishRevocations(ctx, []string{"s1", "s2"}); err != nil {
			t.Fatal(err)
		}
		select {
		case ids := <-got:
			if !slices.Equal(ids, []string{"s1", "s2"}) {
				t.Fatalf("received %q", ids)
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("revocation not received")
		}
	}
}

func TestPrefixIsolation(t *testing.T) {
	// Two deployments on one Redis do not see each other's messages.
	a, b := openTest(t, testenv.RedisURL(t)), openTest(t, testenv.RedisURL(t))
	got := make(chan []string, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.SubscribeRevocations(ctx, func(ids []string) { got <- ids })
	time.Sleep(200 * time.Millisecond)
	_ = a.PublishRevocations(ctx, []string{"x"})
	select {
	case ids := <-got:
		t.Fatalf("other prefix received %q", ids)
	case <-time.After(300 * time.Millisecond):
	}
}

func newThrottle(t *testing.T, c *Client) (*Throttle, *sqlstore.Store) {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), filepath.Join(t.TempDir(), "gh.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return NewThrottle(c, st), st
}

func TestThrottleSemantics(t *testing.T) {
	c := openTest(t, testenv.RedisURL(t))
	th, st := newThrottle(t, c)
	ctx := t.Context()
	base := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	window, lockout := 10*time.Minute, 15*time.Minute
	steps := []struct {
		at       time.Duration
		failures int
		locked   time.Duration // 0: not locked
	}{
		{0, 1, 0},
		{time.Minute, 2, 0},
		{2 * time.Minute, 3, 2*time.Minute + lockout},  // limit 3 reached
		{3 * time.Minute, 4, 3*time.Minute + lockout},  // lock extends
		{20 * time.Minute, 1, 3*time.Minute + lockout}, // new window, old lock kept (longer)
	}
	for i, s := range steps {
		got, err := th.RecordFailure(ctx, "user:alice", base.Add(s.at), window, 3, lockout)
		if err != nil {
			t.Fatal(err)
		}
		var want time.Time
		if s.locked != 0 {
			want = base.Add(s.locked)
		}
		if got.Failures != s.failures || !got.LockedUntil.Equal(want) {
			t.Errorf("step %d: %+v, want failures %d locked until %v", i, got, s.failures, want)
		}
	}
	got, err := th.GetThrottle(ctx, "user:alice")
	if err != nil || got.Failures != 1 {
		t.Fatalf("GetThrottle = %+v, %v", got, err)
	}
	// Nothing was written to the store while Redis was up.
	if s, _ := st.GetThrottle(ctx, "user:alice"); s.Failures != 0 {
		t.Errorf("store counted %d failures while redis was healthy", s.Failures)
	}
	if ttl := c.rdb.PTTL(ctx, th.key("user:alice")).Val(); ttl <= 0 {
		t.Errorf("counter key has no expiry (ttl %v)", ttl)
	}
	if err := th.ClearThrottle(ctx, "user:alice"); err != nil {
		t.Fatal(err)
	}
	if got, _ := th.GetThrottle(ctx, "user:alice"); got.Failures != 0 || !got.LockedUntil.IsZero() {
		t.Errorf("after clear: %+v", got)
	}
}

// TestOutageAndRecovery stops a private redis-server: counters fall back
// to the store, a lock taken during the outage still holds afterwards,
// and health comes back by itself.
func TestOutageAndRecovery(t *testing.T) {
	srv := testenv.StartRedis(t)
	var changes []bool
	c, err := Open(t.Context(), Options{URL: srv.URL("gh:"), PingEvery: 50 * time.Millisecond,
		OnHealth: func(up bool) { changes = append(changes, up) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runDone := make(chan struct{})
	go func() { c.Run(ctx); close(runDone) }()
	defer func() { cancel(); <-runDone }()
	th, st := newThrottle(t, c)
	now := time.Now()

	srv.Stop()
	waitHealth(t, c, false)
	for range 3 {
		if _, err := th.RecordFailure(ctx, "ip:10.0.0.1", now, time.Minute, 3, time.Hour); err != nil {
			t.Fatalf("RecordFailure during outage: %v", err)
		}
	}
	if s, _ := st.GetThrottle(ctx, "ip:10.0.0.1"); s.Failures != 3 || s.LockedUntil.IsZero() {
		t.Fatalf("store fallback state %+v", s)
	}
	if err := c.PublishRevocations(ctx, []string{"x"}); err == nil {
		t.Error("publish during outage reported success")
	}

	srv.Start()
	waitHealth(t, c, true)
	got, err := th.GetThrottle(ctx, "ip:10.0.0.1")
	if err != nil || got.LockedUntil.IsZero() {
		t.Errorf("lock taken during the outage lost after recovery: %+v, %v", got, err)
	}
	// Up at Open, down, up again.
	if !slices.Equal(changes, []bool{true, false, true}) {
		t.Errorf("health changes %v, want [true false true]", changes)
	}
}

func waitHealth(t *testing.T, c *Client, want bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for c.Healthy() != want {
		select {
		case <-c.Changed():
		case <-deadline:
			t.Fatalf("health did not become %v", want)
		}
	}
}
