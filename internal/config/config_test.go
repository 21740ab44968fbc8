package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// envOf returns a lookupEnv over the given NAME, value pairs.
func envOf(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// yamlText turns tab-indented test literals into YAML (which forbids tabs).
func yamlText(s string) []byte {
	return []byte(strings.ReplaceAll(strings.TrimPrefix(s, "\n"), "\t", "  "))
}

func mustParse(t *testing.T, src string, env func(string) (string, bool)) *Config {
	t.Helper()
	c, err := Parse(yamlText(src), "gatehouse.yaml", env)
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return c
}

func secretFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// plain drops the source bookkeeping so configs compare by content only.
func plain(c *Config) *Config {
	cp := *c
	cp.file, cp.src = "", nil
	return &cp
}

func TestDefaults(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatalf("Load with no file and no env: %v", err)
	}
	if !reflect.DeepEqual(plain(c), plain(Default())) {
		t.Errorf("Load(\"\") differs from Default():\n got %+v\nwant %+v", c, Default())
	}
	if err := Default().Validate(); err != nil {
		t.Errorf("Default() does not validate: %v", err)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"listen", c.Listen, ":9000"},
		{"metrics_listen", c.MetricsListen, ":9300"},
		{"data_dir", c.DataDir, "./data"},
		{"external_url", c.ExternalURL, "http://localhost:9000"},
		{"cookie_domain", c.CookieDomain, ""},
		{"database_url", c.DatabaseURL, ""},
		{"database default", c.DatabaseURLOrDefault(), "sqlite:data/gatehouse.db"},
		{"database.max_open_conns", c.Database.MaxOpenConns, 10},
		{"database.statement_timeout", c.Database.StatementTimeout, Duration(30 * time.Second)},
		{"session.cookie_name", c.Session.CookieName, "gatehouse_session"},
		{"session.idle_timeout", c.Session.IdleTimeout, Duration(12 * time.Hour)},
		{"session.lifetime", c.Session.Lifetime, Duration(168 * time.Hour)},
		{"login.max_failures", c.Login.MaxFailures, 5},
		{"login.failure_window", c.Login.FailureWindow, Duration(10 * time.Minute)},
		{"login.lockout", c.Login.Lockout, Duration(15 * time.Minute)},
		{"login.ip_max_failures", c.Login.IPMaxFailures, 20},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "auto"},
		{"bootstrap.admin_username", c.Bootstrap.AdminUsername, "admin"},
		{"bootstrap.admin_group", c.Bootstrap.AdminGroup, "admins"},
		{"secure", c.Secure(), false},
		{"trusted proxies", len(c.TrustedProxyPrefixes()), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

const fullFile = `
# A complete file: every key set.
listen: "0.0.0.0:8080"
metrics_listen: ""
data_dir: /var/lib/gatehouse
external_url: https://Auth.Homelab.Example/
cookie_domain: .homelab.example
database_url: postgres://gh:pw@db:5432/gatehouse?sslmode=disable
database:
	max_open_conns: 25
	statement_timeout: 1m
redis_url: rediss://:pw@redis:6380/0
secret_key: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
trusted_proxies:
	- 10.0.0.0/8
	- 192.168.1.1
	- "fd00::/8"
session:
	cookie_name: __Host-gh
	idle_timeout: 1d12h
	lifetime: 30d
login:
	max_failures: 3
	failure_window: 5m
	lockout: 1h
	ip_max_failures: 50
log:
	level: DEBUG
	format: json
bootstrap:
	admin_username: root
	admin_group: wheel
	password: correct horse battery staple
apps:
	- &media
		slug: sonarr
		name: Sonarr
		allow_groups: [media, wheel]
	- <<: *media
		slug: radarr
		name: Radarr
groups:
	- name: media
		description: Can watch things
users:
	- username: alice
		email: alice@homelab.example
		name: Alice
		groups: [media, wheel]
		password_hash: $argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo
	- username: bob
		disabled: true
`

func TestParseFullFile(t *testing.T) {
	c := mustParse(t, fullFile, nil)
	want := &Config{
		Listen:         "0.0.0.0:8080",
		MetricsListen:  "",
		DataDir:        "/var/lib/gatehouse",
		ExternalURL:    "https://Auth.Homelab.Example",
		CookieDomain:   "homelab.example",
		DatabaseURL:    "postgres://gh:pw@db:5432/gatehouse?sslmode=disable",
		Database:       Database{MaxOpenConns: 25, StatementTimeout: Duration(time.Minute)},
		RedisURL:       "rediss://:pw@redis:6380/0",
		SecretKey:      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		TrustedProxies: []string{"10.0.0.0/8", "192.168.1.1", "fd00::/8"},
		Session: Session{
			CookieName:  "__Host-gh",
			IdleTimeout: Duration(36 * time.Hour),
			Lifetime:    Duration(30 * 24 * time.Hour),
		},
		Login: Login{MaxFailures: 3, FailureWindow: Duration(5 * time.Minute), Lockout: Duration(time.Hour), IPMaxFailures: 50},
		Log:   Log{Level: "debug", Format: "json"},
		Bootstrap: Bootstrap{
			AdminUsername: "root",
			AdminGroup:    "wheel",
			Password:      "correct horse battery staple",
		},
		OIDC:   DefaultOIDC(),
		Worker: DefaultWorker(),
		Apps: []App{
			{Slug: "sonarr", Name: "Sonarr", AllowGroups: []string{"media", "wheel"}},
			{Slug: "radarr", Name: "Radarr", AllowGroups: []string{"media", "wheel"}},
		},
		Groups: []Group{{Name: "media", Description: "Can watch things"}},
		Users: []User{
			{
				Username:     "alice",
				Email:        "alice@homelab.example",
				Name:         "Alice",
				Groups:       []string{"media", "wheel"},
				PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
			},
			{Username: "bob", Disabled: true},
		},
	}
	if got := plain(c); !reflect.DeepEqual(got, want) {
		t.Errorf("decoded config differs:\n got %+v\nwant %+v", got, want)
	}
	if !c.Secure() {
		t.Error("Secure() = false for an https external_url")
	}
	if u := c.ExternalURLParsed(); u == nil || u.Host != "Auth.Homelab.Example" || u.Path != "" {
		t.Errorf("ExternalURLParsed() = %v", u)
	}
	wantPrefixes := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.1/32"),
		netip.MustParsePrefix("fd00::/8"),
	}
	if got := c.TrustedProxyPrefixes(); !reflect.DeepEqual(got, wantPrefixes) {
		t.Errorf("TrustedProxyPrefixes() = %v, want %v", got, wantPrefixes)
	}
	if got := c.DatabaseURLOrDefault(); got != c.DatabaseURL {
		t.Errorf("DatabaseURLOrDefault() = %q, want the configured URL", got)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() on a parsed config: %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	const file = `
listen: ":7000"
session:
	idle_timeout: 1h
trusted_proxies: [10.0.0.1]
`
	tests := []struct {
		name  string
		env   []string
		check func(*Config) (got, want any)
	}{
		{"file value without env", nil,
			func(c *Config) (any, any) { return c.Listen, ":7000" }},
		{"env beats file", []string{"GATEHOUSE_LISTEN", ":7001"},
			func(c *Config) (any, any) { return c.Listen, ":7001" }},
		{"nested key", []string{"GATEHOUSE_SESSION_IDLE_TIMEOUT", "2d"},
			func(c *Config) (any, any) { return c.Session.IdleTimeout, Duration(48 * time.Hour) }},
		{"nested default", []string{"GATEHOUSE_DATABASE_MAX_OPEN_CONNS", " 3 "},
			func(c *Config) (any, any) { return c.Database.MaxOpenConns, 3 }},
		{"list is comma-separated", []string{"GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/8, 172.16.0.0/12,"},
			func(c *Config) (any, any) { return c.TrustedProxies, []string{"10.0.0.0/8", "172.16.0.0/12"} }},
		{"empty string disables metrics", []string{"GATEHOUSE_METRICS_LISTEN", ""},
			func(c *Config) (any, any) { return c.MetricsListen, "" }},
		{"secret", []string{"GATEHOUSE_BOOTSTRAP_PASSWORD", "s3cret-pass"},
			func(c *Config) (any, any) { return c.Bootstrap.Password, "s3cret-pass" }},
		{"database url", []string{"GATEHOUSE_DATABASE_URL", "sqlite:/tmp/x.db"},
			func(c *Config) (any, any) { return c.DatabaseURLOrDefault(), "sqlite:/tmp/x.db" }},
		{"normalized like the file", []string{"GATEHOUSE_EXTERNAL_URL", "https://sso.lan.example/", "GATEHOUSE_COOKIE_DOMAIN", ".LAN.example"},
			func(c *Config) (any, any) {
				return []string{c.ExternalURL, c.CookieDomain}, []string{"https://sso.lan.example", "lan.example"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, file, envOf(tt.env...))
			if got, want := tt.check(c); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestSecretFiles(t *testing.T) {
	key := strings.Repeat("k", 40)
	tests := []struct {
		name    string
		file    string // YAML; %s is replaced by the secret file's path
		content string // secret file content
		env     []string
		get     func(*Config) string
		want    string
		wantErr string
	}{
		{name: "yaml secret_key_file", file: "secret_key_file: %s\n", content: key + "\n",
			get: func(c *Config) string { return c.SecretKey }, want: key},
		{name: "env _FILE", content: key + "\n", env: []string{"GATEHOUSE_SECRET_KEY_FILE", "%s"},
			get: func(c *Config) string { return c.SecretKey }, want: key},
		{name: "only one newline trimmed", content: "pass word!\n\n", env: []string{"GATEHOUSE_BOOTSTRAP_PASSWORD_FILE", "%s"},
			get: func(c *Config) string { return c.Bootstrap.Password }, want: "pass word!\n"},
		{name: "CRLF trimmed", content: "redis://r:6379\r\n", env: []string{"GATEHOUSE_REDIS_URL_FILE", "%s"},
			get: func(c *Config) string { return c.RedisURL }, want: "redis://r:6379"},
		{name: "no newline kept as is", content: "postgres://db/gh", file: "database_url_file: %s\n",
			get: func(c *Config) string { return c.DatabaseURL }, want: "postgres://db/gh"},
		{name: "env _FILE beats yaml value", content: key, file: "secret_key: " + strings.Repeat("y", 40) + "\n",
			env: []string{"GATEHOUSE_SECRET_KEY_FILE", "%s"},
			get: func(c *Config) string { return c.SecretKey }, want: key},
		{name: "list item _file", content: "$2b$12$abcdefghijklmnopqrstuu\n",
			file: "users:\n  - username: carol\n    password_hash_file: %s\n",
			get:  func(c *Config) string { return c.Users[0].PasswordHash }, want: "$2b$12$abcdefghijklmnopqrstuu"},
		{name: "file content is validated", content: "short\n", file: "secret_key_file: %s\n",
			wantErr: "gatehouse.yaml:1: secret_key: too short"},
		{name: "both in yaml", content: key, file: "secret_key: " + key + "\nsecret_key_file: %s\n",
			wantErr: "gatehouse.yaml:2: secret_key: set either secret_key or secret_key_file, not both"},
		{name: "both in env", content: key, env: []string{"GATEHOUSE_SECRET_KEY", key, "GATEHOUSE_SECRET_KEY_FILE", "%s"},
			wantErr: "env GATEHOUSE_SECRET_KEY_FILE: set either GATEHOUSE_SECRET_KEY or GATEHOUSE_SECRET_KEY_FILE, not both"},
		{name: "missing file in env", env: []string{"GATEHOUSE_BOOTSTRAP_PASSWORD_FILE", "/nonexistent/pw"},
			wantErr: "env GATEHOUSE_BOOTSTRAP_PASSWORD_FILE: reading /nonexistent/pw: file not found"},
		{name: "missing file in yaml", file: "redis_url_file: /nonexistent/redis\n",
			wantErr: "gatehouse.yaml:1: redis_url_file: reading /nonexistent/redis: file not found"},
		{name: "non-secret has no _file", file: "listen_file: /x\n",
			wantErr: `gatehouse.yaml:1: listen_file: unknown key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := secretFile(t, tt.content)
			file := strings.ReplaceAll(tt.file, "%s", path)
			env := make([]string, len(tt.env))
			for i, e := range tt.env {
				env[i] = strings.ReplaceAll(e, "%s", path)
			}
			c, err := Parse([]byte(file), "gatehouse.yaml", envOf(env...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := tt.get(c); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want []string // the lines of Error(), in order
	}{
		{
			name: "unknown top-level key",
			file: "listen: \":9000\"\nlisten_addr: \":9001\"\n",
			want: []string{`gatehouse.yaml:2: listen_addr: unknown key; did you mean "listen"?`},
		},
		{
			name: "unknown nested keys",
			file: `
session:
	cookie_name: gh
	idle_timout: 1h
apps:
	- slug: grafana
	- slug: argocd
		proxy_auth:
			hosts: [argocd.lan.example]
`,
			want: []string{
				`gatehouse.yaml:3: session.idle_timout: unknown key; did you mean "idle_timeout"?`,
				`gatehouse.yaml:7: apps[1].proxy_auth: unknown key`,
			},
		},
		{
			name: "wrong types",
			file: `
trusted_proxies: 10.0.0.0/8
apps: {slug: x}
database:
	max_open_conns: ten
users:
	- username: [a, b]
		disabled: "yes"
`,
			want: []string{
				`gatehouse.yaml:1: trusted_proxies: expected a list, got a string`,
				`gatehouse.yaml:2: apps: expected a list, got a mapping`,
				`gatehouse.yaml:4: database.max_open_conns: expected a whole number, got a string`,
				`gatehouse.yaml:6: users[0].username: expected a string, got a list`,
				`gatehouse.yaml:6: users[0].username: is required`,
				`gatehouse.yaml:7: users[0].disabled: expected true or false, got a string`,
			},
		},
		{
			name: "several errors together",
			file: `
listen: nonsense
bogus: 1
log:
	level: loud
	format: xml
session:
	idle_timeout: 3600
login:
	max_failures: 0
`,
			env: []string{"GATEHOUSE_LOGIN_LOCKOUT", "soon"},
			want: []string{
				`gatehouse.yaml:1: listen: "nonsense" is not a host:port address (for example ":9000")`,
				`gatehouse.yaml:2: bogus: unknown key`,
				`gatehouse.yaml:4: log.level: "loud" is not one of debug, info, warn, error`,
				`gatehouse.yaml:5: log.format: "xml" is not one of auto, json, text`,
				`gatehouse.yaml:7: session.idle_timeout: invalid duration "3600": use a number with a unit, like "90s", "15m", "12h" or "7d"`,
				`gatehouse.yaml:9: login.max_failures: must be at least 1`,
				`env GATEHOUSE_LOGIN_LOCKOUT: invalid duration "soon": use a number with a unit, like "90s", "15m", "12h" or "7d"`,
			},
		},
		{
			name: "bad durations",
			file: "session:\n  lifetime: 1h\n  idle_timeout: 2h\nlogin:\n  lockout: -5m\ndatabase:\n  statement_timeout: 1.5d\n",
			want: []string{
				`gatehouse.yaml:3: session.idle_timeout: 2h is longer than session.lifetime (1h)`,
				`gatehouse.yaml:5: login.lockout: must be greater than 0`,
				`gatehouse.yaml:7: database.statement_timeout: invalid duration "1.5d": use a number with a unit, like "90s", "15m", "12h" or "7d"`,
			},
		},
		{
			name: "bad URLs",
			file: "external_url: ftp://auth.example.com\nredis_url: http://user:hunter2@r\ndatabase_url: mysql://user:hunter2@db/x\n",
			want: []string{
				`gatehouse.yaml:1: external_url: "ftp://auth.example.com" must start with http:// or https://`,
				`gatehouse.yaml:2: redis_url: must start with redis://, rediss:// or redis-sentinel://`,
				`gatehouse.yaml:3: database_url: must be a postgres:// or postgresql:// URL, or a SQLite path like sqlite:/var/lib/gatehouse/gatehouse.db`,
			},
		},
		{
			name: "unusable database URLs",
			env:  []string{"GATEHOUSE_DATABASE_URL", "host=db password=hunter2"},
			file: "database_url: \"sqlite::memory:\"\n", // overridden, so not reported
			want: []string{`env GATEHOUSE_DATABASE_URL: keyword/value connection strings are not supported; use a postgres:// URL`},
		},
		{
			name: "in-memory SQLite",
			file: "database_url: file:gh.db?mode=memory\n",
			want: []string{`gatehouse.yaml:1: database_url: SQLite needs a file path (in-memory databases are not supported)`},
		},
		{
			name: "external_url with query",
			file: "external_url: https://auth.example.com/?x=1\n",
			want: []string{`gatehouse.yaml:1: external_url: "https://auth.example.com/?x=1" must not have a query or fragment`},
		},
		{
			name: "external_url without host, from env",
			env:  []string{"GATEHOUSE_EXTERNAL_URL", "https:///path"},
			want: []string{`env GATEHOUSE_EXTERNAL_URL: "https:///path" has no host`},
		},
		{
			name: "cookie_domain does not cover external_url",
			file: "external_url: https://auth.example.com\ncookie_domain: homelab.example\n",
			want: []string{`gatehouse.yaml:2: cookie_domain: "homelab.example" does not cover the host of external_url (auth.example.com); it must be that host or a parent domain of it`},
		},
		{
			name: "cookie_domain suffix is not a parent",
			file: "external_url: https://auth.badexample.com\ncookie_domain: example.com\n",
			want: []string{`gatehouse.yaml:2: cookie_domain: "example.com" does not cover the host of external_url (auth.badexample.com); it must be that host or a parent domain of it`},
		},
		{
			name: "cookie_domain not a domain",
			file: "cookie_domain: sonarr\n",
			want: []string{`gatehouse.yaml:1: cookie_domain: "sonarr" is not a valid domain name`},
		},
		{
			name: "bad CIDR",
			file: "trusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.0/33\n  - proxy.lan\n",
			want: []string{
				`gatehouse.yaml:3: trusted_proxies[1]: "10.0.0.0/33" is not an IP address or CIDR`,
				`gatehouse.yaml:4: trusted_proxies[2]: "proxy.lan" is not an IP address or CIDR`,
			},
		},
		{
			name: "bad CIDR from env replacing the file's list",
			file: "trusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.1\n",
			env:  []string{"GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/8,nope"},
			want: []string{`env GATEHOUSE_TRUSTED_PROXIES: "nope" is not an IP address or CIDR`},
		},
		{
			name: "malformed YAML",
			file: "listen: \":9000\"\nsession:\n  idle_timeout: [1h\n",
			want: []string{`gatehouse.yaml:3: invalid YAML: sequence end token ']' not found`},
		},
		{
			name: "top level is not a mapping",
			file: "- listen\n",
			want: []string{`gatehouse.yaml:1: expected a mapping, got a list`},
		},
		{
			name: "duplicate app slug",
			file: "apps:\n  - slug: grafana\n  - slug: argocd\n  - name: Grafana again\n    slug: grafana\n",
			want: []string{`gatehouse.yaml:5: apps[2].slug: "grafana" is already used by apps[0]`},
		},
		{
			name: "bad app slug",
			file: "apps:\n  - slug: Sonarr\n  - name: no slug\n",
			want: []string{
				`gatehouse.yaml:2: apps[0].slug: "Sonarr" must be lower-case letters, digits and dashes, starting with a letter or digit (at most 63)`,
				`gatehouse.yaml:3: apps[1].slug: is required`,
			},
		},
		{
			name: "duplicate keys",
			file: "listen: \":1\"\nsession:\n  lifetime: 1d\n  lifetime: 2d\nlisten: \":2\"\n",
			want: []string{
				`gatehouse.yaml:4: session.lifetime: duplicate key (first set on line 3)`,
				`gatehouse.yaml:5: listen: duplicate key (first set on line 1)`,
			},
		},
		{
			name: "directory references",
			file: `
groups:
	- name: media
	- description: nameless
	- name: media
users:
	- username: alice
		email: not-an-email
		groups: [media, admins, family]
	- username: ALICE
		password_hash: hunter2
	- email: bob@example.com
`,
			want: []string{
				`gatehouse.yaml:3: groups[1].name: is required`,
				`gatehouse.yaml:4: groups[2].name: "media" is already declared by groups[0]`,
				`gatehouse.yaml:7: users[0].email: "not-an-email" is not a plain e-mail address`,
				`gatehouse.yaml:8: users[0].groups[2]: group "family" is not declared in groups (nor is it bootstrap.admin_group)`,
				`gatehouse.yaml:9: users[1].username: "ALICE" is already declared by users[0]`,
				`gatehouse.yaml:10: users[1].password_hash: is not a PHC string like $argon2id$v=19$m=65536,t=3,p=4$... (bcrypt $2b$... and Django pbkdf2_sha256$... are also accepted)`,
				`gatehouse.yaml:11: users[2].username: is required`,
			},
		},
		{
			name: "secrets are never echoed",
			file: "secret_key: hunter2\nbootstrap:\n  password: hunter2\n",
			want: []string{
				"gatehouse.yaml:1: secret_key: too short: it must be at least 32 bytes (generate one with `openssl rand -hex 32`)",
				`gatehouse.yaml:3: bootstrap.password: must be at least 8 characters`,
			},
		},
		{
			name: "env value blamed on the variable",
			file: "listen: \":9000\"\n",
			env:  []string{"GATEHOUSE_LISTEN", "9000", "GATEHOUSE_LOG_LEVEL", "verbose"},
			want: []string{
				`env GATEHOUSE_LISTEN: "9000" is not a host:port address (for example ":9000")`,
				`env GATEHOUSE_LOG_LEVEL: "verbose" is not one of debug, info, warn, error`,
			},
		},
		{
			name: "env type errors",
			env:  []string{"GATEHOUSE_LOGIN_MAX_FAILURES", "five"},
			want: []string{`env GATEHOUSE_LOGIN_MAX_FAILURES: expected a whole number, got "five"`},
		},
		{
			name: "metrics on the main port",
			file: "listen: \":9000\"\nmetrics_listen: \":9000\"\n",
			want: []string{`gatehouse.yaml:2: metrics_listen: must differ from listen (:9000)`},
		},
		{
			name: "second document",
			file: "listen: \":9000\"\n---\nlisten: \":9001\"\n",
			want: []string{`gatehouse.yaml:3: only one YAML document is allowed per file`},
		},
		{
			name: "undefined alias",
			file: "apps:\n  - *nothing\n",
			want: []string{
				`gatehouse.yaml:2: apps[0]: alias *nothing refers to no anchor defined before it`,
				`gatehouse.yaml:2: apps[0].slug: is required`,
			},
		},
		{
			name: "https-only cookie prefix over http",
			file: "session:\n  cookie_name: __Host-gh\n",
			want: []string{`gatehouse.yaml:2: session.cookie_name: the "__Host-" prefix needs an https external_url`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(yamlText(tt.file), "gatehouse.yaml", envOf(tt.env...))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want %d problems", c, len(tt.want))
			}
			if c != nil {
				t.Errorf("Parse returned a config together with an error")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error is %T, want *config.Error", err)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(tt.want, "\n     "))
			}
			if len(ce.Problems) != len(tt.want) {
				t.Errorf("len(Problems) = %d, want %d", len(ce.Problems), len(tt.want))
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error message leaks a secret value:\n%v", err)
			}
		})
	}
}

// TestAliasBombs checks that alias and merge-key fan-out is cut off with a
// problem instead of exhausting memory.
func TestAliasBombs(t *testing.T) {
	// Lists: 600 users sharing one 400-item groups list is 240k values.
	var list, merge strings.Builder
	list.WriteString("users:\n  - {username: a, groups: &g [" + strings.Repeat("admins, ", 399) + "admins]}\n")
	list.WriteString("  - &u {username: b, groups: *g}\n")
	list.WriteString(strings.Repeat("  - *u\n", 600))
	// Merge keys: each level merges the previous one ten times.
	merge.WriteString("apps:\n  - &m0 {slug: a}\n")
	for i := 1; i <= 8; i++ {
		fmt.Fprintf(&merge, "  - &m%d {<<: [", i)
		for j := range 10 {
			if j > 0 {
				merge.WriteString(", ")
			}
			fmt.Fprintf(&merge, "*m%d", i-1)
		}
		merge.WriteString("]}\n")
	}
	for name, src := range map[string]string{"aliases": list.String(), "merge keys": merge.String()} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(src), "bomb.yaml", nil)
			if err == nil || !strings.Contains(err.Error(), "too large once its aliases are expanded") {
				t.Fatalf("error = %.300v", err)
			}
		})
	}
}

