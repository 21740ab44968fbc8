// Package config is Gatehouse's configuration schema: one YAML file plus
// GATEHOUSE_* environment variables, with *_file / *_FILE variants for
// secrets. Decoding is strict (unknown keys, wrong types and duplicate keys
// are errors) and every problem is reported at once, each with the file and
// line or the environment variable it came from, so an operator fixes the
// whole file in one pass instead of one error per restart.
//
// The types here are the file schema only; services take their own Options
// built from it by the composition root.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the whole configuration file. Fields carry their YAML key in the
// yaml tag; the environment twin of a scalar is GATEHOUSE_ plus the upper-cased
// key path with dots turned into underscores. Fields tagged secret:"true" also
// accept <key>_file in YAML and GATEHOUSE_<KEY>_FILE in the environment, and
// are masked by Redacted.
type Config struct {
	// Listen is the address of the main HTTP server.
	Listen string `yaml:"listen"`
	// MetricsListen serves /metrics on its own port; empty disables it.
	MetricsListen string `yaml:"metrics_listen"`
	// DataDir holds the SQLite database and generated state.
	DataDir string `yaml:"data_dir"`
	// ExternalURL is the public URL of Gatehouse and the OIDC issuer; never
	// derived from request headers. Stored without a trailing slash.
	ExternalURL string `yaml:"external_url"`
	// CookieDomain is where the forward-auth gate cookie is set; empty keeps
	// it host-only. Stored without a leading dot.
	CookieDomain string `yaml:"cookie_domain"`
	// DatabaseURL selects PostgreSQL (postgres://...) or SQLite (sqlite:PATH,
	// file:PATH or a bare path); empty means SQLite in DataDir. Secret
	// because DSNs carry passwords.
	DatabaseURL string   `yaml:"database_url" secret:"true"`
	Database    Database `yaml:"database"`
	// RedisURL enables Redis for caches, revocation and rate limits.
	RedisURL string `yaml:"redis_url" secret:"true"`
	// SecretKey is the root key for encryption at rest and signing; empty
	// means one is generated and kept in DataDir.
	SecretKey string `yaml:"secret_key" secret:"true"`
	// TrustedProxies are the IPs or CIDRs whose forwarding headers are
	// believed; see TrustedProxyPrefixes.
	TrustedProxies []string `yaml:"trusted_proxies"`

	Session   Session   `yaml:"session"`
	Login     Login     `yaml:"login"`
	Log       Log       `yaml:"log"`
	Bootstrap Bootstrap `yaml:"bootstrap"`
	// ForwardAuth configures the forward-auth gate (see forwardauth.go).
	ForwardAuth ForwardAuth `yaml:"forward_auth"`
	// OIDC configures the OpenID provider (see oidc.go).
	OIDC OIDC `yaml:"oidc"`
	// Worker, Mail and ShutdownDelay: background jobs, outgoing mail and
	// graceful shutdown (see worker.go).
	Worker        Worker   `yaml:"worker"`
	Mail          Mail     `yaml:"mail"`
	ShutdownDelay Duration `yaml:"shutdown_delay"`

	// Apps, Groups and Users are declarative resources reconciled at start.
	Apps   []App   `yaml:"apps"`
	Groups []Group `yaml:"groups"`
	Users  []User  `yaml:"users"`

	// file and src remember where each value came from so that Validate can
	// point at a line or an environment variable.
	file string
	src  map[string]origin
}

// Database tunes the SQL connection pool.
type Database struct {
	// MaxOpenConns bounds the PostgreSQL pool (SQLite uses one writer).
	MaxOpenConns int `yaml:"max_open_conns"`
	// StatementTimeout cancels a runaway query; 0 disables it.
	StatementTimeout Duration `yaml:"statement_timeout"`
}

// Session configures browser sessions.
type Session struct {
	CookieName string `yaml:"cookie_name"`
	// IdleTimeout ends a session that is not used for this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// Lifetime is the absolute maximum age of a session.
	Lifetime Duration `yaml:"lifetime"`
}

// Login configures brute-force regulation.
type Login struct {
	// MaxFailures per user within FailureWindow locks the user for Lockout.
	MaxFailures   int      `yaml:"max_failures"`
	FailureWindow Duration `yaml:"failure_window"`
	Lockout       Duration `yaml:"lockout"`
	// IPMaxFailures per client IP within FailureWindow blocks that IP for
	// Lockout, whatever user names it tries.
	IPMaxFailures int `yaml:"ip_max_failures"`
}

// Log configures the process logger.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // auto (text on a terminal, else json), json, text
}

// Bootstrap describes the first administrator, created when no user exists.
type Bootstrap struct {
	AdminUsername string `yaml:"admin_username"`
	AdminGroup    string `yaml:"admin_group"`
	// Password is the initial admin password; empty means a one-time
	// password is generated and printed on first start.
	Password string `yaml:"password" secret:"true"`
}

// App is a protected application. Sub-structs added here with yaml tags get
// strict decoding and line numbers automatically; list items have no
// environment twins.
type App struct {
	Slug string `yaml:"slug"`
	Name string `yaml:"name"`
	// AllowGroups may use the app; groups may also be created at runtime,
	// so they need not be declared in Groups.
	AllowGroups []string `yaml:"allow_groups"`
	// ForwardAuth puts the app behind the forward-auth gate (see
	// forwardauth.go).
	ForwardAuth *AppForwardAuth `yaml:"forward_auth"`
	// OIDC makes the app an OpenID Connect client (see oidc.go).
	OIDC *AppOIDC `yaml:"oidc"`
}

