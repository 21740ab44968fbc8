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

// startNginx renders testdata/nginx.conf.tmpl (ingress-nginx's output for
// the two apps) and runs the machine's nginx on port.
func startNginx(t *testing.T, port int, gatehouseURL, backendURL string, hosts []string) {
	t.Helper()
	bin := "/usr/sbin/nginx"
	if _, err := os.Stat(bin); err != nil {
		bin = testenv.LookPath(t, "nginx")
	}
	for _, m := range []string{"ndk_http_module.so", "ngx_http_set_misc_module.so"} {
		if _, err := os.Stat("/usr/lib/nginx/modules/" + m); err != nil {
			testenv.Missing(t, "nginx module %s (apt-get install libnginx-mod-http-set-misc)", m)
		}
	}
	tmpl := template.Must(template.ParseFiles(filepath.Join("testdata", "nginx.conf.tmpl")))
	gh, _ := strconv.Atoi(strings.TrimPrefix(hostPort(gatehouseURL), "127.0.0.1:"))
	be, _ := strconv.Atoi(strings.TrimPrefix(hostPort(backendURL), "127.0.0.1:"))
	var conf bytes.Buffer
	if err := tmpl.Execute(&conf, map[string]any{
		"Port": port, "GatehousePort": gh, "BackendPort": be, "Hosts": hosts, "Root": os.Geteuid() == 0,
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "nginx.conf"), conf.String())
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	runProxy(t, "nginx", port, exec.Command(bin, "-p", dir, "-e", "stderr", "-c", "nginx.conf", "-g", "daemon off;"))
}

