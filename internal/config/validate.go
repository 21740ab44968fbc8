package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// These follow internal/directory's rules (config imports no service), so a
// declared user or group is accepted here exactly when the directory would
// accept it.
var (
	slugRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	usernameRE  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}$`)
	groupNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9 ._-]{0,63}$`)
)

// minPasswordLen matches directory.MinPasswordLen (NIST SP 800-63B).
const minPasswordLen = 8

// Validate checks every setting and returns an *Error listing all problems,
// each located at the file line or environment variable that set it when
// the Config came from Load or Parse. It does not modify c.
func (c *Config) Validate() error {
	if problems := c.validate(); len(problems) > 0 {
		return newError(problems)
	}
	return nil
}

// validator collects problems; sections add to it with addf.
type validator struct {
	c        *Config
	problems []Problem
}

// addf records a problem about key, located where key (or the nearest
// enclosing key) was set.
func (v *validator) addf(key, format string, args ...any) {
	p := Problem{Key: key, Msg: fmt.Sprintf(format, args...)}
	for k := key; k != ""; k = parentKey(k) {
		if o, ok := v.c.src[k]; ok {
			if o.env != "" {
				p.Env = o.env
			} else {
				p.File, p.Line = v.c.file, o.line
			}
			break
		}
	}
	v.problems = append(v.problems, p)
}

func (c *Config) validate() []Problem {
	v := &validator{c: c}
	v.listenAddr("listen", c.Listen, false)
	v.listenAddr("metrics_listen", c.MetricsListen, true)
	if c.MetricsListen != "" && c.MetricsListen == c.Listen {
		v.addf("metrics_listen", "must differ from listen (%s)", c.Listen)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		v.addf("data_dir", "must not be empty")
	}
	ext := v.externalURL()
	v.cookieDomain(ext)
	v.databaseURL()
	v.redisURL()
	v.secretKey()
	for i, s := range c.TrustedProxies {
		if _, err := parseProxy(s); err != nil {
			v.addf(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR", s)
		}
	}
	v.database()
	v.session()
	v.login()
	v.log()
	v.bootstrap()
	v.apps()
	c.validateForwardAuth(v)
	c.validateOIDC(v)
	c.validateWorker(v)
	groups := v.groups()
	v.users(groups)
	return v.problems
}

func (v *validator) listenAddr(key, addr string, optional bool) {
	if addr == "" {
		if !optional {
			v.addf(key, "must not be empty")
		}
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.addf(key, "%q is not a host:port address (for example \":9000\")", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.addf(key, "%q has an invalid port", addr)
	}
}

// externalURL checks external_url and returns its host name ("" if bad).
func (v *validator) externalURL() string {
	raw := strings.TrimRight(v.c.ExternalURL, "/")
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		v.addf("external_url", "must not be empty")
	case err != nil:
		v.addf("external_url", "%q is not a URL", v.c.ExternalURL)
	case u.Scheme != "http" && u.Scheme != "https":
		v.addf("external_url", "%q must start with http:// or https://", v.c.ExternalURL)
	case u.Host == "" || u.Hostname() == "":
		v.addf("external_url", "%q has no host", v.c.ExternalURL)
	case u.User != nil:
		v.addf("external_url", "must not contain a user name or password")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#"):
		v.addf("external_url", "%q must not have a query or fragment", v.c.ExternalURL)
	default:
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				v.addf("external_url", "%q has an invalid port", v.c.ExternalURL)
				return ""
			}
		}
		return strings.ToLower(u.Hostname())
	}
	return ""
}

// cookieDomain checks that the gate cookie, set on cookie_domain, will also
// be sent to Gatehouse itself: browsers only send a domain cookie to that
// domain and its subdomains.
func (v *validator) cookieDomain(extHost string) {
	if v.c.CookieDomain == "" {
		return
	}
	cd := normalizeDomain(v.c.CookieDomain)
	if !validHostName(cd) {
		v.addf("cookie_domain", "%q is not a valid domain name", v.c.CookieDomain)
		return
	}
	if extHost != "" && extHost != cd && !strings.HasSuffix(extHost, "."+cd) {
		v.addf("cookie_domain", "%q does not cover the host of external_url (%s); it must be that host or a parent domain of it", cd, extHost)
	}
}

// validHostName reports whether s is a fully qualified DNS name: at least
// two dot-separated LDH labels, not an IP. Single labels like "sonarr" are
// refused because no cookie domain can cover them.
func validHostName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			ch := l[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-') {
				return false
			}
		}
	}
	// A numeric top-level label is an IPv4 address in disguise (1.2.3.04).
	_, err := strconv.Atoi(labels[len(labels)-1])
	return err != nil
}

