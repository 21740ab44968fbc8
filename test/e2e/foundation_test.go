package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestPasswordSignIn is the foundation journey: first start prints a
// bootstrap admin, the CLI manages the directory, a person signs in through
// the form, a wrong password is refused and repeated failures lock out.
func TestPasswordSignIn(t *testing.T) {
	srv := StartServer(t, ServerOptions{Env: []string{"GATEHOUSE_LOGIN_MAX_FAILURES=3"}})

	for _, p := range []string{"/healthz/live", "/healthz/ready", "/-/health/live/", "/-/health/ready/"} {
		resp, _ := NewBrowser(t).Get(srv.URL + p)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}

	t.Run("bootstrap admin signs in", func(t *testing.T) {
		b := NewBrowser(t)
		resp, _ := b.SignIn(srv.URL, "admin", srv.BootstrapPassword(), "")
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
			t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		_, home := b.Get(srv.URL + "/")
		if !strings.Contains(home, `id="username">admin<`) || !strings.Contains(home, "admins") {
			t.Fatalf("landing page does not show the admin and its group:\n%s", home)
		}
	})

	srv.MustCLI("", "group", "create", "media")
	out := srv.MustCLI("correct horse battery\n", "user", "create", "alice", "--email", "alice@example.com", "--name", "Alice Liddell", "--group", "media", "--password-stdin")
	if !strings.Contains(out, "created user alice") {
		t.Fatalf("user create said %q", out)
	}
	if list := srv.MustCLI("", "user", "list"); !strings.Contains(list, "alice") || !strings.Contains(list, "media") {
		t.Fatalf("user list:\n%s", list)
	}

	t.Run("session cookie and flags", func(t *testing.T) {
		b := NewBrowser(t)
		resp, _ := b.SignIn(srv.URL, "alice", "correct horse battery", "/")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("sign-in status %d", resp.StatusCode)
		}
		var c *http.Cookie
		for _, rc := range resp.Cookies() {
			if rc.Name == "gatehouse_session" {
				c = rc
			}
		}
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Domain != "" || len(c.Value) < 43 {
			t.Fatalf("session cookie %+v", c)
		}
	})

	t.Run("form without CSRF token is refused", func(t *testing.T) {
		b := NewBrowser(t)
		resp, _ := b.PostForm(srv.URL+"/login", map[string][]string{"username": {"alice"}, "password": {"correct horse battery"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	t.Run("open redirect refused", func(t *testing.T) {
		b := NewBrowser(t)
		resp, _ := b.Get(srv.URL + "/login?rd=https://evil.example.com/")
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	t.Run("wrong password then lockout", func(t *testing.T) {
		b := NewBrowser(t)
		for i := 0; i < 3; i++ {
			resp, body := b.SignIn(srv.URL, "alice", "Tr0ub4dor-wrong", "")
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Incorrect username or password") {
				t.Fatalf("attempt %d: %d", i, resp.StatusCode)
			}
		}
		resp, body := b.SignIn(srv.URL, "alice", "correct horse battery", "")
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed") {
			t.Fatalf("locked account accepted the right password: %d", resp.StatusCode)
		}
		// An unknown user gets the same answers, so lockout reveals nothing.
		for i := 0; i < 3; i++ {
			if resp, _ := b.SignIn(srv.URL, "nobody", "Tr0ub4dor-wrong", ""); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("unknown user attempt %d: %d", i, resp.StatusCode)
			}
		}
		if resp, _ := b.SignIn(srv.URL, "nobody", "Tr0ub4dor-wrong", ""); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("unknown user not locked like a real one: %d", resp.StatusCode)
		}
		srv.MustCLI("", "user", "unlock", "alice")
		if resp, _ := b.SignIn(srv.URL, "alice", "correct horse battery", ""); resp.StatusCode != http.StatusFound {
			t.Fatalf("after unlock: %d", resp.StatusCode)
		}
	})

	t.Run("disable ends sessions", func(t *testing.T) {
		b := NewBrowser(t)
		if resp, _ := b.SignIn(srv.URL, "alice", "correct horse battery", ""); resp.StatusCode != http.StatusFound {
			t.Fatalf("sign-in %d", resp.StatusCode)
		}
		srv.MustCLI("", "user", "disable", "alice")
		// The server's session cache holds an entry for at most 2 s.
		waitFor(t, func() bool {
			resp, _ := b.Get(srv.URL + "/")
			return resp.StatusCode == http.StatusFound
		})
		if resp, _ := b.SignIn(srv.URL, "alice", "correct horse battery", ""); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("disabled user signed in: %d", resp.StatusCode)
		}
	})

	t.Run("sign out", func(t *testing.T) {
		b := NewBrowser(t)
		b.SignIn(srv.URL, "admin", srv.BootstrapPassword(), "")
		old := b.Cookie(srv.URL, "gatehouse_session")
		if old == nil {
			t.Fatal("no session cookie after sign-in")
		}
		_, page := b.Get(srv.URL + "/logout")
		resp, _ := b.PostForm(srv.URL+"/logout", map[string][]string{"csrf_token": {CSRFToken(t, page)}})
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("logout %d", resp.StatusCode)
		}
		if resp, _ := b.Get(srv.URL + "/"); resp.StatusCode != http.StatusFound {
			t.Fatalf("still signed in after logout: %d", resp.StatusCode)
		}
		// The old cookie value is dead on the server, not just dropped.
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		req.AddCookie(&http.Cookie{Name: "gatehouse_session", Value: old.Value})
		resp, err := NewBrowser(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("old session cookie after logout: %d", resp.StatusCode)
		}
	})

	t.Run("no secrets in logs", func(t *testing.T) {
		logs := srv.Output()
		for _, secret := range []string{"correct horse battery", "Tr0ub4dor-wrong"} {
			if strings.Contains(logs, secret) {
				t.Fatalf("log contains %q", secret)
			}
		}
	})
}
