package backup

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The schema is read from the database catalogue, not from a list in this
// package, so tables added by later migrations are backed up without
// anyone remembering to register them.

const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"
	// migrationsTable belongs to the destination's own migrations and is
	// never exported or overwritten.
	migrationsTable = "schema_migrations"
)

// tableInfo is one application table as the catalogue describes it.
type tableInfo struct {
	name       string
	columns    []columnInfo // insertable columns, in declaration order
	primaryKey []string
	fks        []foreignKey
}

type columnInfo struct {
	name     string
	declType string // as declared (SQLite) or format_type (PostgreSQL)
	notNull  bool
	// hasDefault: an INSERT may leave the column out (a DEFAULT, an
	// identity, a serial or SQLite's INTEGER PRIMARY KEY rowid alias).
	hasDefault bool
	// serial: PostgreSQL fills the column from a sequence, which must be
	// moved past the restored values.
	serial bool
	// identityAlways: GENERATED ALWAYS AS IDENTITY, which refuses explicit
	// values without OVERRIDING SYSTEM VALUE.
	identityAlways bool
}

type foreignKey struct {
	parent   string
	from, to []string // child and parent columns, pairwise
}

func (t *tableInfo) column(name string) (columnInfo, bool) {
	for _, c := range t.columns {
		if c.name == name {
			return c, true
		}
	}
	return columnInfo{}, false
}

// introspect lists the application tables visible to q (a transaction),
// without schema_migrations, in foreign-key order: every table after the
// tables it references.
func introspect(ctx context.Context, q *sql.Tx, dialect string) ([]*tableInfo, error) {
	var (
		tables []*tableInfo
		err    error
	)
	switch dialect {
	case dialectSQLite:
		tables, err = introspectSQLite(ctx, q)
	case dialectPostgres:
		tables, err = introspectPostgres(ctx, q)
	default:
		return nil, fmt.Errorf("backup: unsupported database dialect %q", dialect)
	}
	if err != nil {
		return nil, fmt.Errorf("backup: read the database schema: %w", err)
	}
	return fkOrder(tables), nil
}

