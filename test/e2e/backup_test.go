package e2e

import (
	"bytes"
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/testenv"
)

// TestBackupAndRestore is the operator's journey: back up a running server
// (plain, encrypted, and to standard output) while people sign in, restore
// into a fresh data directory and into PostgreSQL, start servers there and
// sign in with the same accounts.
func TestBackupAndRestore(t *testing.T) {
	// The failing sign-ins below all come from 127.0.0.1: keep that IP
	// from being blocked, which would stop alice's sign-ins too.
	srv := StartServer(t, ServerOptions{Env: []string{"GATEHOUSE_LOGIN_IP_MAX_FAILURES=1000000"}})
	adminPassword := srv.BootstrapPassword()
	srv.MustCLI("", "group", "create", "media")
	srv.MustCLI("correct horse battery\n", "user", "create", "alice", "--email", "alice@example.com", "--group", "media", "--password-stdin")

	// Sign-ins, good and bad, run throughout the backups: they write
	// sessions and throttle rows while the snapshot is taken.
	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		good     atomic.Int64
		failures atomic.Int64
		errMu    sync.Mutex
		signErr  error
	)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				user, password, want := "alice", "correct horse battery", http.StatusFound
				if i == 2 {
					// Unknown users, so alice is never locked out.
					user, password, want = "mallory-"+strconv.Itoa(n%50), "wrong password", http.StatusUnauthorized
				}
				code, err := signIn(srv.URL, user, password)
				if err == nil && code != want && !(i == 2 && code == http.StatusTooManyRequests) {
					err = &statusError{code}
				}
				if err != nil {
					errMu.Lock()
					signErr = err
					errMu.Unlock()
					return
				}
				if i == 2 {
					failures.Add(1)
				} else {
					good.Add(1)
				}
			}
		}()
	}
	waitFor(t, func() bool { return good.Load() >= 5 })

	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.backup")
	encrypted := filepath.Join(dir, "encrypted.backup")
	passFile := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(passFile, []byte("a long and secret passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Repeat until a sign-in completed while a backup process ran, so the
	// test shows a backup taken under writes rather than hoping for one.
	var out string
	overlapped := false
	for attempt := 0; attempt < 20 && !overlapped; attempt++ {
		before := good.Load()
		out = srv.MustCLI("", "backup", "--output", plain)
		overlapped = good.Load() > before
	}
	if !overlapped {
		t.Error("no sign-in completed while a backup ran")
	}
	if !strings.Contains(out, "backup written to "+plain) || !strings.Contains(out, "secret key") {
		t.Fatalf("backup said:\n%s", out)
	}
	out = srv.MustCLI("", "backup", "--output", encrypted, "--passphrase-file", passFile)
	if !strings.Contains(out, "encrypted") {
		t.Fatalf("encrypted backup said:\n%s", out)
	}
	stdoutBackup := backupToStdout(t, srv)
	scheduled := filepath.Join(dir, "scheduled")
	out = srv.MustCLI("", "backup", "--dir", scheduled, "--keep", "3", "--max-age", "720h")
	if entries, err := os.ReadDir(scheduled); err != nil || len(entries) != 1 ||
		!regexp.MustCompile(`^gatehouse-\d{8}T\d{6}Z\.backup$`).MatchString(entries[0].Name()) {
		t.Fatalf("backup --dir: %v %v\n%s", entries, err, out)
	}
	close(stop)
	wg.Wait()
	if signErr != nil {
		t.Fatalf("sign-in during backup: %v", signErr)
	}
	t.Logf("%d sign-ins and %d failures during the run", good.Load(), failures.Load())

	if info, err := os.Stat(plain); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, mode %v", err, info.Mode().Perm())
	}
	if b, _ := os.ReadFile(encrypted); bytes.Contains(b, []byte("alice")) {
		t.Error("encrypted backup holds plaintext")
	}
	if out, err := srv.CLI("", "restore", "--dry-run", encrypted); err == nil {
		t.Errorf("encrypted backup verified without a passphrase:\n%s", out)
	} else if !strings.Contains(out, "passphrase") {
		t.Errorf("restore without passphrase said:\n%s", out)
	}
	out = srv.MustCLI("", "restore", "--dry-run", stdoutBackup)
	if !strings.Contains(out, "backup verified") || !strings.Contains(out, "users") {
		t.Errorf("dry run said:\n%s", out)
	}

	t.Run("into a fresh SQLite data directory", func(t *testing.T) {
		dir2 := t.TempDir()
		copySecretKey(t, srv.Dir, dir2)
		restorer := cliOnly(t, dir2)
		out := restorer.MustCLI("", "restore", plain)
		if !strings.Contains(out, "restored into sqlite") || !strings.Contains(out, "users") {
			t.Fatalf("restore said:\n%s", out)
		}
		if out, err := restorer.CLI("", "restore", encrypted, "--passphrase-file", passFile); err == nil || !strings.Contains(out, "--force") {
			t.Fatalf("restore over data without --force: %v\n%s", err, out)
		}
		truncated := filepath.Join(t.TempDir(), "truncated.backup")
		b, _ := os.ReadFile(plain)
		if err := os.WriteFile(truncated, b[:len(b)/2], 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := restorer.CLI("", "restore", "--force", truncated); err == nil || !strings.Contains(out, "truncated") || !strings.Contains(out, "nothing was restored") {
			t.Fatalf("truncated backup: %v\n%s", err, out)
		}
		out = restorer.MustCLI("", "restore", "--force", encrypted, "--passphrase-file", passFile)
		if !strings.Contains(out, "encrypted") {
			t.Fatalf("forced encrypted restore said:\n%s", out)
		}

		srv2 := StartServer(t, ServerOptions{Dir: dir2})
		if strings.Contains(srv2.Output(), "Bootstrap administrator created") {
			t.Error("the restored server created a bootstrap administrator")
		}
		checkSignIns(t, srv2, adminPassword)
	})

	t.Run("into PostgreSQL", func(t *testing.T) {
		dbURL := testenv.PostgresDB(t)
		dir3 := t.TempDir()
		copySecretKey(t, srv.Dir, dir3)
		restorer := cliOnly(t, dir3, "GATEHOUSE_DATABASE_URL="+dbURL)
		b, err := os.ReadFile(stdoutBackup)
		if err != nil {
			t.Fatal(err)
		}
		out := restorer.MustCLI(string(b), "restore", "-") // from standard input
		if !strings.Contains(out, "restored into postgres") {
			t.Fatalf("restore said:\n%s", out)
		}
		srv3 := StartServer(t, ServerOptions{Dir: dir3, Env: []string{"GATEHOUSE_DATABASE_URL=" + dbURL}})
		checkSignIns(t, srv3, adminPassword)
	})
}

func checkSignIns(t *testing.T, s *Server, adminPassword string) {
	t.Helper()
	for _, c := range []struct{ user, password string }{{"alice", "correct horse battery"}, {"admin", adminPassword}} {
		b := NewBrowser(t)
		resp, _ := b.SignIn(s.URL, c.user, c.password, "")
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s cannot sign in to the restored server: %d", c.user, resp.StatusCode)
		}
		_, home := b.Get(s.URL + "/")
		if !strings.Contains(home, ">"+c.user+"<") {
			t.Fatalf("landing page after %s signed in:\n%s", c.user, home)
		}
	}
}