// TestNginxForwardAuth is the issue-3 journey behind real nginx configured
// as ingress-nginx generates it.
func TestNginxForwardAuth(t *testing.T) {
	port := freePort(t)
	auth := fmt.Sprintf("http://auth.homelab.test:%d", port)
	sonarr := fmt.Sprintf("http://sonarr.homelab.test:%d", port)
	radarr := fmt.Sprintf("http://radarr.homelab.test:%d", port)
	srv := forwardAuthServer(t, auth)
	echo := startEcho(t)
	startNginx(t, port, srv.URL, echo.URL, []string{"sonarr.homelab.test", "radarr.homelab.test"})

	alice := homelabBrowser(t)
	target := sonarr + "/calendar?x=1&y=a%20b"

	t.Run("unauthenticated is sent to sign in with the right rd", func(t *testing.T) {
		resp, _ := alice.getWith(target)
		want := auth + "/gate/start?rd=" + sonarr + "%2Fcalendar%3Fx%3D1%26y%3Da%2520b"
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
			t.Fatalf("got %d to %q, want 302 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		resp, _ = alice.getWith(resp.Header.Get("Location"))
		wantLogin := auth + "/login?rd=" + url.QueryEscape("/gate/start?rd="+url.QueryEscape(target))
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != wantLogin {
			t.Fatalf("start: %d to %q, want %q", resp.StatusCode, resp.Header.Get("Location"), wantLogin)
		}
	})

	t.Run("sign in through the form lands back at the app with identity headers", func(t *testing.T) {
		resp, _ := alice.SignIn(auth, "alice", "alice password 1", "/gate/start?rd="+url.QueryEscape(target))
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
		resp, body, hops := alice.follow(resp.Header.Get("Location"), 5)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after sign-in: %d %v\n%s", resp.StatusCode, hops, body)
		}
		if got := resp.Request.URL.String(); got != target {
			t.Fatalf("landed on %q, want %q (%v)", got, target, hops)
		}
		e := decodeEcho(t, body)
		for k, want := range map[string]string{"Remote-User": "alice", "Remote-Groups": "media", "Remote-Email": "alice@example.com", "Remote-Name": "Alice Liddell"} {
			if got := strings.Join(e.Headers[k], ","); got != want {
				t.Errorf("backend saw %s = %q, want %q", k, got, want)
			}
		}
		if e.URI != "/calendar?x=1&y=a%20b" {
			t.Errorf("backend URI %q", e.URI)
		}
		c := alice.Cookie(sonarr, "gatehouse_gate")
		if c == nil {
			t.Fatal("no gate cookie for the app host")
		}
		if alice.Cookie(radarr, "gatehouse_session") != nil {
			t.Fatal("the IdP session cookie leaked to the app hosts")
		}
	})

	t.Run("second host needs no new sign-in", func(t *testing.T) {
		resp, body := alice.getWith(radarr + "/movies")
		if resp.StatusCode != http.StatusOK || strings.Join(decodeEcho(t, body).Headers["Remote-User"], "") != "alice" {
			t.Fatalf("radarr: %d\n%s", resp.StatusCode, body)
		}
	})

	t.Run("forged identity headers never reach the backend", func(t *testing.T) {
		resp, body := alice.getWith(sonarr+"/", "Remote-User", "admin", "Remote-Groups", "admins", "Remote-Email", "x@evil")
		e := decodeEcho(t, body)
		if resp.StatusCode != 200 || strings.Join(e.Headers["Remote-User"], ",") != "alice" || strings.Join(e.Headers["Remote-Groups"], ",") != "media" {
			t.Fatalf("backend saw %v", e.Headers)
		}
		// On a skip path nobody is signed in, and the header must still go.
		anon := homelabBrowser(t)
		resp, body = anon.getWith(sonarr+"/api/v3/queue", "Remote-User", "admin")
		e = decodeEcho(t, body)
		if resp.StatusCode != 200 || len(e.Headers["Remote-User"]) != 0 {
			t.Fatalf("skip path: %d, backend saw Remote-User %q", resp.StatusCode, e.Headers["Remote-User"])
		}
	})

	t.Run("user outside allow_groups gets 403", func(t *testing.T) {
		bob := homelabBrowser(t)
		resp, _ := bob.SignIn(auth, "bob", "bob password 12", "/gate/start?rd="+url.QueryEscape(sonarr+"/"))
		resp, body, hops := bob.follow(resp.Header.Get("Location"), 5)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("bob on sonarr: %d %v\n%s", resp.StatusCode, hops, body)
		}
	})

	t.Run("bearer token works where allowed", func(t *testing.T) {
		token := strings.TrimSpace(srv.MustCLI("", "token", "create", "--user", "alice", "--name", "grafana"))
		token = token[strings.LastIndex(token, "\n")+1:]
		m := homelabBrowser(t)
		resp, body := m.getWith(radarr+"/api/metrics", "Authorization", "Bearer "+token, "Accept", "application/json")
		if resp.StatusCode != 200 || strings.Join(decodeEcho(t, body).Headers["Remote-User"], "") != "alice" {
			t.Fatalf("bearer on radarr: %d\n%s", resp.StatusCode, body)
		}
		resp, _ = m.getWith(sonarr+"/", "Authorization", "Bearer "+token)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("bearer on sonarr (not allowed): %d, want 302 to sign-in", resp.StatusCode)
		}
		resp, _ = m.getWith(radarr+"/", "Authorization", "Bearer gh_not-a-token")
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad bearer on radarr: %d", resp.StatusCode)
		}
		pw := strings.TrimSpace(srv.MustCLI("", "token", "create", "--user", "alice", "--name", "scraper", "--kind", "app-password"))
		pw = pw[strings.LastIndex(pw, "\n")+1:]
		req, _ := http.NewRequest("GET", radarr+"/", nil)
		req.SetBasicAuth("alice", pw)
		r2, err := m.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.StatusCode != 200 {
			t.Fatalf("app password on radarr: %d", r2.StatusCode)
		}
	})

	t.Run("sign-out ends access on both hosts", func(t *testing.T) {
		gate := alice.Cookie(sonarr, "gatehouse_gate").Value
		alice.signOut(auth + "/outpost.goauthentik.io/sign_out")
		for _, u := range []string{sonarr + "/", radarr + "/"} {
			if resp, _ := alice.getWith(u); resp.StatusCode != http.StatusFound {
				t.Errorf("%s after sign-out: %d, want 302", u, resp.StatusCode)
			}
			// Even a copy of the old cookie is dead on the server side.
			stale := homelabBrowser(t)
			if resp, _ := stale.getWith(u, "Cookie", "gatehouse_gate="+gate); resp.StatusCode != http.StatusFound {
				t.Errorf("%s with the old gate cookie: %d, want 302", u, resp.StatusCode)
			}
		}
	})
}
