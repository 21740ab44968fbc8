package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
	"github.com/gatehouse-sso/gatehouse/internal/store/storetest"
	"github.com/gatehouse-sso/gatehouse/internal/testenv"
)

// backends are the databases the dialect-independent tests run on.
var backends = []struct {
	name string
	// freshDB returns the address of a new, empty database.
	freshDB func(t *testing.T) string
	// namespaces returns a function that hands each subtest of t a new,
	// empty database or, on PostgreSQL, a schema of its own in a database
	// shared by t's subtests: CREATE DATABASE costs seconds, CREATE SCHEMA
	// milliseconds.
	namespaces func(t *testing.T) func(t *testing.T) string
}{
	{
		name:       "sqlite",
		freshDB:    sqliteFile,
		namespaces: func(*testing.T) func(*testing.T) string { return sqliteFile },
	},
	{
		name:       "postgres",
		freshDB:    func(t *testing.T) string { return testenv.PostgresDB(t) },
		namespaces: postgresSchemas,
	},
}

func sqliteFile(t *testing.T) string { return filepath.Join(t.TempDir(), "gatehouse.db") }

func postgresSchemas(t *testing.T) func(t *testing.T) string {
	dbURL := testenv.PostgresDB(t)
	admin, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	return func(t *testing.T) string {
		t.Helper()
		schema := "t_" + testenv.RandomHex(6)
		if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
}

func open(t *testing.T, url string, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), url, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fresh := b.namespaces(t)
			storetest.Run(t, func(t *testing.T) store.Store {
				s := open(t, fresh(t), Options{})
				if s.Dialect() != b.name {
					t.Fatalf("Dialect() = %q, want %q", s.Dialect(), b.name)
				}
				return s
			})
		})
	}
}

func TestRebind(t *testing.T) {
	for _, tc := range []struct {
		name, in, sqlite, postgres string
	}{
		{"no placeholders", "SELECT 1", "SELECT 1", "SELECT 1"},
		{"one", "SELECT * FROM users WHERE id = ?", "SELECT * FROM users WHERE id = ?", "SELECT * FROM users WHERE id = $1"},
		{"several", "INSERT INTO t (a, b, c) VALUES (?, ?, ?)", "INSERT INTO t (a, b, c) VALUES (?, ?, ?)", "INSERT INTO t (a, b, c) VALUES ($1, $2, $3)"},
		{"ten and more", strings.Repeat("?,", 10) + "?", strings.Repeat("?,", 10) + "?", "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11"},
		{"in a string literal", "SELECT '?' || ? FROM t WHERE a = 'it''s ?' AND b = ?", "SELECT '?' || ? FROM t WHERE a = 'it''s ?' AND b = ?", "SELECT '?' || $1 FROM t WHERE a = 'it''s ?' AND b = $2"},
		{"in a quoted identifier", `SELECT "what?" FROM t WHERE x = ?`, `SELECT "what?" FROM t WHERE x = ?`, `SELECT "what?" FROM t WHERE x = $1`},
		{"adjacent", "??", "??", "$1$2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sqliteDialect.rebind(tc.in); got != tc.sqlite {
				t.Errorf("sqlite: rebind(%q) = %q, want %q", tc.in, got, tc.sqlite)
			}
			if got := postgresDialect.rebind(tc.in); got != tc.postgres {
				t.Errorf("postgres: rebind(%q) = %q, want %q", tc.in, got, tc.postgres)
			}
		})
	}
}

