package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var recoveryURLRE = regexp.MustCompile(`(http://\S+/recover\?token=\S+)`)

// redeem opens a recovery URL and confirms it, as a person would.
func redeem(t *testing.T, b *Browser, link string) *http.Response {
	t.Helper()
	resp, page := b.Get(link)
	if resp.StatusCode != http.StatusOK {
		return resp
	}
	u, _ := url.Parse(link)
	resp, _ = b.PostForm(u.Scheme+"://"+u.Host+"/recover", url.Values{
		"csrf_token": {CSRFToken(t, page)},
		"token":      {u.Query().Get("token")},
	})
	return resp
}

// TestEmergencyAccess: a recovery URL signs in once, clears a lockout, and
// is refused the second time and after expiry.
func TestEmergencyAccess(t *testing.T) {
	srv := StartServer(t, ServerOptions{Env: []string{"GATEHOUSE_LOGIN_MAX_FAILURES=2"}})
	admin := srv.BootstrapPassword()
	// Lock the admin out.
	b := NewBrowser(t)
	for i := 0; i < 2; i++ {
		b.SignIn(srv.URL, "admin", "not-the-password", "")
	}
	if resp, _ := b.SignIn(srv.URL, "admin", admin, ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("expected lockout, got %d", resp.StatusCode)
	}

	out := srv.MustCLI("", "recovery-key", "--user", "admin", "--ttl", "10m")
	m := recoveryURLRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no URL printed:\n%s", out)
	}
	link := m[1]

	// A link preview (GET) does not use the link up.
	if resp, _ := NewBrowser(t).Get(link); resp.StatusCode != http.StatusOK {
		t.Fatalf("preview: %d", resp.StatusCode)
	}
	rb := NewBrowser(t)
	if resp := redeem(t, rb, link); resp.StatusCode != http.StatusFound {
		t.Fatalf("first use: %d", resp.StatusCode)
	}
	if _, home := rb.Get(srv.URL + "/"); !strings.Contains(home, `id="username">admin<`) {
		t.Fatalf("not signed in after recovery:\n%s", home)
	}
	if resp := redeem(t, NewBrowser(t), link); resp.StatusCode != http.StatusGone {
		t.Fatalf("second use: %d", resp.StatusCode)
	}
	// The lockout was cleared.
	if resp, _ := NewBrowser(t).SignIn(srv.URL, "admin", admin, ""); resp.StatusCode != http.StatusFound {
		t.Fatalf("lockout not cleared: %d", resp.StatusCode)
	}

	out = srv.MustCLI("", "recovery-key", "--user", "admin", "--ttl", "1s")
	expired := recoveryURLRE.FindStringSubmatch(out)[1]
	time.Sleep(1500 * time.Millisecond)
	if resp := redeem(t, NewBrowser(t), expired); resp.StatusCode != http.StatusGone {
		t.Fatalf("expired link: %d", resp.StatusCode)
	}
	if out, err := srv.CLI("", "recovery-key", "--user", "admin", "--ttl", "48h"); err == nil {
		t.Fatalf("a 48h link was issued:\n%s", out)
	}
}

