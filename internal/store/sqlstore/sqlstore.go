// Package sqlstore implements store.Store once, over database/sql, for two
// databases: SQLite (modernc.org/sqlite, pure Go) for single-node installs
// and PostgreSQL (pgx) for replicated ones. The differences live in a small
// dialect struct: placeholder style, row locking and schema introspection.
//
// Times are stored as BIGINT unix microseconds and durations as BIGINT
// microseconds in both databases, so a backup taken from one restores into
// the other; times come back in UTC, truncated to the microsecond. The zero
// time is stored as 0.
//
// On SQLite every write and every transaction goes through one connection
// (SQLite allows one writer at a time anyway, and queueing in database/sql
// is cheaper than spinning on SQLITE_BUSY), while reads use a small pool of
// read-only connections that WAL mode lets run beside the writer. On
// PostgreSQL one bounded pool serves both.
//
// Open applies the embedded, versioned migrations (see migrate.go) before it
// returns.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/gatehouse-sso/gatehouse/internal/store"
)

var _ store.Store = (*Store)(nil)

const (
	defaultMaxOpenConns     = 10
	defaultStatementTimeout = 30 * time.Second
	sqliteBusyTimeout       = 5 * time.Second
)

// Options tunes Open. The zero value is usable.
type Options struct {
	// MaxOpenConns bounds the PostgreSQL pool (default 10). Every replica
	// holds up to this many connections, so replicas × MaxOpenConns must
	// stay below the server's max_connections.
	MaxOpenConns int
	// StatementTimeout is PostgreSQL's statement_timeout for every pooled
	// connection (default 30s), so a stuck query cannot hold a connection
	// for ever. A statement_timeout parameter in the URL wins.
	StatementTimeout time.Duration
	// SkipMigrations makes Open leave the schema alone, for tools that only
	// report MigrationStatus or run Migrate explicitly.
	SkipMigrations bool
	// Logger receives migration progress; nil discards it.
	Logger *slog.Logger
	// Now is the clock for the timestamps the store sets itself (UpdatedAt,
	// a missing CreatedAt); nil is time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = defaultMaxOpenConns
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = defaultStatementTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is the SQL implementation of store.Store. The *Store that Open
// returns is safe for concurrent use; the one InTx hands to its callback is
// bound to that transaction and must not outlive it.
type Store struct {
	d   *dialect
	log *slog.Logger
	now func() time.Time

	read  *sql.DB // reads outside transactions
	write *sql.DB // writes and transactions; the same pool as read on PostgreSQL

	// tx is set on the view InTx hands out: then every statement, read or
	// write, runs in it.
	tx *sql.Tx
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Open connects to databaseURL, migrates the schema up (unless
// opts.SkipMigrations) and returns the store. A URL starting with
// postgres:// or postgresql:// selects PostgreSQL; sqlite://path,
// file:path and a plain path select a SQLite file, whose directory is
// created when missing.
func Open(ctx context.Context, databaseURL string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	ds, err := parseDatabaseURL(databaseURL, opts.StatementTimeout)
	if err != nil {
		return nil, err
	}
	s := &Store{d: ds.d, log: opts.Logger.With("component", "store", "dialect", ds.d.name), now: opts.Now}
	switch ds.d {
	case sqliteDialect:
		err = s.openSQLite(ctx, ds)
	default:
		err = s.openPostgres(ctx, ds, opts)
	}
	if err != nil {
		return nil, err
	}
	if !opts.SkipMigrations {
		if err := s.migrate(ctx, ds); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) openSQLite(ctx context.Context, ds dataSource) error {
	if dir := filepath.Dir(ds.dsn); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("sqlstore: create directory for SQLite database: %w", err)
		}
	}
	w, err := sql.Open(ds.d.driver, ds.sqliteDSN(true))
	if err != nil {
		return fmt.Errorf("sqlstore: open SQLite %s: %w", ds.dsn, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// The first connection switches the file to WAL before any reader
	// opens it.
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return fmt.Errorf("sqlstore: open SQLite %s: %w", ds.dsn, err)
	}
	r, err := sql.Open(ds.d.driver, ds.sqliteDSN(false))
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("sqlstore: open SQLite %s: %w", ds.dsn, err)
	}
	n := min(max(runtime.GOMAXPROCS(0), 2), 8)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return fmt.Errorf("sqlstore: open SQLite %s: %w", ds.dsn, err)
	}
	s.read, s.write = r, w
	return nil
}

func (s *Store) openPostgres(ctx context.Context, ds dataSource, opts Options) error {
	db, err := sql.Open(ds.d.driver, ds.dsn)
	if err != nil {
		return fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	db.SetMaxOpenConns(opts.MaxOpenConns)
	db.SetMaxIdleConns(max(2, opts.MaxOpenConns/2))
	// Recycle connections so a failover or a pgbouncer restart does not
	// leave the pool pinned to dead or stale servers.
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return fmt.Errorf("sqlstore: connect to postgres: %w", err)
	}
	s.read, s.write = db, db
	return nil
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// DB is the read pool, for tools (backups, diagnostics) that need raw
// access. On SQLite its connections are read-only.
func (s *Store) DB() *sql.DB { return s.read }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.tx != nil {
		if _, err := s.tx.ExecContext(ctx, "SELECT 1"); err != nil {
			return fmt.Errorf("sqlstore: ping: %w", err)
		}
		return nil
	}
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", err)
	}
	if s.write != s.read {
		if err := s.write.PingContext(ctx); err != nil {
			return fmt.Errorf("sqlstore: ping writer: %w", err)
		}
	}
	return nil
}

