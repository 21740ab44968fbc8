package sqlstore

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// dialect is everything that differs between SQLite and PostgreSQL. The
// queries themselves are written once, with ? placeholders, in the portable
// subset both databases accept (ON CONFLICT, RETURNING).
type dialect struct {
	name   string // "sqlite" or "postgres", as Store.Dialect reports it
	driver string // database/sql driver name

	// numbered placeholders: ? is rewritten to $1, $2, ...
	numbered bool
	// forUpdate is appended to a SELECT that reads a row the transaction
	// will write. SQLite needs none: its transactions begin IMMEDIATE and
	// hold the database's only write lock.
	forUpdate string
	// byteOrder follows ORDER BY on text so both databases sort by bytes,
	// whatever collation the PostgreSQL database was created with.
	byteOrder string
	// tableExists is a query with one ? (the table name) returning a count.
	tableExists string
}

var (
	sqliteDialect = &dialect{
		name:        "sqlite",
		driver:      "sqlite",
		tableExists: "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
	}
	postgresDialect = &dialect{
		name:        "postgres",
		driver:      "pgx",
		numbered:    true,
		forUpdate:   " FOR UPDATE",
		byteOrder:   ` COLLATE "C"`,
		tableExists: "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?",
	}
)

// rebind rewrites the ? placeholders of q into the dialect's form. A ? inside
// a quoted string or identifier is left alone.
func (d *dialect) rebind(q string) string {
	if !d.numbered || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte // the quote character we are inside, or 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			// A doubled quote ('') closes and immediately reopens, which
			// this handles without special casing.
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// classify turns a driver error into the store's sentinels, keeping the
// driver error in the chain for logs: unique violations are ErrConflict and
// foreign-key violations (a reference to a missing user or group) are
// ErrNotFound. Any other error is returned as it is.
func classify(err error) (sentinel error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return store.ErrConflict
		case "23503": // foreign_key_violation
			return store.ErrNotFound
		}
		return nil
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		switch sqErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return store.ErrConflict
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return store.ErrNotFound
		}
	}
	return nil
}

// keywordDSN matches the start of a libpq keyword/value connection string.
var keywordDSN = regexp.MustCompile(`^\s*(host|hostaddr|dbname|user|port|sslmode|password)\s*=`)

// dataSource is a parsed database URL.
type dataSource struct {
	d *dialect
	// dsn is what sql.Open gets: the PostgreSQL URL with our runtime
	// parameters, or the SQLite file path.
	dsn string
	// params are the SQLite driver parameters the user put on the URL.
	params url.Values
}

// parseDatabaseURL picks the dialect: postgres:// and postgresql:// are
// PostgreSQL; sqlite://path, file:path and a bare path are SQLite files.
func parseDatabaseURL(raw string, statementTimeout time.Duration) (dataSource, error) {
	if raw == "" {
		return dataSource{}, errors.New("sqlstore: empty database URL")
	}
	if strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://") {
		u, err := url.Parse(raw)
		if err != nil {
			return dataSource{}, fmt.Errorf("sqlstore: parse postgres URL: %w", redactURLError(err))
		}
		q := u.Query()
		// pgx sends unknown URL parameters as runtime parameters in the
		// startup message, so every pooled connection gets the timeout
		// without a round trip. An explicit value in the URL wins.
		if q.Get("statement_timeout") == "" {
			q.Set("statement_timeout", strconv.FormatInt(statementTimeout.Milliseconds(), 10))
		}
		if q.Get("application_name") == "" {
			q.Set("application_name", "gatehouse")
		}
		u.RawQuery = q.Encode()
		return dataSource{d: postgresDialect, dsn: u.String()}, nil
	}

	if scheme, _, ok := strings.Cut(raw, "://"); ok && scheme != "sqlite" && !strings.ContainsAny(scheme, `/\`) {
		return dataSource{}, fmt.Errorf("sqlstore: unsupported database URL scheme %q (want postgres://, postgresql://, sqlite:// or a file path)", scheme)
	}
	if keywordDSN.MatchString(raw) {
		// "host=db dbname=gatehouse" would otherwise become a SQLite file
		// of that name.
		return dataSource{}, errors.New("sqlstore: keyword/value connection strings are not supported; use a postgres:// URL")
	}
	path := raw
	switch {
	case strings.HasPrefix(path, "sqlite://"):
		path = strings.TrimPrefix(path, "sqlite://")
	case strings.HasPrefix(path, "sqlite:"):
		path = strings.TrimPrefix(path, "sqlite:")
	case strings.HasPrefix(path, "file:"):
		path = strings.TrimPrefix(path, "file:")
	}
	var params url.Values
	if i := strings.IndexByte(path, '?'); i >= 0 {
		var err error
		if params, err = url.ParseQuery(path[i+1:]); err != nil {
			return dataSource{}, fmt.Errorf("sqlstore: parse SQLite parameters in %q: %w", raw, err)
		}
		path = path[:i]
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, ":memory:") || params.Get("mode") == "memory" {
		// The reader pool and the writer are separate connections; each
		// would get its own empty in-memory database.
		return dataSource{}, fmt.Errorf("sqlstore: %q: SQLite needs a file path (in-memory databases are not supported)", raw)
	}
	return dataSource{d: sqliteDialect, dsn: path, params: params}, nil
}

// sqliteDSN builds the modernc.org/sqlite DSN for one of the two pools.
func (ds dataSource) sqliteDSN(writer bool) string {
	q := url.Values{}
	for k, v := range ds.params {
		q[k] = v
	}
	// Set before the other pragmas by the driver, so nothing below fails
	// with SQLITE_BUSY while another process holds the lock.
	q.Set("_busy_timeout", strconv.Itoa(int(sqliteBusyTimeout/time.Millisecond)))
	q.Set("_foreign_keys", "1")
	if writer {
		q.Set("_journal_mode", "WAL")
		// NORMAL is durable against crashes of the process in WAL mode;
		// only a power loss can drop the last commits.
		q.Set("_synchronous", "NORMAL")
		// Take the write lock at BEGIN: a deferred transaction that reads
		// and then writes fails with SQLITE_BUSY (no busy-wait) when a
		// second process wrote in between.
		q.Set("_txlock", "immediate")
	} else {
		// The reader pool must never write: every write goes through the
		// single writer connection.
		q.Set("_query_only", "1")
	}
	return ds.dsn + "?" + q.Encode()
}

// redactURLError drops the URL (which may hold a password) from a url.Parse
// error.
func redactURLError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}