// cliOnly is a Server value for running the CLI against a data directory
// where no server runs.
func cliOnly(t *testing.T, dir string, env ...string) *Server {
	return &Server{t: t, Dir: dir, Env: append([]string{"GATEHOUSE_DATA_DIR=" + dir, "GATEHOUSE_LOG_FORMAT=json"}, env...)}
}

// copySecretKey does what the documentation asks: the secret key travels
// with the backup.
func copySecretKey(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(from, "secret_key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, "secret_key"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// backupToStdout runs `gatehouse backup --output -` and returns the file
// its standard output went to.
func backupToStdout(t *testing.T, s *Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stdout.backup")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary, "backup", "--output", "-")
	cmd.Env = s.environ()
	cmd.Stdout = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("backup --output -: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "backup written to standard output") {
		t.Fatalf("backup --output - said:\n%s", stderr.String())
	}
	return path
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "unexpected status " + http.StatusText(e.code) }

// signIn posts the sign-in form like Browser.SignIn, but returns errors
// instead of failing the test, so it can run in background goroutines.
func signIn(base, username, password string) (int, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/login")
	if err != nil {
		return 0, err
	}
	var page bytes.Buffer
	_, err = page.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return 0, err
	}
	m := csrfRE.FindStringSubmatch(page.String())
	if m == nil {
		return 0, &statusError{resp.StatusCode}
	}
	resp, err = c.PostForm(base+"/login", url.Values{"csrf_token": {m[1]}, "username": {username}, "password": {password}})
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