func TestParseDatabaseURL(t *testing.T) {
	for _, tc := range []struct {
		in       string
		dialect  string
		dsn      string // for postgres: substrings the DSN must contain
		contains []string
		wantErr  bool
	}{
		{in: "postgres://gh@db.internal:5432/gatehouse?sslmode=disable", dialect: "postgres",
			contains: []string{"postgres://gh@db.internal:5432/gatehouse?", "sslmode=disable", "statement_timeout=30000", "application_name=gatehouse"}},
		{in: "postgresql://gh@db/gatehouse?statement_timeout=5000&application_name=x", dialect: "postgres",
			contains: []string{"statement_timeout=5000", "application_name=x"}},
		{in: "/var/lib/gatehouse/gh.db", dialect: "sqlite", dsn: "/var/lib/gatehouse/gh.db"},
		{in: "data/gh.db", dialect: "sqlite", dsn: "data/gh.db"},
		{in: "sqlite:///var/lib/gatehouse/gh.db", dialect: "sqlite", dsn: "/var/lib/gatehouse/gh.db"},
		{in: "sqlite://data/gh.db", dialect: "sqlite", dsn: "data/gh.db"},
		{in: "sqlite:gh.db", dialect: "sqlite", dsn: "gh.db"},
		{in: "file:/tmp/gh.db", dialect: "sqlite", dsn: "/tmp/gh.db"},
		{in: "file:gh.db?_cache_size=-2000", dialect: "sqlite", dsn: "gh.db"},
		{in: "", wantErr: true},
		{in: ":memory:", wantErr: true},
		{in: "sqlite://:memory:", wantErr: true},
		{in: "file::memory:?cache=shared", wantErr: true},
		{in: "file:gh.db?mode=memory", wantErr: true},
		{in: "postgres://gh@db:bad port/x", wantErr: true},
		{in: "mysql://gh@db/gatehouse", wantErr: true},
		{in: "host=db dbname=gatehouse", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ds, err := parseDatabaseURL(tc.in, 30*time.Second)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parseDatabaseURL(%q) = %+v, want an error", tc.in, ds)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ds.d.name != tc.dialect {
				t.Errorf("dialect = %s, want %s", ds.d.name, tc.dialect)
			}
			if tc.dsn != "" && ds.dsn != tc.dsn {
				t.Errorf("dsn = %q, want %q", ds.dsn, tc.dsn)
			}
			for _, c := range tc.contains {
				if !strings.Contains(ds.dsn, c) {
					t.Errorf("dsn = %q, want it to contain %q", ds.dsn, c)
				}
			}
		})
	}
}

func TestSQLiteSetup(t *testing.T) {
	t.Parallel()
	// The directory does not exist yet: Open creates it.
	path := filepath.Join(t.TempDir(), "var", "lib", "gatehouse.db")
	s := open(t, "sqlite://"+path, Options{})
	ctx := t.Context()

	for _, tc := range []struct {
		pool, pragma, want string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "foreign_keys", "1"},
		{"writer", "busy_timeout", "5000"},
		{"writer", "synchronous", "1"},
		{"writer", "query_only", "0"},
		{"reader", "journal_mode", "wal"},
		{"reader", "foreign_keys", "1"},
		{"reader", "busy_timeout", "5000"},
		{"reader", "query_only", "1"},
	} {
		db := s.write
		if tc.pool == "reader" {
			db = s.DB()
		}
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("%s: PRAGMA %s: %v", tc.pool, tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("%s: PRAGMA %s = %q, want %q", tc.pool, tc.pragma, got, tc.want)
		}
	}
	if got := s.write.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool MaxOpenConnections = %d, want 1", got)
	}
	if _, err := s.DB().ExecContext(ctx, "DELETE FROM users"); err == nil {
		t.Error("the read pool accepted a write")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestPostgresSetup(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresDB(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name        string
		opts        Options
		url         string
		wantTimeout string
		wantMaxOpen int
	}{
		{"defaults", Options{}, url, "30s", 10},
		{"options", Options{MaxOpenConns: 3, StatementTimeout: 1500 * time.Millisecond}, url, "1500ms", 3},
		{"timeout in URL wins", Options{StatementTimeout: time.Second}, url + "&statement_timeout=2000", "2s", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, tc.url, tc.opts)
			// Several connections, to see the setting on each.
			conns := make([]interface{ Close() error }, 0, 3)
			for range min(3, tc.wantMaxOpen) {
				c, err := s.DB().Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
				var got string
				if err := c.QueryRowContext(ctx, "SHOW statement_timeout").Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != tc.wantTimeout {
					t.Errorf("statement_timeout = %q, want %q", got, tc.wantTimeout)
				}
			}
			for _, c := range conns {
				_ = c.Close()
			}
			if got := s.DB().Stats().MaxOpenConnections; got != tc.wantMaxOpen {
				t.Errorf("MaxOpenConnections = %d, want %d", got, tc.wantMaxOpen)
			}
		})
	}
	t.Run("errors keep the driver error", func(t *testing.T) {
		// The sentinel wraps, not replaces, the driver's error, so logs
		// and errors.As still reach it.
		s := open(t, url, Options{})
		u := storetestUser("u1", "alice")
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		err := s.CreateUser(ctx, u)
		var pgErr *pgconn.PgError
		if !errors.Is(err, store.ErrConflict) || !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			t.Errorf("duplicate CreateUser error = %v, want ErrConflict wrapping a 23505 PgError", err)
		}
	})
	t.Run("timeout enforced", func(t *testing.T) {
		s := open(t, url, Options{StatementTimeout: 50 * time.Millisecond})
		_, err := s.DB().ExecContext(ctx, "SELECT pg_sleep(2)")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
			t.Errorf("pg_sleep(2) with a 50ms statement_timeout: error = %v, want query_canceled (57014)", err)
		}
	})
}

