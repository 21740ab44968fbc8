package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/gatehouse-sso/gatehouse/internal/testenv"
)

// caddyBinary finds caddy on PATH or where scripts/test-deps.sh installs
// it (<repo>/.cache/bin).
func caddyBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("caddy"); err == nil {
		return p
	}
	p, _ := filepath.Abs(filepath.Join("..", "..", ".cache", "bin", "caddy"))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	testenv.Missing(t, "caddy (scripts/test-deps.sh installs it into .cache/bin)")
	return ""
}

// TestCaddyForwardAuth is the sign-in journey through real Caddy and its
// forward_auth directive: Gatehouse answers the Traefik/Caddy dialect, and
// Caddy relays its 302 to the browser.
func TestCaddyForwardAuth(t *testing.T) {
	bin := caddyBinary(t)
	port := freePort(t)
	auth := fmt.Sprintf("http://auth.homelab.test:%d", port)
	sonarr := fmt.Sprintf("http://sonarr.homelab.test:%d", port)
	radarr := fmt.Sprintf("http://radarr.homelab.test:%d", port)
	srv := forwardAuthServer(t, auth)
	echo := startEcho(t)

	dir := t.TempDir()
	gh, _ := strconv.Atoi(strings.TrimPrefix(hostPort(srv.URL), "127.0.0.1:"))
	be, _ := strconv.Atoi(strings.TrimPrefix(hostPort(echo.URL), "127.0.0.1:"))
	var conf bytes.Buffer
	tmpl := template.Must(template.ParseFiles(filepath.Join("testdata", "Caddyfile.tmpl")))
	if err := tmpl.Execute(&conf, map[string]any{"Port": port, "GatehousePort": gh, "BackendPort": be, "Dir": dir}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "Caddyfile"), conf.String())
	cmd := exec.Command(bin, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	runProxy(t, "caddy", port, cmd)

	b := homelabBrowser(t)
	target := sonarr + "/calendar?x=1"
	resp, _ := b.getWith(target)
	want := auth + "/gate/start?rd=" + url.QueryEscape(target)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
		t.Fatalf("unauthenticated: %d to %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	resp, _ = b.getWith(target, "Accept", "application/json")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated API client: %d, want 401", resp.StatusCode)
	}

	resp, _, hops := b.follow(want, 3)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login" {
		t.Fatalf("start did not lead to the sign-in page: %v", hops)
	}
	resp, _ = b.SignIn(auth, "alice", "alice password 1", "/gate/start?rd="+url.QueryEscape(target))
	resp, body, hops := b.follow(resp.Header.Get("Location"), 5)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != target {
		t.Fatalf("after sign-in: %d %v\n%s", resp.StatusCode, hops, body)
	}
	e := decodeEcho(t, body)
	if strings.Join(e.Headers["Remote-User"], "") != "alice" || strings.Join(e.Headers["Remote-Groups"], "") != "media" {
		t.Fatalf("backend saw %v", e.Headers)
	}

	resp, body = b.getWith(radarr+"/", "Remote-User", "admin")
	if resp.StatusCode != http.StatusOK || strings.Join(decodeEcho(t, body).Headers["Remote-User"], ",") != "alice" {
		t.Fatalf("radarr (second host, forged header): %d\n%s", resp.StatusCode, body)
	}

	bob := homelabBrowser(t)
	resp, _ = bob.SignIn(auth, "bob", "bob password 12", "/gate/start?rd="+url.QueryEscape(sonarr+"/"))
	if resp, _, hops := bob.follow(resp.Header.Get("Location"), 5); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob on sonarr: %d %v", resp.StatusCode, hops)
	}

	gate := b.Cookie(radarr, "gatehouse_gate")
	b.signOut(auth + "/gate/sign_out")
	if resp, _ := b.getWith(radarr + "/"); resp.StatusCode != http.StatusFound {
		t.Fatalf("after sign-out: %d, want 302", resp.StatusCode)
	}
	// The old cookie value is dead on the server, not just dropped by the
	// browser.
	if gate == nil {
		t.Fatal("no gate cookie before sign-out")
	}
	if resp, _ := homelabBrowser(t).getWith(radarr+"/", "Cookie", "gatehouse_gate="+gate.Value); resp.StatusCode != http.StatusFound {
		t.Fatalf("old gate cookie after sign-out: %d, want 302", resp.StatusCode)
	}
}
