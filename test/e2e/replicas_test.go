package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/testenv"
)

// replicaConfig protects app.homelab.test for the media group.
const replicaConfig = `
cookie_domain: homelab.test
trusted_proxies: ["127.0.0.1"]
forward_auth:
  default_policy: deny
apps:
  - slug: app
    name: App
    allow_groups: [media]
    forward_auth:
      hosts: [app.homelab.test]
`

const appURL = "http://app.homelab.test/"

// replica starts one gatehouse process of the cluster. Every replica
// shares the database, Redis and secret key and is reached under its own
// port of auth.homelab.test (in production they share one URL behind a
// Service; the browser's cookies do not depend on the port).
func replica(t *testing.T, role string, shared []string, extra ...string) *Server {
	t.Helper()
	addr := FreeAddr(t)
	env := append([]string{
		"GATEHOUSE_LISTEN=" + addr,
		"GATEHOUSE_EXTERNAL_URL=http://auth.homelab.test:" + strings.TrimPrefix(addr, "127.0.0.1:"),
		"GATEHOUSE_ROLE=" + role,
		"GATEHOUSE_SHUTDOWN_DELAY=0s",
	}, shared...)
	return StartServer(t, ServerOptions{ConfigYAML: replicaConfig, Env: append(env, extra...)})
}

// authURL is the replica's public URL (auth.homelab.test:port).
func authURL(s *Server) string {
	return "http://auth.homelab.test:" + strings.TrimPrefix(s.URL, "http://127.0.0.1:")
}