func TestMigrations(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			fresh := b.namespaces(t)
			// Every embedded version, so the test holds as migrations are
			// added.
			all := embeddedVersions(t)

			t.Run("fresh database is migrated by Open", func(t *testing.T) {
				s := open(t, fresh(t), Options{})
				checkStatus(t, s, all, nil)
			})

			t.Run("second open is a no-op and keeps data", func(t *testing.T) {
				url := fresh(t)
				s1 := open(t, url, Options{})
				if err := s1.CreateUser(ctx, storetestUser("u1", "alice")); err != nil {
					t.Fatal(err)
				}
				before := migrationRows(t, s1)
				if err := s1.Close(); err != nil {
					t.Fatal(err)
				}
				s2 := open(t, url, Options{})
				if after := migrationRows(t, s2); !slices.Equal(after, before) {
					t.Errorf("schema_migrations changed on reopen: %v -> %v", before, after)
				}
				checkStatus(t, s2, all, nil)
				if _, err := s2.GetUser(ctx, "u1"); err != nil {
					t.Errorf("data after reopen: %v", err)
				}
			})

			t.Run("SkipMigrations then Migrate", func(t *testing.T) {
				url := fresh(t)
				s := open(t, url, Options{SkipMigrations: true})
				checkStatus(t, s, nil, all)
				if err := Migrate(ctx, url, Options{}); err != nil {
					t.Fatal(err)
				}
				checkStatus(t, s, all, nil)
			})

			t.Run("newer schema is tolerated", func(t *testing.T) {
				url := fresh(t)
				s := open(t, url, Options{})
				if _, err := s.exec(ctx, s.write, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", 9999, 1); err != nil {
					t.Fatal(err)
				}
				s2 := open(t, url, Options{})
				checkStatus(t, s2, append(slices.Clone(all), 9999), nil)
			})

			t.Run("concurrent opens migrate once", func(t *testing.T) {
				url := b.freshDB(t)
				const n = 6
				stores := make([]*Store, n)
				errs := make([]error, n)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Go(func() {
						<-start
						stores[i], errs[i] = Open(ctx, url, Options{})
					})
				}
				close(start)
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("Open #%d: %v", i, err)
					}
					t.Cleanup(func() { _ = stores[i].Close() })
				}
				var versions []int
				for _, r := range migrationRows(t, stores[0]) {
					versions = append(versions, int(r[0]))
				}
				if !slices.Equal(versions, all) {
					t.Errorf("schema_migrations versions = %v, want %v once each", versions, all)
				}
				for i, s := range stores {
					if err := s.CreateUser(ctx, storetestUser(fmt.Sprintf("u%d", i), fmt.Sprintf("user%d", i))); err != nil {
						t.Errorf("store #%d: %v", i, err)
					}
				}
			})
		})
	}
}