// TestNewSubStructsAreStrict shows what another section gets for free by
// declaring yaml tags: unknown keys, types and lines, inline embedding.
func TestNewSubStructsAreStrict(t *testing.T) {
	type forwardAuth struct {
		Hosts   []string `yaml:"hosts"`
		Timeout Duration `yaml:"timeout"`
	}
	type app struct {
		App         `yaml:",inline"`
		ForwardAuth *forwardAuth `yaml:"forward_auth"`
	}
	var apps []app
	src := yamlText(`
- slug: sonarr
	forward_auth:
		hosts: [sonarr.lan.example]
		timeout: 2d
- slug: radarr
	forward_auth:
		hosts: radarr.lan.example
		timout: 5s
`)
	d := &decoder{file: "x.yaml", src: map[string]origin{}}
	body, ok := d.parseDocument(src)
	if !ok {
		t.Fatal(d.problems)
	}
	d.decodeValue(body, reflect.ValueOf(&apps).Elem(), "apps", 0)
	var got []string
	for _, p := range d.problems {
		got = append(got, p.String())
	}
	want := []string{
		`x.yaml:7: apps[1].forward_auth.hosts: expected a list, got a string`,
		`x.yaml:8: apps[1].forward_auth.timout: unknown key; did you mean "timeout"?`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
	if len(apps) != 2 || apps[0].Slug != "sonarr" || apps[0].ForwardAuth.Hosts[0] != "sonarr.lan.example" ||
		apps[0].ForwardAuth.Timeout != Duration(48*time.Hour) || apps[1].Slug != "radarr" {
		t.Errorf("decoded %+v", apps)
	}
	if d.src["apps[1].forward_auth.hosts"].line != 7 {
		t.Errorf("line of apps[1].forward_auth.hosts = %d, want 7", d.src["apps[1].forward_auth.hosts"].line)
	}
}

func TestProblemFields(t *testing.T) {
	_, err := Parse(yamlText("apps:\n\t- slug: a\n\t- slug: a\n"), "/etc/gatehouse.yaml", nil)
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 {
		t.Fatalf("want one problem, got %v", err)
	}
	want := Problem{File: "/etc/gatehouse.yaml", Line: 3, Key: "apps[1].slug", Msg: `"a" is already used by apps[0]`}
	if ce.Problems[0] != want {
		t.Errorf("problem = %#v, want %#v", ce.Problems[0], want)
	}
}

func TestValidateWithoutSource(t *testing.T) {
	c := Default()
	c.Listen = ""
	c.CookieDomain = "other.example"
	c.Apps = []App{{Slug: "x"}, {Slug: "x"}}
	err := c.Validate()
	want := "listen: must not be empty\n" +
		"cookie_domain: \"other.example\" does not cover the host of external_url (localhost); it must be that host or a parent domain of it\n" +
		"apps[1].slug: \"x\" is already used by apps[0]"
	if err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("listen: \":8000\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("listen: \":8000\"\nnope: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"good file", good, ""},
		{"problem carries the path", bad, bad + ":2: nope: unknown key"},
		{"missing file", filepath.Join(dir, "missing.yaml"), filepath.Join(dir, "missing.yaml") + ": file not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.path, envOf())
			if tt.wantErr == "" {
				if err != nil || c.Listen != ":8000" {
					t.Fatalf("Load = %v, %v", c, err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
		str     string // String() of the result
	}{
		{in: "15m", want: 15 * time.Minute, str: "15m"},
		{in: "12h", want: 12 * time.Hour, str: "12h"},
		{in: "90s", want: 90 * time.Second, str: "1m30s"},
		{in: "1h30m", want: 90 * time.Minute, str: "1h30m"},
		{in: "7d", want: 7 * day, str: "7d"},
		{in: "1d12h", want: 36 * time.Hour, str: "36h"},
		{in: "168h", want: 7 * day, str: "7d"},
		{in: "0", want: 0, str: "0s"},
		{in: "500ms", want: 500 * time.Millisecond, str: "500ms"},
		{in: "-2d", want: -2 * day, str: "-2d"},
		{in: "", wantErr: true},
		{in: "3600", wantErr: true},
		{in: "d", wantErr: true},
		{in: "1.5d", wantErr: true},
		{in: "+1d", wantErr: true},
		{in: "1d-1h", wantErr: true},
		{in: "10days", wantErr: true},
		{in: "99999999d", wantErr: true},
		{in: "106751d23h59m", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if s := Duration(got).String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
			if back, err := ParseDuration(Duration(got).String()); err != nil || back != got {
				t.Errorf("String() does not round-trip: %v, %v", back, err)
			}
		})
	}
}

func TestDurationWithGoYAML(t *testing.T) {
	var v struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 2d\n"), &v); err != nil || v.D != Duration(48*time.Hour) {
		t.Errorf("yaml.Unmarshal = %v, %v", v.D, err)
	}
	if err := yaml.Unmarshal([]byte("d: forever\n"), &v); err == nil {
		t.Error("yaml.Unmarshal accepted an invalid duration")
	}
	out, err := yaml.Marshal(v)
	if err != nil || strings.TrimSpace(string(out)) != "d: 2d" {
		t.Errorf("yaml.Marshal = %q, %v", out, err)
	}
}

func TestRedacted(t *testing.T) {
	c := mustParse(t, fullFile, nil)
	r := c.Redacted()
	for _, tt := range []struct {
		name string
		got  string
		want string
	}{
		{"database_url", r.DatabaseURL, "REDACTED"},
		{"redis_url", r.RedisURL, "REDACTED"},
		{"secret_key", r.SecretKey, "REDACTED"},
		{"bootstrap.password", r.Bootstrap.Password, "REDACTED"},
		{"users[0].password_hash", r.Users[0].PasswordHash, "REDACTED"},
		{"unset secret stays empty", r.Users[1].PasswordHash, ""},
		{"non-secret kept", r.ExternalURL, c.ExternalURL},
		{"original untouched", c.Users[0].PasswordHash, "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	// The copy must be deep: editing it cannot reach the original.
	r.Apps[0].AllowGroups[0] = "changed"
	r.TrustedProxies[0] = "changed"
	if c.Apps[0].AllowGroups[0] != "media" || c.TrustedProxies[0] != "10.0.0.0/8" {
		t.Error("Redacted shares slices with the original")
	}
}

func TestHelpers(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		got  func(*Config) any
		want any
	}{
		{"sqlite default under data_dir", Config{DataDir: "/var/lib/gh"},
			func(c *Config) any { return c.DatabaseURLOrDefault() }, "sqlite:/var/lib/gh/gatehouse.db"},
		{"secure with https", Config{ExternalURL: "https://a.example/"},
			func(c *Config) any { return c.Secure() }, true},
		{"external url with sub-path", Config{ExternalURL: "https://a.example/sso/"},
			func(c *Config) any { return c.ExternalURLParsed().String() }, "https://a.example/sso"},
		{"unparsable external url", Config{ExternalURL: "http://[::1"},
			func(c *Config) any { return c.ExternalURLParsed() == nil }, true},
		{"proxy prefixes masked and bad ones skipped", Config{TrustedProxies: []string{"10.1.2.3/8", "::1", "bad"}},
			func(c *Config) any { return c.TrustedProxyPrefixes() },
			[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.got(&tt.c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestEnvNames guards the derived env names: each is unique, and no
// secret's _FILE twin collides with another variable.
func TestEnvNames(t *testing.T) {
	seen := map[string]string{}
	for _, ev := range envVars() {
		names := []string{ev.name}
		if ev.secret {
			names = append(names, ev.name+"_FILE")
		}
		for _, n := range names {
			if prev, dup := seen[n]; dup {
				t.Errorf("%s is the env twin of both %s and %s", n, prev, ev.key)
			}
			seen[n] = ev.key
		}
	}
	for _, want := range []string{
		"GATEHOUSE_LISTEN", "GATEHOUSE_SESSION_IDLE_TIMEOUT", "GATEHOUSE_DATABASE_MAX_OPEN_CONNS",
		"GATEHOUSE_TRUSTED_PROXIES", "GATEHOUSE_BOOTSTRAP_PASSWORD", "GATEHOUSE_SECRET_KEY_FILE",
	} {
		if _, ok := seen[want]; !ok {
			t.Errorf("no env twin %s", want)
		}
	}
	for n := range seen {
		if strings.HasPrefix(n, "GATEHOUSE_APPS") || strings.HasPrefix(n, "GATEHOUSE_USERS") || strings.HasPrefix(n, "GATEHOUSE_GROUPS") {
			t.Errorf("list items must not get env twins: %s", n)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(strings.ReplaceAll(fullFile, "\t", "  ")))
	f.Add([]byte("listen: \":9000\"\nsession: {idle_timeout: 1h, lifetime: 7d}\n"))
	f.Add([]byte("apps:\n  - &a {slug: x, allow_groups: [g]}\n  - <<: *a\n    slug: y\n"))
	f.Add([]byte("a: &a [x, x]\nb: &b [*a, *a]\ntrusted_proxies: *b\n"))
	f.Add([]byte("users:\n  - username: u\n    groups: [admins]\n    password_hash_file: /etc/hostname\n"))
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("--- !!map\n? [a]\n: b\n"))
	noFiles := func(string) (string, error) { return "", errors.New("no files while fuzzing") }
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse(data, "fuzz.yaml", nil, noFiles)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 || c != nil {
				t.Fatalf("bad error result: %T %v (config %v)", err, err, c != nil)
			}
			_ = err.Error()
			return
		}
		// A config Parse accepted must stay valid, and redacting it must work.
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		_ = c.Redacted()
		_ = c.TrustedProxyPrefixes()
	})
}
