package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Migrations are embedded per dialect as migrations/<dialect>/NNNN_name.sql.
// A version is never edited once released: changes go into a new file, with
// the same number in both directories.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFS embed.FS

// migrationLockID is the PostgreSQL advisory lock key that serialises
// migrations across replicas starting together ("gatehous" in ASCII).
const migrationLockID int64 = 0x6761746568_6f7573

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the dialect's migrations in version order.
func (d *dialect) migrations() ([]migration, error) {
	dir := "migrations/" + d.name
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("sqlstore: bad migration file name %s/%s", dir, name)
		}
		b, err := migrationFS.ReadFile(path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read migration %s: %w", name, err)
		}
		if len(ms) > 0 && ms[len(ms)-1].version == v {
			return nil, fmt.Errorf("sqlstore: duplicate migration version %d in %s", v, dir)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	return ms, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT NOT NULL PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`

// Migrate opens the database at databaseURL, applies the pending
// migrations and closes it again; it is what `gatehouse migrate` runs.
func Migrate(ctx context.Context, databaseURL string, opts Options) error {
	opts.SkipMigrations = false
	s, err := Open(ctx, databaseURL, opts)
	if err != nil {
		return err
	}
	return s.Close()
}

// MigrationStatus lists the versions recorded in the database and the
// embedded versions not yet applied, both ascending. Applied versions this
// binary does not know (a newer release migrated the database) are listed
// too.
func (s *Store) MigrationStatus(ctx context.Context) (applied, pending []int, err error) {
	all, err := s.d.migrations()
	if err != nil {
		return nil, nil, err
	}
	var n int
	if err := s.queryRow(ctx, s.reader(), s.d.tableExists, "schema_migrations").Scan(&n); err != nil {
		return nil, nil, fail("migration status", err)
	}
	if n > 0 {
		if applied, err = appliedVersions(ctx, s.reader()); err != nil {
			return nil, nil, err
		}
	}
	for _, m := range all {
		if !slices.Contains(applied, m.version) {
			pending = append(pending, m.version)
		}
	}
	return applied, pending, nil
}

func appliedVersions(ctx context.Context, q querier) (vs []int, err error) {
	rows, err := q.QueryContext(ctx, "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, fail("read schema_migrations", err)
	}
	defer closeRows(rows, &err)
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fail("read schema_migrations", err)
		}
		vs = append(vs, v)
	}
	return vs, rows.Err()
}

// migrate applies the pending migrations, each in its own transaction that
// also records it in schema_migrations, so a failure leaves the database at
// the last good version.
func (s *Store) migrate(ctx context.Context, ds dataSource) error {
	ms, err := s.d.migrations()
	if err != nil {
		return err
	}
	switch s.d {
	case sqliteDialect:
		// The writer's single connection, whose transactions begin
		// IMMEDIATE, already excludes every other writer, in this
		// process or another.
		conn, err := s.write.Conn(ctx)
		if err != nil {
			return fail("migrate", err)
		}
		defer func() { _ = conn.Close() }()
		return s.applyMigrations(ctx, conn, ms)
	default:
		return s.migratePostgres(ctx, ds, ms)
	}
}

// migratePostgres holds a session advisory lock while it migrates, so of
// several replicas starting together one migrates and the others wait and
// then find nothing to do. It uses a connection of its own, without
// statement_timeout: waiting for the lock, or building an index on a large
// table, may take longer than any query should.
func (s *Store) migratePostgres(ctx context.Context, ds dataSource, ms []migration) error {
	db, err := sql.Open(ds.d.driver, ds.dsn)
	if err != nil {
		return fail("migrate", err)
	}
	defer func() { _ = db.Close() }()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return fail("migrate: connect", err)
	}
	// Closing the connection (below, or by dying) also releases the lock.
	defer func() { _ = conn.Close() }()
	if _, err := conn.ExecContext(ctx, "SET statement_timeout = 0"); err != nil {
		return fail("migrate", err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockID); err != nil {
		return fail("migrate: take advisory lock", err)
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockID)
	}()
	return s.applyMigrations(ctx, conn, ms)
}

func (s *Store) applyMigrations(ctx context.Context, conn *sql.Conn, ms []migration) error {
	if _, err := conn.ExecContext(ctx, createMigrationsTable); err != nil {
		return fail("create schema_migrations", err)
	}
	for _, m := range ms {
		if err := s.applyMigration(ctx, conn, m); err != nil {
			return err
		}
	}
	applied, err := appliedVersions(ctx, conn)
	if err != nil {
		return err
	}
	if len(applied) > 0 && len(ms) > 0 && applied[len(applied)-1] > ms[len(ms)-1].version {
		// A newer release migrated this database. Its migrations are meant
		// to be additive, so an older replica keeps running during a
		// rolling upgrade, but say so.
		s.log.Warn("database schema is newer than this binary",
			"database_version", applied[len(applied)-1], "binary_version", ms[len(ms)-1].version)
	}
	return nil
}

// applyMigration runs m unless it is recorded already. The check is inside
// the transaction, after the lock is held, so a concurrent migrator that got
// there first is seen.
func (s *Store) applyMigration(ctx context.Context, conn *sql.Conn, m migration) (err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fail("migrate: begin", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var n int
	if err := tx.QueryRowContext(ctx, s.d.rebind("SELECT count(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
		return fail("migrate", err)
	}
	if n > 0 {
		return tx.Rollback()
	}
	start := time.Now()
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"),
		m.version, toMicro(s.nowMicro())); err != nil {
		return fmt.Errorf("sqlstore: record migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit migration %s: %w", m.name, err)
	}
	s.log.Info("applied migration", "version", m.version, "name", m.name, "took", time.Since(start))
	return nil
}