func introspectSQLite(ctx context.Context, q *sql.Tx) ([]*tableInfo, error) {
	// pragma_table_list reports virtual tables and their shadow tables
	// with other types: their content belongs to a module that rebuilds
	// it, so only ordinary tables are exported.
	names, err := queryStrings(ctx, q, `SELECT name FROM pragma_table_list
		WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	var tables []*tableInfo
	for _, name := range names {
		if name == migrationsTable {
			continue
		}
		t := &tableInfo{name: name}
		if err := sqliteColumns(ctx, q, t); err != nil {
			return nil, err
		}
		if err := sqliteForeignKeys(ctx, q, t); err != nil {
			return nil, err
		}
		tables = append(tables, t)
	}
	return tables, nil
}

func sqliteColumns(ctx context.Context, q *sql.Tx, t *tableInfo) (err error) {
	rows, err := q.QueryContext(ctx, `SELECT name, type, "notnull", dflt_value IS NOT NULL, pk, hidden
		FROM pragma_table_xinfo(?) ORDER BY cid`, t.name)
	if err != nil {
		return err
	}
	defer closeRows(rows, &err)
	type pkCol struct {
		pos  int
		name string
	}
	var pk []pkCol
	for rows.Next() {
		var (
			c        columnInfo
			hasDflt  bool
			pos, hid int
		)
		if err := rows.Scan(&c.name, &c.declType, &c.notNull, &hasDflt, &pos, &hid); err != nil {
			return err
		}
		if hid != 0 {
			// Generated (2, 3) or hidden virtual-table (1) columns cannot
			// be inserted; the database recomputes them.
			continue
		}
		c.hasDefault = hasDflt
		if pos > 0 {
			pk = append(pk, pkCol{pos, c.name})
		}
		t.columns = append(t.columns, c)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	slices.SortFunc(pk, func(a, b pkCol) int { return a.pos - b.pos })
	for _, p := range pk {
		t.primaryKey = append(t.primaryKey, p.name)
	}
	if len(pk) == 1 {
		// An INTEGER PRIMARY KEY is the rowid: SQLite assigns it when the
		// INSERT leaves it out.
		for i := range t.columns {
			if t.columns[i].name == pk[0].name && strings.EqualFold(t.columns[i].declType, "INTEGER") {
				t.columns[i].hasDefault = true
			}
		}
	}
	return nil
}

func sqliteForeignKeys(ctx context.Context, q *sql.Tx, t *tableInfo) (err error) {
	rows, err := q.QueryContext(ctx, `SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq`, t.name)
	if err != nil {
		return err
	}
	defer closeRows(rows, &err)
	byID := map[int]*foreignKey{}
	var ids []int
	for rows.Next() {
		var (
			id       int
			parent   string
			from, to sql.NullString
		)
		if err := rows.Scan(&id, &parent, &from, &to); err != nil {
			return err
		}
		fk := byID[id]
		if fk == nil {
			fk = &foreignKey{parent: parent}
			byID[id] = fk
			ids = append(ids, id)
		}
		// "to" is NULL when the reference names only the parent table,
		// meaning its primary key; ordering needs only the parent.
		fk.from = append(fk.from, from.String)
		fk.to = append(fk.to, to.String)
	}
	for _, id := range ids {
		t.fks = append(t.fks, *byID[id])
	}
	return rows.Err()
}

func introspectPostgres(ctx context.Context, q *sql.Tx) ([]*tableInfo, error) {
	// pg_catalog rather than information_schema: the latter hides objects
	// the role does not own or hold privileges on, and lacks identity and
	// generated-column details in a portable shape. Only the current
	// schema (the first on search_path, where the migrations created the
	// tables) is exported. Partitions are reached through their parent.
	names, err := queryStrings(ctx, q, `SELECT c.relname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		ORDER BY c.relname`)
	if err != nil {
		return nil, err
	}
	byName := map[string]*tableInfo{}
	var tables []*tableInfo
	for _, name := range names {
		if name == migrationsTable {
			continue
		}
		t := &tableInfo{name: name}
		byName[name] = t
		tables = append(tables, t)
	}

	rows, err := q.QueryContext(ctx, `SELECT c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
			a.attnotnull, a.atthasdef, a.attidentity::text, a.attgenerated::text,
			COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
		FROM pg_catalog.pg_attribute a
		JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY c.relname, a.attnum`)
	if err != nil {
		return nil, err
	}
	err = eachRow(rows, func() error {
		var (
			table, identity, generated, dflt string
			c                                columnInfo
			hasDef                           bool
		)
		if err := rows.Scan(&table, &c.name, &c.declType, &c.notNull, &hasDef, &identity, &generated, &dflt); err != nil {
			return err
		}
		t := byName[table]
		if t == nil || generated != "" {
			// Generated columns are computed by the database, never
			// inserted.
			return nil
		}
		c.serial = identity != "" || strings.HasPrefix(dflt, "nextval(")
		c.identityAlways = identity == "a"
		c.hasDefault = hasDef || identity != ""
		t.columns = append(t.columns, c)
		return nil
	})
	if err != nil {
		return nil, err
	}

	rows, err = q.QueryContext(ctx, `SELECT c.relname, a.attname
		FROM pg_catalog.pg_index i
		JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
		JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
		WHERE i.indisprimary AND n.nspname = current_schema()
		ORDER BY c.relname, k.ord`)
	if err != nil {
		return nil, err
	}
	err = eachRow(rows, func() error {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			return err
		}
		if t := byName[table]; t != nil {
			t.primaryKey = append(t.primaryKey, col)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	rows, err = q.QueryContext(ctx, `SELECT k.conname, c.relname, p.relname, ca.attname, pa.attname
		FROM pg_catalog.pg_constraint k
		JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_catalog.pg_class p ON p.oid = k.confrelid
		JOIN LATERAL unnest(k.conkey, k.confkey) WITH ORDINALITY AS u(src, dst, ord) ON true
		JOIN pg_catalog.pg_attribute ca ON ca.attrelid = k.conrelid AND ca.attnum = u.src
		JOIN pg_catalog.pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = u.dst
		WHERE k.contype = 'f' AND n.nspname = current_schema()
		ORDER BY c.relname, k.conname, u.ord`)
	if err != nil {
		return nil, err
	}
	type fkKey struct{ table, name string }
	fks := map[fkKey]*foreignKey{}
	var order []fkKey
	err = eachRow(rows, func() error {
		var name, table, parent, from, to string
		if err := rows.Scan(&name, &table, &parent, &from, &to); err != nil {
			return err
		}
		k := fkKey{table, name}
		fk := fks[k]
		if fk == nil {
			fk = &foreignKey{parent: parent}
			fks[k] = fk
			order = append(order, k)
		}
		fk.from = append(fk.from, from)
		fk.to = append(fk.to, to)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, k := range order {
		if t := byName[k.table]; t != nil {
			t.fks = append(t.fks, *fks[k])
		}
	}
	return tables, nil
}

// fkOrder sorts tables so that every table comes after the tables its
// foreign keys reference (Kahn's algorithm, ties by name so the order is
// stable). Self-references are ignored; tables caught in a reference cycle
// go last in name order: SQLite checks foreign keys at commit during a
// restore, and PostgreSQL reports the violation, which rolls back.
func fkOrder(tables []*tableInfo) []*tableInfo {
	byName := map[string]*tableInfo{}
	for _, t := range tables {
		byName[t.name] = t
	}
	indegree := map[string]int{}
	children := map[string][]string{}
	for _, t := range tables {
		seen := map[string]bool{}
		for _, fk := range t.fks {
			if fk.parent == t.name || byName[fk.parent] == nil || seen[fk.parent] {
				continue
			}
			seen[fk.parent] = true
			indegree[t.name]++
			children[fk.parent] = append(children[fk.parent], t.name)
		}
	}
	var ready []string
	for _, t := range tables {
		if indegree[t.name] == 0 {
			ready = append(ready, t.name)
		}
	}
	slices.Sort(ready)
	out := make([]*tableInfo, 0, len(tables))
	done := map[string]bool{}
	for len(ready) > 0 {
		n := ready[0]
		ready = ready[1:]
		out = append(out, byName[n])
		done[n] = true
		var next []string
		for _, c := range children[n] {
			indegree[c]--
			if indegree[c] == 0 {
				next = append(next, c)
			}
		}
		ready = append(ready, next...)
		slices.Sort(ready)
	}
	var rest []*tableInfo
	for _, t := range tables {
		if !done[t.name] {
			rest = append(rest, t)
		}
	}
	slices.SortFunc(rest, func(a, b *tableInfo) int { return cmp.Compare(a.name, b.name) })
	return append(out, rest...)
}

// schemaVersion is the newest migration recorded in the database.
func schemaVersion(ctx context.Context, q *sql.Tx, dialect string) (int, error) {
	var exists int
	query := "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
	if dialect == dialectPostgres {
		query = "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'"
	}
	if err := q.QueryRowContext(ctx, query).Scan(&exists); err != nil {
		return 0, fmt.Errorf("backup: read schema version: %w", err)
	}
	if exists == 0 {
		return 0, fmt.Errorf("backup: the database has no schema_migrations table: it was never migrated (is the database URL right?)")
	}
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, fmt.Errorf("backup: read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// quoteIdent double-quotes an identifier for both dialects.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func quoteIdents(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quoteIdent(n)
	}
	return strings.Join(q, ", ")
}

// placeholder is the n-th (1-based) bind parameter of the dialect.
func placeholder(dialect string, n int) string {
	if dialect == dialectPostgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

func queryStrings(ctx context.Context, q *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []string
	err = eachRow(rows, func() error {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// eachRow calls fn for every row and closes rows.
func eachRow(rows *sql.Rows, fn func() error) (err error) {
	defer closeRows(rows, &err)
	for rows.Next() {
		if err := fn(); err != nil {
			return err
		}
	}
	return rows.Err()
}

func closeRows(rows *sql.Rows, err *error) {
	if cerr := rows.Close(); cerr != nil && *err == nil {
		*err = cerr
	}
}
