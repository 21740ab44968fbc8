package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// echoed is what the echo backend saw.
type echoed struct {
	Host    string              `json:"host"`
	URI     string              `json:"uri"`
	Headers map[string][]string `json:"headers"`
}

// startEcho runs the protected app: it answers every request with the
// request's host, URI and headers as JSON.
func startEcho(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Host: r.Host, URI: r.RequestURI, Headers: r.Header})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func decodeEcho(t testing.TB, body string) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an echo response: %v\n%s", err, body)
	}
	return e
}

// homelabBrowser is a Browser whose *.homelab.test names resolve to
// 127.0.0.1 (no /etc/hosts needed).
func homelabBrowser(t testing.TB) *Browser {
	b := NewBrowser(t)
	d := &net.Dialer{Timeout: 5 * time.Second}
	b.Client.Transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if host == "homelab.test" || strings.HasSuffix(host, ".homelab.test") {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
	}
	return b
}

// getWith fetches u with extra request headers.
func (b *Browser) getWith(u string, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.Client.Do(req)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	return resp, readBody(b.t, resp)
}

// follow GETs u and follows redirects (with the cookie jar) up to n hops,
// returning the last response.
func (b *Browser) follow(u string, n int) (*http.Response, string, []string) {
	b.t.Helper()
	var hops []string
	for range n {
		resp, body := b.getWith(u)
		hops = append(hops, fmt.Sprintf("%d %s", resp.StatusCode, u))
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			return resp, body, hops
		}
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			b.t.Fatal(err)
		}
		u = next.String()
	}
	b.t.Fatalf("more than %d redirects: %v", n, hops)
	return nil, "", nil
}

// forwardAuthServer starts Gatehouse with forward auth for sonarr and
// radarr on homelab.test, external URL authURL, plus users alice (media)
// and bob (no groups). It returns the server and the passwords.
func forwardAuthServer(t *testing.T, authURL string) *Server {
	t.Helper()
	srv := StartServer(t, ServerOptions{Env: []string{"GATEHOUSE_EXTERNAL_URL=" + authURL}, ConfigYAML: `
cookie_domain: homelab.test
trusted_proxies: ["127.0.0.1"]
forward_auth:
  default_policy: deny
apps:
  - slug: sonarr
    name: Sonarr
    allow_groups: [media]
    forward_auth:
      hosts: [sonarr.homelab.test]
      skip_paths: ["^/api/"]
  - slug: radarr
    name: Radarr
    allow_groups: [media]
    forward_auth:
      hosts: [radarr.homelab.test]
      allow_bearer: true
      allow_basic: true
`})
	srv.MustCLI("", "group", "create", "media")
	srv.MustCLI("alice password 1\n", "user", "create", "alice", "--email", "alice@example.com", "--name", "Alice Liddell", "--group", "media", "--password-stdin")
	srv.MustCLI("bob password 12\n", "user", "create", "bob", "--password-stdin")
	return srv
}

// runProxy starts a proxy command in dir and waits until port answers.
func runProxy(t *testing.T, name string, port int, cmd *exec.Cmd) {
	t.Helper()
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("%s exited:\n%s", name, out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %d:\n%s", name, port, out.String())
}

func hostPort(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	return u.Host
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// signOut signs out as a person does: the sign_out link leads to the
// confirmation page on the auth host, whose form ends the IdP session and
// with it every gate cookie bound to it.
func (b *Browser) signOut(signOutURL string) {
	b.t.Helper()
	resp, _ := b.getWith(signOutURL)
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign_out: %d, want 303 to the confirmation", resp.StatusCode)
	}
	confirm, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || confirm.Path != "/logout" {
		b.t.Fatalf("sign_out led to %q", resp.Header.Get("Location"))
	}
	resp, page := b.getWith(confirm.String())
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("confirmation page: %d", resp.StatusCode)
	}
	resp, _ = b.PostForm(confirm.Scheme+"://"+confirm.Host+"/logout", url.Values{
		"csrf_token": {CSRFToken(b.t, page)},
		"rd":         {formValue(b.t, page, "rd")},
	})
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("confirmed sign-out: %d", resp.StatusCode)
	}
}