func TestEmbeddedMigrationsMatch(t *testing.T) {
	var versions [2][]int
	for i, d := range []*dialect{sqliteDialect, postgresDialect} {
		ms, err := d.migrations()
		if err != nil {
			t.Fatal(err)
		}
		for j, m := range ms {
			if m.version != j+1 {
				t.Errorf("%s: migration #%d is version %d, want %d (no gaps)", d.name, j, m.version, j+1)
			}
			versions[i] = append(versions[i], m.version)
		}
	}
	if !slices.Equal(versions[0], versions[1]) {
		t.Errorf("sqlite migrations %v and postgres migrations %v differ", versions[0], versions[1])
	}
}

func storetestUser(id, username string) model.User {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return model.User{ID: id, Username: username, CreatedAt: now, UpdatedAt: now}
}

func embeddedVersions(t *testing.T) []int {
	t.Helper()
	ms, err := sqliteDialect.migrations()
	if err != nil {
		t.Fatal(err)
	}
	var vs []int
	for _, m := range ms {
		vs = append(vs, m.version)
	}
	return vs
}

func checkStatus(t *testing.T, s *Store, wantApplied, wantPending []int) {
	t.Helper()
	applied, pending, err := s.MigrationStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, wantApplied) || !slices.Equal(pending, wantPending) {
		t.Errorf("MigrationStatus = applied %v pending %v, want applied %v pending %v", applied, pending, wantApplied, wantPending)
	}
}

// migrationRows returns schema_migrations as (version, applied_at) pairs.
func migrationRows(t *testing.T, s *Store) [][2]int64 {
	t.Helper()
	rows, err := s.DB().QueryContext(t.Context(), "SELECT version, applied_at FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][2]int64
	for rows.Next() {
		var r [2]int64
		if err := rows.Scan(&r[0], &r[1]); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Cross-process tests re-run this test binary as a helper that records
// failures against the database named in helperURLEnv.
const helperURLEnv = "GATEHOUSE_SQLSTORE_HELPER_URL"

const (
	helperGoroutines = 5
	helperFailures   = 10 // per goroutine
)

func TestRecordFailureAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			url := b.freshDB(t)
			s := open(t, url, Options{}) // migrate before the helpers start
			const procs = 2
			var wg sync.WaitGroup
			outs := make([][]byte, procs)
			errs := make([]error, procs)
			for i := range procs {
				wg.Go(func() {
					cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperRecordFailures$", "-test.count=1")
					cmd.Env = append(os.Environ(), helperURLEnv+"="+url)
					outs[i], errs[i] = cmd.CombinedOutput()
				})
			}
			wg.Wait()
			for i := range procs {
				if errs[i] != nil {
					t.Fatalf("helper %d: %v\n%s", i, errs[i], outs[i])
				}
			}
			st, err := s.GetThrottle(t.Context(), "shared")
			if err != nil {
				t.Fatal(err)
			}
			if want := procs * helperGoroutines * helperFailures; st.Failures != want {
				t.Errorf("Failures = %d, want %d", st.Failures, want)
			}
		})
	}
}

// TestHelperRecordFailures is the helper process of
// TestRecordFailureAcrossProcesses; it does nothing in a normal run.
func TestHelperRecordFailures(t *testing.T) {
	url := os.Getenv(helperURLEnv)
	if url == "" {
		return
	}
	s := open(t, url, Options{SkipMigrations: true})
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for range helperGoroutines {
		wg.Go(func() {
			for range helperFailures {
				if _, err := s.RecordFailure(t.Context(), "shared", now, time.Hour, 1_000_000, time.Hour); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