// Group is a declaratively managed group.
type Group struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// User is a declaratively managed user.
type User struct {
	Username string `yaml:"username"`
	Email    string `yaml:"email"`
	Name     string `yaml:"name"`
	// Groups must be declared in Config.Groups or be bootstrap.admin_group.
	Groups []string `yaml:"groups"`
	// PasswordHash is a PHC string (or an imported bcrypt/Django hash);
	// empty leaves the password to be set at runtime. Secret because a
	// leaked hash can be cracked offline.
	PasswordHash string `yaml:"password_hash" secret:"true"`
	Disabled     bool   `yaml:"disabled"`
}

// origin is where a value was set: a line of the file or an env variable.
type origin struct {
	line int
	env  string
}

const (
	// maxConfigSize bounds what we read and parse; real files are a few KiB.
	maxConfigSize = 1 << 20
	// maxSecretSize bounds *_file reads so a path like /dev/zero fails fast.
	maxSecretSize = 64 << 10
)

// Default returns the configuration used when neither the file nor the
// environment says otherwise.
func Default() *Config {
	return &Config{
		Listen:        ":9000",
		MetricsListen: ":9300",
		DataDir:       "./data",
		ExternalURL:   "http://localhost:9000",
		Database: Database{
			MaxOpenConns:     10,
			StatementTimeout: Duration(30 * time.Second),
		},
		Session: Session{
			CookieName:  "gatehouse_session",
			IdleTimeout: Duration(12 * time.Hour),
			Lifetime:    Duration(168 * time.Hour),
		},
		Login: Login{
			MaxFailures:   5,
			FailureWindow: Duration(10 * time.Minute),
			Lockout:       Duration(15 * time.Minute),
			IPMaxFailures: 20,
		},
		Log: Log{Level: "info", Format: "auto"},
		Bootstrap: Bootstrap{
			AdminUsername: "admin",
			AdminGroup:    "admins",
		},
		OIDC:   DefaultOIDC(),
		Worker: DefaultWorker(),
	}
}

// Load reads the file at path (none when path is "") and the environment
// through lookupEnv (usually os.LookupEnv; nil means no environment), and
// returns the validated configuration or an *Error listing every problem.
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	if path == "" {
		return Parse(nil, "", lookupEnv)
	}
	data, err := readLimited(path, maxConfigSize)
	if err != nil {
		return nil, &Error{Problems: []Problem{{File: path, Msg: err.Error()}}}
	}
	return Parse(data, path, lookupEnv)
}

// Parse is Load for YAML already in memory; filename is only used in
// messages. Relative *_file paths are resolved from the working directory.
func Parse(data []byte, filename string, lookupEnv func(string) (string, bool)) (*Config, error) {
	return parse(data, filename, lookupEnv, readSecretFile)
}

func parse(data []byte, filename string, lookupEnv func(string) (string, bool), readFile func(string) (string, error)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	c := Default()
	c.file = filename
	c.src = map[string]origin{}

	d := &decoder{file: filename, src: c.src, readFile: readFile}
	if len(data) > maxConfigSize {
		d.add(0, "", fmt.Sprintf("file is larger than %d bytes", maxConfigSize))
		return nil, newError(d.problems)
	}
	if len(data) > 0 {
		body, ok := d.parseDocument(data)
		if !ok {
			return nil, newError(d.problems)
		}
		if body != nil {
			d.decodeValue(body, valueOf(c), "", 0)
		}
	}
	problems := d.problems
	problems = append(problems, applyEnv(c, lookupEnv, readFile)...)
	c.normalize()
	problems = append(problems, c.validate()...)
	if len(problems) > 0 {
		return nil, newError(problems)
	}
	return c, nil
}

// normalize puts values in the canonical form the rest of the program
// expects; Validate accepts both forms.
func (c *Config) normalize() {
	c.ExternalURL = strings.TrimRight(c.ExternalURL, "/")
	c.CookieDomain = normalizeDomain(c.CookieDomain)
	c.Log.Level = strings.ToLower(c.Log.Level)
	c.Log.Format = strings.ToLower(c.Log.Format)
}

func normalizeDomain(s string) string {
	return strings.ToLower(strings.TrimPrefix(s, "."))
}

// ExternalURLParsed returns a fresh copy of the parsed external URL, or nil
// if it does not parse (Validate reports that).
func (c *Config) ExternalURLParsed() *url.URL {
	u, err := url.Parse(strings.TrimRight(c.ExternalURL, "/"))
	if err != nil {
		return nil
	}
	return u
}

// Secure reports whether Gatehouse is served over https, which decides the
// Secure attribute of its cookies.
func (c *Config) Secure() bool {
	u := c.ExternalURLParsed()
	return u != nil && strings.EqualFold(u.Scheme, "https")
}

// DatabaseURLOrDefault is DatabaseURL, or "sqlite:<data_dir>/gatehouse.db"
// when none is configured.
func (c *Config) DatabaseURLOrDefault() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return "sqlite:" + filepath.Join(c.DataDir, "gatehouse.db")
}

// TrustedProxyPrefixes parses TrustedProxies; a bare IP becomes a single-host
// prefix. Entries that do not parse are skipped (Validate reports them).
// It parses on every call: call it once when building the middleware.
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, s := range c.TrustedProxies {
		if p, err := parseProxy(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parseProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("zones are not allowed")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// readSecretFile reads a *_file secret: the content minus one trailing
// newline, which editors and `echo` add but nobody means.
func readSecretFile(path string) (string, error) {
	b, err := readLimited(path, maxSecretSize)
	if err != nil {
		return "", err
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	return s, nil
}

// readLimited reads at most limit bytes and fails beyond that. Errors leave
// out the path: the caller shows it once, where it fits the message.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, pathless(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, pathless(err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

func pathless(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("file not found")
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
