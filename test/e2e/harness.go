// Package e2e runs Gatehouse as users and operators do: the built binary,
// its CLI, real HTTP, and (in later tests) real nginx, Caddy and browsers.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary is the gatehouse binary under test, built once by TestMain.
var Binary string

// BuildBinary compiles cmd/gatehouse into dir the way `make build` does.
func BuildBinary(dir string) (string, error) {
	out := filepath.Join(dir, "gatehouse")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/gatehouse")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	return out, nil
}

// Server is one running gatehouse process.
type Server struct {
	t       testing.TB
	Dir     string // data directory and config live here
	Config  string // path of the config file ("" when none)
	Env     []string
	URL     string // http://127.0.0.1:port
	cmd     *exec.Cmd
	out     *lockedBuffer
	stopped chan struct{}
}

// ServerOptions describes a server to start.
type ServerOptions struct {
	// ConfigYAML is written to gatehouse.yaml; {{DIR}} is replaced by the
	// data directory. listen and data_dir default to a free port and Dir.
	ConfigYAML string
	Env        []string
	// Dir reuses a data directory (a restart); empty makes a new one.
	Dir string
}

// StartServer runs `gatehouse serve` and waits until it is ready.
func StartServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	s := &Server{t: t, Dir: dir, out: &lockedBuffer{}, stopped: make(chan struct{})}
	if o.ConfigYAML != "" {
		s.Config = filepath.Join(dir, "gatehouse.yaml")
		if err := os.WriteFile(s.Config, []byte(strings.ReplaceAll(o.ConfigYAML, "{{DIR}}", dir)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A fixed free port (not :0) so that the external URL is known up front
	// and a restart comes back at the same address.
	addr := FreeAddr(t)
	s.Env = append([]string{
		"GATEHOUSE_DATA_DIR=" + dir,
		"GATEHOUSE_LISTEN=" + addr,
		"GATEHOUSE_EXTERNAL_URL=http://" + addr,
		"GATEHOUSE_METRICS_LISTEN=",
		"GATEHOUSE_LOG_FORMAT=json",
	}, o.Env...)
	s.start()
	return s
}

func (s *Server) environ() []string {
	env := append(os.Environ(), s.Env...)
	if s.Config != "" {
		env = append(env, "GATEHOUSE_CONFIG="+s.Config)
	}
	return env
}

var listeningRE = regexp.MustCompile(`listening on (\S+)`)

func (s *Server) start() {
	t := s.t
	t.Helper()
	cmd := exec.Command(Binary, "serve")
	cmd.Env = s.environ()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd = cmd
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.out, line)
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(s.stopped) }()
	t.Cleanup(s.Stop)
	select {
	case a := <-addr:
		s.URL = "http://" + a
	case <-s.stopped:
		t.Fatalf("gatehouse exited before listening:\n%s", s.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("gatehouse did not start in 30s:\n%s", s.out.String())
	}
	s.WaitReady()
}

// WaitReady polls /healthz/ready until it answers 200.
func (s *Server) WaitReady() {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.URL + "/healthz/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("not ready after 20s:\n%s", s.out.String())
}

// Stop sends SIGTERM and waits for a clean exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.stopped:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.stopped:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.stopped
	}
}

// Restart stops the server and starts it again on the same data.
func (s *Server) Restart() {
	s.Stop()
	s.stopped = make(chan struct{})
	s.start()
}

// Output is everything the server printed so far.
func (s *Server) Output() string { return s.out.String() }

var bootstrapRE = regexp.MustCompile(`password:\s+(\S+)`)

// BootstrapPassword is the admin password printed on first start.
func (s *Server) BootstrapPassword() string {
	s.t.Helper()
	m := bootstrapRE.FindStringSubmatch(s.out.String())
	if m == nil {
		s.t.Fatalf("no bootstrap password printed:\n%s", s.out.String())
	}
	return m[1]
}

// CLI runs a gatehouse subcommand against the server's configuration.
func (s *Server) CLI(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary, args...)
	cmd.Env = s.environ()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// MustCLI is CLI that fails the test on error.
func (s *Server) MustCLI(stdin string, args ...string) string {
	s.t.Helper()
	out, err := s.CLI(stdin, args...)
	if err != nil {
		s.t.Fatalf("gatehouse %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see every hop.
type Browser struct {
	*http.Client
	t testing.TB
}

// NewBrowser returns a fresh browser with no cookies.
func NewBrowser(t testing.TB) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{t: t, Client: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Get fetches u and returns the response with its body read.
func (b *Browser) Get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.Client.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	return resp, readBody(b.t, resp)
}

// PostForm posts form values and returns the response with its body read.
func (b *Browser) PostForm(u string, v url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.Client.PostForm(u, v)
	if err != nil {
		b.t.Fatalf("POST %s: %v", u, err)
	}
	return resp, readBody(b.t, resp)
}

func readBody(t testing.TB, resp *http.Response) string {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// CSRFToken extracts the form token from a page.
func CSRFToken(t testing.TB, html string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no csrf_token in page:\n%s", html)
	}
	return m[1]
}

// SignIn fills the sign-in form at base/login (with rd) and returns the
// response to the form post.
func (b *Browser) SignIn(base, username, password, rd string) (*http.Response, string) {
	b.t.Helper()
	loginURL := base + "/login"
	if rd != "" {
		loginURL += "?rd=" + url.QueryEscape(rd)
	}
	_, page := b.Get(loginURL)
	return b.PostForm(base+"/login", url.Values{
		"csrf_token": {CSRFToken(b.t, page)},
		"username":   {username},
		"password":   {password},
		"rd":         {rd},
	})
}

// Cookie returns the named cookie the browser holds for u, or nil.
func (b *Browser) Cookie(u, name string) *http.Cookie {
	pu, err := url.Parse(u)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range b.Jar.Cookies(pu) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// FreeAddr returns a 127.0.0.1 address with a port free at the time of the
// call.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