// TestAuditEvents: each audited action leaves an event that
// `gatehouse events` finds.
func TestAuditEvents(t *testing.T) {
	srv := StartServer(t, ServerOptions{Env: []string{"GATEHOUSE_LOGIN_MAX_FAILURES=2"}})
	srv.MustCLI("", "group", "create", "media")
	srv.MustCLI("a fine password\n", "user", "create", "dave", "--password-stdin")
	srv.MustCLI("", "group", "add-member", "media", "dave")
	srv.MustCLI("", "group", "remove-member", "media", "dave")
	srv.MustCLI("another password\n", "user", "set-password", "dave", "--password-stdin")
	b := NewBrowser(t)
	b.SignIn(srv.URL, "dave", "wrong-one", "")
	b.SignIn(srv.URL, "dave", "wrong-two", "")
	b.SignIn(srv.URL, "dave", "another password", "")
	srv.MustCLI("", "user", "unlock", "dave")
	b.SignIn(srv.URL, "dave", "another password", "")
	_, page := b.Get(srv.URL + "/logout")
	b.PostForm(srv.URL+"/logout", url.Values{"csrf_token": {CSRFToken(t, page)}})
	tokOut := srv.MustCLI("", "token", "create", "--user", "dave", "--name", "prometheus")
	tokID := regexp.MustCompile(`\(id ([0-9a-f]+)\)`).FindStringSubmatch(tokOut)
	if tokID == nil {
		t.Fatalf("token create said:\n%s", tokOut)
	}
	srv.MustCLI("", "token", "revoke", tokID[1])
	srv.MustCLI("", "user", "disable", "dave")
	srv.MustCLI("", "user", "enable", "dave")
	out := srv.MustCLI("", "recovery-key", "--user", "dave")
	redeem(t, NewBrowser(t), recoveryURLRE.FindStringSubmatch(out)[1])
	srv.MustCLI("", "user", "delete", "dave")
	srv.MustCLI("", "group", "delete", "media")

	type event struct {
		Action, Actor, Subject, ClientIP, Outcome string
	}
	var events []event
	for _, line := range strings.Split(strings.TrimSpace(srv.MustCLI("", "events", "--json", "--limit", "500")), "\n") {
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("events --json line %q: %v", line, err)
		}
		events = append(events, e)
	}
	want := []event{
		{Action: "group.created", Actor: "cli", Subject: "media", Outcome: "success"},
		{Action: "user.created", Actor: "cli", Subject: "dave", Outcome: "success"},
		{Action: "group.member_added", Actor: "cli", Subject: "dave", Outcome: "success"},
		{Action: "group.member_removed", Actor: "cli", Subject: "dave", Outcome: "success"},
		{Action: "user.password_changed", Actor: "cli", Subject: "dave", Outcome: "success"},
		{Action: "login.failure", Actor: "dave", ClientIP: "127.0.0.1", Outcome: "failure"},
		{Action: "login.locked_out", Actor: "dave", ClientIP: "127.0.0.1", Outcome: "failure"},
		{Action: "user.unlocked", Actor: "cli", Subject: "dave", Outcome: "success"},
		{Action: "login.success", Actor: "dave", ClientIP: "127.0.0.1", Outcome: "success"},
		{Action: "logout", Actor: "dave", ClientIP: "127.0.0.1", Outcome: "success"},
		{Action: "token.issued", Actor: "cli", Subject: "dave", Outcome: "success"},
		{Action: "token.revoked", Actor: "cli", Subject: "dave", Outcome: "success"},
		{Action: "user.disabled", Actor: "cli", Subject: "dave", Outcome: "success"},
		{Action: "user.enabled", Actor: "cli", Subject: "dave", Outcome: "success"},
		{Action: "recovery.created", Actor: "cli", Subject: "dave", Outcome: "success"},
		{Action: "recovery.used", Actor: "dave", ClientIP: "127.0.0.1", Outcome: "success"},
		{Action: "user.deleted", Actor: "cli", Subject: "dave", Outcome: "success"},
		{Action: "group.deleted", Actor: "cli", Subject: "media", Outcome: "success"},
	}
	for _, w := range want {
		found := false
		for _, e := range events {
			if e == w {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no audit event %+v", w)
		}
	}
	// Filters work from the CLI too.
	if out := srv.MustCLI("", "events", "--type", "login.", "--user", "dave"); strings.Contains(out, "user.created") || !strings.Contains(out, "login.success") {
		t.Errorf("filtered events:\n%s", out)
	}
	// Events are mirrored to the structured log.
	if !strings.Contains(srv.Output(), `"action":"login.success"`) {
		t.Error("audit events are not in the server log")
	}
}

// TestScheduledBackups: the worker writes backups into a directory on a
// schedule, prunes by count, and each file restores (dry run).
func TestScheduledBackups(t *testing.T) {
	dir := t.TempDir()
	srv := StartServer(t, ServerOptions{Env: []string{
		"GATEHOUSE_WORKER_BACKUP_DIR=" + dir,
		"GATEHOUSE_WORKER_BACKUP_INTERVAL=1s",
		"GATEHOUSE_WORKER_BACKUP_KEEP=2",
	}})
	var files []string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		files, _ = filepath.Glob(filepath.Join(dir, "gatehouse-*.backup"))
		if len(files) >= 2 && strings.Count(srv.MustCLI("", "events", "--type", "backup.created"), "backup.created") >= 3 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(files) != 2 {
		t.Fatalf("want exactly 2 kept backups, have %v", files)
	}
	if out := srv.MustCLI("", "events", "--type", "backup.created"); strings.Count(out, "backup.created") < 3 {
		t.Fatalf("fewer than 3 scheduled backups audited:\n%s", out)
	}
	out := srv.MustCLI("", "restore", "--dry-run", files[len(files)-1])
	if !strings.Contains(out, "users") {
		t.Fatalf("dry-run restore of a scheduled backup:\n%s", out)
	}
}
