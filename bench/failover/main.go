// Command failover holds Gatehouse's forward-auth endpoint under load
// across two server replicas (PostgreSQL + Redis) behind a tiny
// round-robin proxy that retries on connection errors, restarts one
// replica in the middle, and counts failed requests. It also measures
// single-replica throughput on PostgreSQL+Redis and on SQLite alone, and
// the PostgreSQL connections each replica holds under load.
//
//	go run ./bench/failover -bin ./gatehouse   (see run.sh; ≤ 60 s)
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

var (
	bin      = flag.String("bin", "./gatehouse", "gatehouse binary")
	pgAdmin  = flag.String("pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL admin URL")
	redisBin = flag.String("redis-server", "redis-server", "redis-server binary (a private one is started)")
	dur      = flag.Duration("d", 8*time.Second, "duration of each throughput measurement")
	failDur  = flag.Duration("failover", 15*time.Second, "duration of the failover run")
	conc     = flag.Int("c", 32, "concurrent clients")
	pool     = flag.Int("pool", 10, "database.max_open_conns per replica")
)

const appURL = "http://app.bench.test/"

const cfgYAML = `cookie_domain: bench.test
trusted_proxies: ["127.0.0.1"]
log: {level: warn}
forward_auth: {default_policy: deny}
apps:
  - slug: app
    allow_groups: [media]
    forward_auth:
      hosts: [app.bench.test]
`

func main() {
	flag.Parse()
	log.SetFlags(0)
	tmp, err := os.MkdirTemp("", "gh-failover-")
	must(err)
	defer os.RemoveAll(tmp)
	must(os.WriteFile(filepath.Join(tmp, "gatehouse.yaml"), []byte(cfgYAML), 0o600))
	secret := strings.Repeat("ab", 32)

	// --- SQLite alone: one replica (role all).
	sq := start(tmp, "sqlite", "all", []string{"GATEHOUSE_DATA_DIR=" + filepath.Join(tmp, "sqlite"), "GATEHOUSE_SECRET_KEY=" + secret})
	seed(sq)
	gate := signIn(sq)
	rSQ := load(context.Background(), []string{sq.url}, gate, *dur, nil)
	sq.stop()
	fmt.Printf("sqlite, 1 replica (all):              %s\n", rSQ)

	// --- PostgreSQL + Redis.
	dbName := fmt.Sprintf("gh_failover_%d", os.Getpid())
	admin, err := sql.Open("pgx", *pgAdmin)
	must(err)
	_, err = admin.Exec("CREATE DATABASE " + dbName)
	must(err)
	defer func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS " + dbName + " WITH (FORCE)") }()
	u, _ := url.Parse(*pgAdmin)
	u.Path = "/" + dbName
	redisPort := freePort()
	rs := exec.Command(*redisBin, "--port", fmt.Sprint(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp)
	must(rs.Start())
	defer func() { _ = rs.Process.Kill(); _ = rs.Wait() }()
	time.Sleep(200 * time.Millisecond)

	env := func(name string) []string {
		q := u.Query()
		q.Set("application_name", "gatehouse-"+name)
		pu := *u
		pu.RawQuery = q.Encode()
		return []string{
			"GATEHOUSE_DATA_DIR=" + filepath.Join(tmp, name),
			"GATEHOUSE_DATABASE_URL=" + pu.String(),
			fmt.Sprintf("GATEHOUSE_DATABASE_MAX_OPEN_CONNS=%d", *pool),
			fmt.Sprintf("GATEHOUSE_REDIS_URL=redis://127.0.0.1:%d/0?prefix=bench:", redisPort),
			"GATEHOUSE_SECRET_KEY=" + secret,
			"GATEHOUSE_SHUTDOWN_DELAY=1s",
		}
	}
	a := start(tmp, "a", "server", env("a"))
	defer a.stop()
	seed(a)
	b := start(tmp, "b", "server", env("b"))
	defer b.stop()
	w := start(tmp, "w", "worker", env("w"))
	defer w.stop()
	gate = signIn(a)

	rPG := load(context.Background(), []string{a.url}, gate, *dur, nil)
	fmt.Printf("postgres+redis, 1 replica (server):   %s\n", rPG)
	conns := pgConns(admin, dbName)
	rPG2 := load(context.Background(), []string{a.url, b.url}, gate, *dur, func() { conns = maxConns(conns, pgConns(admin, dbName)) })
	fmt.Printf("postgres+redis, 2 replicas (proxy):   %s\n", rPG2)
	fmt.Printf("postgres connections per replica under load (max seen; pool %d): %s\n", *pool, fmtConns(conns))

	// --- Failover: restart A in the middle of a sustained run.
	var restartTook time.Duration
	rF := load(context.Background(), []string{a.url, b.url}, gate, *failDur, nil, func() {
		time.Sleep(*failDur / 3)
		t0 := time.Now()
		a.stop()
		a = start(tmp, "a", "server", env("a"))
		restartTook = time.Since(t0)
	})
	fmt.Printf("failover run (A restarted at %v):  %s\n", *failDur/3, rF)
	fmt.Printf("A: SIGTERM to ready again took %v (1s drain delay included)\n", restartTook.Round(time.Millisecond))
	if rF.failed > 0 {
		os.Exit(1)
	}
}

// ---------------------------------------------------------------- processes

type proc struct {
	name, url string
	cmd       *exec.Cmd
	done      chan struct{}
}

func start(tmp, name, role string, env []string) *proc {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort())
	cmd := exec.Command(*bin, "serve")
	cmd.Env = append(os.Environ(), append([]string{
		"GATEHOUSE_CONFIG=" + filepath.Join(tmp, "gatehouse.yaml"),
		"GATEHOUSE_LISTEN=" + addr,
		"GATEHOUSE_EXTERNAL_URL=http://auth.bench.test:" + strings.Split(addr, ":")[1],
		"GATEHOUSE_METRICS_LISTEN=",
		"GATEHOUSE_ROLE=" + role,
	}, env...)...)
	logf, err := os.Create(filepath.Join(tmp, name+".log"))
	must(err)
	cmd.Stdout, cmd.Stderr = logf, logf
	must(cmd.Start())
	p := &proc{name: name, url: "http://" + addr, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.url + "/healthz/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(tmp, name+".log"))
	log.Fatalf("%s did not become ready:\n%s", name, b)
	return nil
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
}

func seed(p *proc) {
	cli := func(stdin string, args ...string) {
		cmd := exec.Command(*bin, args...)
		cmd.Env = p.cmd.Env
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			log.Fatalf("gatehouse %v: %v\n%s", args, err, out)
		}
	}
	cli("", "group", "create", "media")
	cli("alice password 1\n", "user", "create", "alice", "--group", "media", "--password-stdin")
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn signs alice in through p and returns the gate cookie value.
func signIn(p *proc) string {
	jar, _ := cookiejar.New(nil)
	port := strings.Split(p.url, ":")[2]
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+port)
		}}}
	auth := "http://auth.bench.test:" + port
	resp, err := c.Get(auth + "/login")
	must(err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(page)
	if m == nil {
		log.Fatal("no csrf token")
	}
	rd := "/gate/start?rd=" + url.QueryEscape(appURL)
	resp, err = c.PostForm(auth+"/login", url.Values{"csrf_token": {string(m[1])}, "username": {"alice"}, "password": {"alice password 1"}, "rd": {rd}})
	must(err)
	resp.Body.Close()
	next := resp.Header.Get("Location")
	if strings.HasPrefix(next, "/") {
		next = auth + next
	}
	resp, err = c.Get(next)
	must(err)
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "gatehouse_gate" {
			return ck.Value
		}
	}
	log.Fatalf("no gate cookie (status %d)", resp.StatusCode)
	return ""
}