// check asks s's forward-auth endpoint about appURL with the gate cookie,
// as nginx's auth_request does, and returns the status and Remote-User.
func check(t *testing.T, s *Server, gate string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+"/api/authz/nginx", nil)
	req.Header.Set("X-Original-URL", appURL)
	req.Header.Set("X-Original-Method", "GET")
	if gate != "" {
		req.Header.Set("Cookie", "gatehouse_gate="+gate)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("forward-auth check on %s: %v", s.URL, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Remote-User")
}

// signInGate signs alice in through s and returns the gate cookie value.
func signInGate(t *testing.T, s *Server, b *Browser) string {
	t.Helper()
	rd := "/gate/start?rd=" + url.QueryEscape(appURL)
	resp, body := b.SignIn(authURL(s), "alice", "alice password 1", rd)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-in on %s: %d\n%s", s.URL, resp.StatusCode, body)
	}
	next := resp.Header.Get("Location")
	if strings.HasPrefix(next, "/") {
		next = authURL(s) + next
	}
	resp, _ = b.getWith(next)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != appURL {
		t.Fatalf("gate start: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	c := b.Cookie(appURL, "gatehouse_gate")
	if c == nil {
		t.Fatal("no gate cookie after sign-in")
	}
	return c.Value
}

// signOut signs the browser out of the IdP through s (the sign-out form).
func signOut(t *testing.T, s *Server, b *Browser) {
	t.Helper()
	_, page := b.Get(authURL(s) + "/logout")
	resp, body := b.PostForm(authURL(s)+"/logout", url.Values{"csrf_token": {CSRFToken(t, page)}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-out on %s: %d\n%s", s.URL, resp.StatusCode, body)
	}
}

// refusedWithin polls s until the gate is refused and returns how long
// that took, failing after limit.
func refusedWithin(t *testing.T, s *Server, gate string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		code, _ := check(t, s, gate)
		if code == http.StatusUnauthorized {
			return time.Since(start)
		}
		if code != http.StatusOK {
			t.Fatalf("unexpected status %d", code)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s still allows the signed-out session after %v", s.URL, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readiness(t *testing.T, s *Server) (int, string) {
	t.Helper()
	resp, err := http.Get(s.URL + "/healthz/ready")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func waitReadiness(t *testing.T, s *Server, degraded bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := readiness(t, s)
		if code != http.StatusOK {
			t.Fatalf("readiness %d %q: a Redis outage must not make a replica unready", code, body)
		}
		if strings.Contains(body, "degraded") == degraded {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness stayed %q (want degraded=%v)", body, degraded)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReplicas runs two server replicas and a worker on one PostgreSQL
// database and one (private) Redis.
func TestReplicas(t *testing.T) {
	dbURL := testenv.PostgresDB(t)
	redis := testenv.StartRedis(t)
	shared := []string{
		"GATEHOUSE_DATABASE_URL=" + dbURL,
		"GATEHOUSE_REDIS_URL=" + redis.URL("gh-e2e-"+testenv.RandomHex(4)+":"),
		"GATEHOUSE_SECRET_KEY=" + testenv.RandomHex(32),
		"GATEHOUSE_DATABASE_MAX_OPEN_CONNS=5",
	}
	a := replica(t, "server", shared)
	a.MustCLI("", "group", "create", "media")
	a.MustCLI("alice password 1\n", "user", "create", "alice", "--group", "media", "--password-stdin")
	metricsAddr := FreeAddr(t)
	b := replica(t, "server", shared, "GATEHOUSE_METRICS_LISTEN="+metricsAddr)
	w := replica(t, "worker", shared)

	alice := homelabBrowser(t)
	var gate string

	t.Run("sign-in on A is honoured on B at once", func(t *testing.T) {
		gate = signInGate(t, a, alice)
		if code, user := check(t, b, gate); code != http.StatusOK || user != "alice" {
			t.Fatalf("check on B: %d user %q", code, user)
		}
		if code, _ := check(t, a, gate); code != http.StatusOK {
			t.Fatalf("check on A: %d", code)
		}
		if code, _ := check(t, b, ""); code != http.StatusUnauthorized {
			t.Fatalf("anonymous check on B: %d, want 401", code)
		}
	})

	t.Run("sign-out on B stops A within 1s", func(t *testing.T) {
		check(t, a, gate) // A has the session in its cache
		signOut(t, b, alice)
		took := refusedWithin(t, a, gate, time.Second)
		t.Logf("A refused the signed-out session after %v", took)
	})

	t.Run("restarting A logs nobody out", func(t *testing.T) {
		gate = signInGate(t, a, alice)
		a.Restart()
		if code, user := check(t, a, gate); code != http.StatusOK || user != "alice" {
			t.Fatalf("check on restarted A: %d %q", code, user)
		}
		if code, _ := check(t, b, gate); code != http.StatusOK {
			t.Fatalf("check on B after A restarted: %d", code)
		}
	})

	t.Run("the worker leads and runs jobs", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get(w.URL + "/healthz/worker")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "leader true") && strings.Contains(string(body), "expired-sessions last_run=") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("worker status:\n%s", body)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Server replicas run no jobs.
		if strings.Contains(a.Output(), `"component":"worker"`) {
			t.Error("a server replica ran worker jobs")
		}
	})

	t.Run("Redis outage: nobody signed out, sign-in and revocation still work, recovery by itself", func(t *testing.T) {
		redis.Stop()
		waitReadiness(t, a, true)
		waitReadiness(t, b, true)
		if code, _ := check(t, b, gate); code != http.StatusOK {
			t.Fatalf("existing session on B during the outage: %d", code)
		}
		if code, _ := check(t, a, gate); code != http.StatusOK {
			t.Fatalf("existing session on A during the outage: %d", code)
		}
		bob := homelabBrowser(t)
		gate2 := signInGate(t, a, bob) // sign-in (and its counters) fall back to the store
		if code, _ := check(t, b, gate2); code != http.StatusOK {
			t.Fatalf("new session on B during the outage: %d", code)
		}
		check(t, b, gate2)
		signOut(t, a, bob)
		took := refusedWithin(t, b, gate2, time.Second)
		t.Logf("without Redis, B refused the signed-out session after %v (store feed)", took)

		redis.Start()
		waitReadiness(t, a, false)
		waitReadiness(t, b, false)
		if code, _ := check(t, b, gate); code != http.StatusOK {
			t.Fatalf("session after Redis came back: %d", code)
		}
	})

	t.Run("metrics on the separate listener", func(t *testing.T) {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`gatehouse_forwardauth_decisions_total{decision="allow"}`,
			`gatehouse_http_requests_total{code="200",route="forwardauth"}`,
			"gatehouse_redis_up 1",
			`go_sql_open_connections{db_name="main"}`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		if resp, err := http.Get(b.URL + "/metrics"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Error("/metrics is served on the public listener")
			}
		}
	})
}
