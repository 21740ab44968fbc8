package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestDeclaredDirectory starts from a config file that declares groups and
// users (a bcrypt hash imported from another system) and signs in with it.
func TestDeclaredDirectory(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("imported password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	srv := StartServer(t, ServerOptions{ConfigYAML: `
groups:
  - name: media
    description: Media apps
users:
  - username: carol
    email: carol@example.com
    name: Carol
    groups: [media]
    password_hash: "` + string(hash) + `"
`})
	b := NewBrowser(t)
	if resp, _ := b.SignIn(srv.URL, "carol", "imported password", ""); resp.StatusCode != http.StatusFound {
		t.Fatalf("declared user with imported hash: %d", resp.StatusCode)
	}
	_, home := b.Get(srv.URL + "/")
	if !strings.Contains(home, "media") {
		t.Fatalf("declared membership missing:\n%s", home)
	}
	// The bootstrap admin is still created beside declared users.
	if resp, _ := NewBrowser(t).SignIn(srv.URL, "admin", srv.BootstrapPassword(), ""); resp.StatusCode != http.StatusFound {
		t.Fatalf("bootstrap admin: %d", resp.StatusCode)
	}
	// A restart re-applies the file without duplicating anything.
	srv.Restart()
	if list := srv.MustCLI("", "user", "list"); strings.Count(list, "\ncarol ") != 1 {
		t.Fatalf("after restart:\n%s", list)
	}
}

// TestConfigValidate reports every problem with its line and refuses to
// start on a bad file.
func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	bad := "listen: \":9000\"\nsession:\n  idle_timeout: soon\n  colour: blue\nexternal_url: ftp://x\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, Env: []string{"GATEHOUSE_DATA_DIR=" + dir}}
	out, err := s.CLI("", "config", "validate", path)
	if err == nil {
		t.Fatalf("bad config accepted:\n%s", out)
	}
	for _, want := range []string{"bad.yaml:3", "idle_timeout", "bad.yaml:4", "colour", "bad.yaml:5", "external_url"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("listen: \":9000\"\ncookie_domain: homelab.local\nexternal_url: https://auth.homelab.local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := s.CLI("", "config", "validate", good); err != nil || !strings.Contains(out, "valid") {
		t.Fatalf("good config: %v\n%s", err, out)
	}
}