// ---------------------------------------------------------------- load

type result struct {
	ok, failed int64
	took       time.Duration
	lat        []time.Duration
	firstErr   string
}

func (r result) String() string {
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	q := func(f float64) time.Duration {
		if len(r.lat) == 0 {
			return 0
		}
		return r.lat[int(f*float64(len(r.lat)-1))].Round(time.Microsecond)
	}
	s := fmt.Sprintf("%8.0f req/s  ok %d  failed %d  p50 %v  p99 %v  max %v", float64(r.ok)/r.took.Seconds(), r.ok, r.failed, q(.5), q(.99), q(1))
	if r.firstErr != "" {
		s += "  first error: " + r.firstErr
	}
	return s
}

// proxy is the tiny round-robin proxy: a GET that fails at the transport
// (connection refused, or a keep-alive connection the restarting replica
// closed) is retried on the next backend, as nginx's proxy_next_upstream
// does.
type proxy struct {
	backends []string
	next     atomic.Uint64
	client   *http.Client
}

func (p *proxy) do(gate string) (int, error) {
	var last error
	first := int(p.next.Add(1))
	for try := 0; try < 2*len(p.backends); try++ {
		// Round-robin start, then the other backends in turn: a refused
		// connection moves to the next upstream, never the same one.
		b := p.backends[(first+try)%len(p.backends)]
		req, _ := http.NewRequest("GET", b+"/api/authz/nginx", nil)
		req.Header.Set("X-Original-URL", appURL)
		req.Header.Set("Cookie", "gatehouse_gate="+gate)
		resp, err := p.client.Do(req)
		if err != nil {
			last = err
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusBadGateway {
			last = fmt.Errorf("status %d", resp.StatusCode)
			continue
		}
		return resp.StatusCode, nil
	}
	return 0, last
}

func load(ctx context.Context, backends []string, gate string, d time.Duration, sample func(), during ...func()) result {
	p := &proxy{backends: backends, client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: *conc, IdleConnTimeout: 30 * time.Second}}}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu  sync.Mutex
		res result
		wg  sync.WaitGroup
	)
	for _, f := range during {
		wg.Go(f)
	}
	if sample != nil {
		wg.Go(func() {
			for ctx.Err() == nil {
				sample()
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
	start := time.Now()
	var lwg sync.WaitGroup
	for range *conc {
		lwg.Go(func() {
			var lat []time.Duration
			var ok, failed int64
			var firstErr string
			for ctx.Err() == nil {
				t0 := time.Now()
				code, err := p.do(gate)
				if err == nil && code == http.StatusOK {
					ok++
				} else {
					failed++
					if firstErr == "" {
						firstErr = fmt.Sprintf("%d %v", code, err)
					}
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.ok += ok
			res.failed += failed
			res.lat = append(res.lat, lat...)
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
			mu.Unlock()
		})
	}
	lwg.Wait()
	res.took = time.Since(start)
	cancel()
	wg.Wait()
	return res
}

// ---------------------------------------------------------------- postgres

func pgConns(db *sql.DB, dbName string) map[string]int {
	rows, err := db.Query("SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = $1 GROUP BY 1", dbName)
	if err != nil {
		return nil
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if rows.Scan(&name, &n) == nil {
			out[name] = n
		}
	}
	return out
}

func maxConns(a, b map[string]int) map[string]int {
	if a == nil {
		a = map[string]int{}
	}
	for k, v := range b {
		a[k] = max(a[k], v)
	}
	return a
}

func fmtConns(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func must(err error) {
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