// Close closes the pools. Closing the view InTx hands out is an error.
func (s *Store) Close() error {
	if s.tx != nil {
		return errors.New("sqlstore: Close called on a transaction")
	}
	err := s.read.Close()
	if s.write != s.read {
		err = errors.Join(err, s.write.Close())
	}
	return err
}

// InTx runs fn in one transaction; fn must use the store it is given (on
// SQLite the outer store's writer is busy with the transaction and would
// wait for it for ever). Nested InTx calls join the outer transaction. fn
// returning an error, or panicking, rolls back. On PostgreSQL a failed
// statement (a conflict, say) aborts the whole transaction, so fn should
// return such errors rather than carry on.
func (s *Store) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	return s.inTx(ctx, func(tx *Store) error { return fn(tx) })
}

func (s *Store) inTx(ctx context.Context, fn func(tx *Store) error) (err error) {
	if s.tx != nil {
		return fn(s)
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	committed := false
	defer func() {
		// Also runs when fn panics; the panic continues after the rollback.
		if !committed {
			_ = tx.Rollback()
		}
	}()
	view := *s
	view.tx = tx
	if err := fn(&view); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", wrapErr(err))
	}
	committed = true
	return nil
}

// reader runs reads: the transaction when there is one, else the read pool.
func (s *Store) reader() querier {
	if s.tx != nil {
		return s.tx
	}
	return s.read
}

// writer runs single-statement writes: the transaction when there is one,
// else the write pool.
func (s *Store) writer() querier {
	if s.tx != nil {
		return s.tx
	}
	return s.write
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.d.rebind(query), args...)
}

func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, s.d.rebind(query), args...)
}

func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, s.d.rebind(query), args...)
}

// nowMicro is the store clock, at the precision the database keeps.
func (s *Store) nowMicro() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// wrapErr puts the store sentinel matching a driver error in front of it,
// so callers can errors.Is for it and logs still show the driver's words.
func wrapErr(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if sentinel := classify(err); sentinel != nil {
		return fmt.Errorf("%w: %w", sentinel, err)
	}
	return err
}

// fail formats an operation's error: "sqlstore: <op>: <cause>".
func fail(op string, err error) error {
	return fmt.Errorf("sqlstore: %s: %w", op, wrapErr(err))
}

// mustAffect turns "no row matched" into ErrNotFound.
func mustAffect(op string, res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fail(op, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: %s: %w", op, store.ErrNotFound)
	}
	return nil
}

// toMicro stores t; the zero time is 0 so "unset" reads back as unset.
func toMicro(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicro(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// closeRows closes rows and keeps the first error.
func closeRows(rows *sql.Rows, err *error) {
	if cerr := rows.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}
