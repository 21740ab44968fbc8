package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisAddr is the machine's shared Redis; GATEHOUSE_TEST_REDIS overrides
// it (host:port).
func RedisAddr() string {
	if a := os.Getenv("GATEHOUSE_TEST_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// RedisURL returns a redis_url for the shared Redis with a key prefix of
// this test's own, and deletes the test's keys when it ends. The shared
// Redis is never flushed.
func RedisURL(t testing.TB) string {
	t.Helper()
	addr := RedisAddr()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		Missing(t, "redis at %s: %v", addr, err)
	}
	prefix := "gh-test-" + RandomHex(6) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		_ = c.Close()
	})
	return "redis://" + addr + "/0?prefix=" + prefix
}

// RedisServer is a private redis-server a test starts and stops (for
// outages) without touching the shared one.
type RedisServer struct {
	t    testing.TB
	bin  string
	dir  string
	Port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis runs redis-server on a free port with persistence off. It is
// stopped when the test ends.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin := LookPath(t, "redis-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	r := &RedisServer{t: t, bin: bin, dir: t.TempDir(), Port: port}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// URL is the server's redis_url with the given key prefix.
func (r *RedisServer) URL(prefix string) string {
	return fmt.Sprintf("redis://127.0.0.1:%d/0?prefix=%s", r.Port, prefix)
}

// Start (re)starts the server on its port and waits until it answers.
func (r *RedisServer) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return
	}
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.Port), DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("redis-server on port %d did not answer", r.Port)
}

// Stop terminates the server (an outage) and waits for it to exit.
func (r *RedisServer) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd, r.done = nil, nil
}