// keywordDSN spots "host=db dbname=x", which would otherwise be taken for
// a SQLite file name.
var keywordDSN = regexp.MustCompile(`^\s*(host|hostaddr|dbname|user|port|sslmode|password)\s*=`)

// databaseURL accepts what internal/store/sqlstore accepts: postgres:// or
// postgresql:// URLs, and SQLite as sqlite:PATH, sqlite://PATH, file:PATH or
// a bare path (not in memory). The value is never echoed: it may carry a
// password.
func (v *validator) databaseURL() {
	s := v.c.DatabaseURL
	if s == "" {
		return
	}
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		if _, err := url.Parse(s); err != nil {
			v.addf("database_url", "is not a valid postgres:// URL")
		}
		return
	}
	if scheme, _, ok := strings.Cut(s, "://"); ok && scheme != "sqlite" && !strings.ContainsAny(scheme, `/\`) {
		v.addf("database_url", "must be a postgres:// or postgresql:// URL, or a SQLite path like sqlite:/var/lib/gatehouse/gatehouse.db")
		return
	}
	if keywordDSN.MatchString(s) {
		v.addf("database_url", "keyword/value connection strings are not supported; use a postgres:// URL")
		return
	}
	path := s
	for _, prefix := range []string{"sqlite://", "sqlite:", "file:"} {
		if rest, ok := strings.CutPrefix(path, prefix); ok {
			path = rest
			break
		}
	}
	path, query, _ := strings.Cut(path, "?")
	if path == "" || strings.HasPrefix(path, ":memory:") || strings.Contains("&"+query+"&", "&mode=memory&") {
		v.addf("database_url", "SQLite needs a file path (in-memory databases are not supported)")
	}
}

// redisURL never echoes the value: it may carry a password.
func (v *validator) redisURL() {
	s := v.c.RedisURL
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.addf("redis_url", "is not a valid URL")
	case u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "redis-sentinel":
		v.addf("redis_url", "must start with redis://, rediss:// or redis-sentinel://")
	case u.Host == "":
		v.addf("redis_url", "has no host")
	}
}

// secretKey accepts what internal/secret.Parse accepts: hex or base64 of at
// least 32 bytes, or any string of at least 32 characters. The value is
// never echoed.
func (v *validator) secretKey() {
	s := v.c.SecretKey
	if s == "" {
		return
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) >= 32 {
		return
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) >= 32 {
			return
		}
	}
	if len(s) >= 32 {
		return
	}
	v.addf("secret_key", "too short: it must be at least 32 bytes (generate one with `openssl rand -hex 32`)")
}

func (v *validator) database() {
	d := v.c.Database
	if d.MaxOpenConns < 1 {
		v.addf("database.max_open_conns", "must be at least 1")
	}
	if d.StatementTimeout < 0 {
		v.addf("database.statement_timeout", "must not be negative (0 disables it)")
	}
}

func (v *validator) positive(key string, d Duration) bool {
	if d <= 0 {
		v.addf(key, "must be greater than 0")
		return false
	}
	return true
}

func (v *validator) session() {
	s := v.c.Session
	if !validCookieName(s.CookieName) {
		v.addf("session.cookie_name", "%q is not a valid cookie name", s.CookieName)
	} else if (strings.HasPrefix(s.CookieName, "__Host-") || strings.HasPrefix(s.CookieName, "__Secure-")) && !v.c.Secure() {
		// Browsers drop such cookies unless they are Secure.
		v.addf("session.cookie_name", "the %q prefix needs an https external_url", strings.SplitAfter(s.CookieName, "-")[0])
	}
	idle := v.positive("session.idle_timeout", s.IdleTimeout)
	life := v.positive("session.lifetime", s.Lifetime)
	if idle && life && s.IdleTimeout > s.Lifetime {
		v.addf("session.idle_timeout", "%s is longer than session.lifetime (%s)", s.IdleTimeout, s.Lifetime)
	}
}

// validCookieName checks the RFC 6265 token syntax.
func validCookieName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch <= ' ' || ch >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, ch) >= 0 {
			return false
		}
	}
	return true
}

func (v *validator) login() {
	l := v.c.Login
	if l.MaxFailures < 1 {
		v.addf("login.max_failures", "must be at least 1")
	}
	if l.IPMaxFailures < 1 {
		v.addf("login.ip_max_failures", "must be at least 1")
	}
	v.positive("login.failure_window", l.FailureWindow)
	v.positive("login.lockout", l.Lockout)
}

func (v *validator) log() {
	switch strings.ToLower(v.c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		v.addf("log.level", "%q is not one of debug, info, warn, error", v.c.Log.Level)
	}
	switch strings.ToLower(v.c.Log.Format) {
	case "auto", "json", "text":
	default:
		v.addf("log.format", "%q is not one of auto, json, text", v.c.Log.Format)
	}
}

func (v *validator) bootstrap() {
	b := v.c.Bootstrap
	if !usernameRE.MatchString(b.AdminUsername) {
		v.addf("bootstrap.admin_username", "%q is not a valid user name", b.AdminUsername)
	}
	if !groupNameRE.MatchString(b.AdminGroup) {
		v.addf("bootstrap.admin_group", "%q is not a valid group name", b.AdminGroup)
	}
	if b.Password != "" && len([]rune(b.Password)) < minPasswordLen {
		v.addf("bootstrap.password", "must be at least %d characters", minPasswordLen)
	}
}

func (v *validator) apps() {
	slugs := map[string]int{}
	for i := range v.c.Apps {
		key := fmt.Sprintf("apps[%d]", i)
		a := &v.c.Apps[i]
		a.validate(v, key)
		if a.Slug == "" {
			continue
		}
		if first, dup := slugs[a.Slug]; dup {
			v.addf(key+".slug", "%q is already used by apps[%d]", a.Slug, first)
			continue
		}
		slugs[a.Slug] = i
	}
}

// validate checks one app on its own; uniqueness is checked by the caller.
// Sub-structs added to App get their checks called from here.
func (a *App) validate(v *validator, key string) {
	switch {
	case a.Slug == "":
		v.addf(key+".slug", "is required")
	case !slugRE.MatchString(a.Slug):
		v.addf(key+".slug", "%q must be lower-case letters, digits and dashes, starting with a letter or digit (at most 63)", a.Slug)
	}
	for j, g := range a.AllowGroups {
		if !groupNameRE.MatchString(g) {
			v.addf(fmt.Sprintf("%s.allow_groups[%d]", key, j), "%q is not a valid group name", g)
		}
	}
}

// groups checks the declared groups and returns the names users may use.
func (v *validator) groups() map[string]bool {
	known := map[string]bool{}
	first := map[string]int{}
	for i, g := range v.c.Groups {
		key := fmt.Sprintf("groups[%d].name", i)
		switch {
		case g.Name == "":
			v.addf(key, "is required")
			continue
		case !groupNameRE.MatchString(g.Name):
			v.addf(key, "%q is not a valid group name", g.Name)
		}
		if j, dup := first[g.Name]; dup {
			v.addf(key, "%q is already declared by groups[%d]", g.Name, j)
			continue
		}
		first[g.Name] = i
		known[g.Name] = true
	}
	if v.c.Bootstrap.AdminGroup != "" {
		known[v.c.Bootstrap.AdminGroup] = true
	}
	return known
}

func (v *validator) users(groups map[string]bool) {
	names := map[string]int{}
	emails := map[string]int{}
	for i, u := range v.c.Users {
		key := fmt.Sprintf("users[%d]", i)
		switch {
		case u.Username == "":
			v.addf(key+".username", "is required")
		case !usernameRE.MatchString(u.Username):
			v.addf(key+".username", "%q is not a valid user name", u.Username)
		default:
			// User names are matched case-insensitively at sign-in.
			lower := strings.ToLower(u.Username)
			if j, dup := names[lower]; dup {
				v.addf(key+".username", "%q is already declared by users[%d]", u.Username, j)
			} else {
				names[lower] = i
			}
		}
		if u.Email != "" {
			if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
				v.addf(key+".email", "%q is not a plain e-mail address", u.Email)
			} else if j, dup := emails[strings.ToLower(u.Email)]; dup {
				v.addf(key+".email", "%q is already used by users[%d]", u.Email, j)
			} else {
				emails[strings.ToLower(u.Email)] = i
			}
		}
		for j, g := range u.Groups {
			if !groups[g] {
				v.addf(fmt.Sprintf("%s.groups[%d]", key, j), "group %q is not declared in groups (nor is it bootstrap.admin_group)", g)
			}
		}
		if u.PasswordHash != "" && !looksLikeHash(u.PasswordHash) {
			v.addf(key+".password_hash", "is not a PHC string like $argon2id$v=19$m=65536,t=3,p=4$... (bcrypt $2b$... and Django pbkdf2_sha256$... are also accepted)")
		}
	}
}

// looksLikeHash is a shape check only (the value is never echoed): it
// catches a plain password pasted where a hash belongs.
func looksLikeHash(s string) bool {
	if rest, ok := strings.CutPrefix(s, "$"); ok {
		parts := strings.Split(rest, "$")
		return len(parts) >= 3 && parts[0] != "" && parts[len(parts)-1] != ""
	}
	if rest, ok := strings.CutPrefix(s, "pbkdf2_sha256$"); ok {
		return strings.Count(rest, "$") == 2
	}
	return false
}
