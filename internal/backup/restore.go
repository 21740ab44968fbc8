package backup

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Restore loads the backup read from r into dst.
//
// It first reads the whole backup and checks it (Verify), and that its
// schema version is not newer than this binary's migrations. Then, in one
// transaction of dst: it checks that dst's schema has every table and
// column of the backup, refuses (ErrNotEmpty) a destination holding any
// row unless opts.Force, deletes every row when forced, inserts every row
// of the backup (reading it a second time, checksum included) and moves
// PostgreSQL sequences past the restored ids. Any error rolls back: the
// destination is then exactly as it was.
//
// dst must already be migrated (sqlstore.Open does it). Rows go into the
// destination's current schema, so a backup taken at schema version N
// restores into a binary at version N or later: columns added since then
// take their defaults. Restore is meant for a stopped server; on SQLite the
// transaction excludes other writers, on PostgreSQL it locks every table.
//
// An r that cannot seek (a pipe) is copied to a temporary file in
// opts.TempDir first, since Restore reads it twice.
func Restore(ctx context.Context, dst Destination, r io.Reader, opts RestoreOptions) (*Manifest, error) {
	rs, cleanup, err := rewindable(r, opts.TempDir)
	if err != nil {
		return nil, err
	}
	defer cleanup()

	kc := &keyCache{}
	m, hdr, err := readBackup(rs, opts.Passphrase, kc, nil)
	if err != nil {
		return nil, err
	}
	latest, err := dst.LatestSchemaVersion()
	if err != nil {
		return nil, err
	}
	if hdr.SchemaVersion > latest {
		return nil, fmt.Errorf("%w: the backup has schema version %d, this binary's newest migration is %d: restore it with the gatehouse release that took it, or a later one",
			ErrUnsupported, hdr.SchemaVersion, latest)
	}

	dialect := dst.Dialect()
	err = dst.RestoreTx(ctx, func(tx *sql.Tx) error {
		dv, err := schemaVersion(ctx, tx, dialect)
		if err != nil {
			return err
		}
		if dv < hdr.SchemaVersion {
			return fmt.Errorf("%w: the destination schema is at version %d, older than the backup's %d: run `gatehouse migrate` first",
				ErrIncompatible, dv, hdr.SchemaVersion)
		}
		tables, err := introspect(ctx, tx, dialect)
		if err != nil {
			return err
		}
		ins, err := planInserts(ctx, tx, dialect, hdr, tables)
		if err != nil {
			return err
		}
		if dialect == dialectPostgres && len(tables) > 0 {
			// Nothing else may read a half-restored state or write in
			// between (a server left running, a second restore).
			names := make([]string, len(tables))
			for i, t := range tables {
				names[i] = quoteIdent(t.name)
			}
			if _, err := tx.ExecContext(ctx, "LOCK TABLE "+strings.Join(names, ", ")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
				return fmt.Errorf("backup: lock the destination tables: %w", err)
			}
		}
		occupied, err := countRows(ctx, tx, tables)
		if err != nil {
			return err
		}
		if len(occupied) > 0 {
			if !opts.Force {
				return fmt.Errorf("%w: it holds %s; restoring would mix two states: use --force to replace everything in it",
					ErrNotEmpty, strings.Join(occupied, ", "))
			}
			// Children before parents, so no ON DELETE action has work
			// left to do when its parent goes.
			for _, t := range slices.Backward(tables) {
				if _, err := tx.ExecContext(ctx, "DELETE FROM "+quoteIdent(t.name)); err != nil {
					return fmt.Errorf("backup: empty table %s: %w", t.name, err)
				}
			}
		}
		if err := rewind(rs); err != nil {
			return err
		}
		m2, _, err := readBackup(rs, opts.Passphrase, kc, ins)
		if err != nil {
			return err
		}
		if m2.SHA256 != m.SHA256 {
			return fmt.Errorf("%w: the file changed while it was being restored", ErrCorrupt)
		}
		if err := ins.flush(); err != nil {
			return err
		}
		ins.close()
		if dialect == dialectPostgres {
			return resetSequences(ctx, tx, tables)
		}
		// SQLite checks foreign keys only at COMMIT here, where it can
		// say no more than "constraint failed"; name the rows instead.
		return foreignKeyCheck(ctx, tx)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// planInserts matches the backup's tables to the destination's and
// prepares their INSERTs. A backup table or column the destination lacks
// is an error (its data would be lost); a destination column the backup
// lacks (added by a later migration) must have a default or allow NULL.
func planInserts(ctx context.Context, tx *sql.Tx, dialect string, hdr *Header, tables []*tableInfo) (*inserter, error) {
	byName := map[string]*tableInfo{}
	for _, t := range tables {
		byName[t.name] = t
	}
	ins := &inserter{ctx: ctx, tx: tx, dialect: dialect, plans: map[string]*insertPlan{}}
	for _, ht := range hdr.Tables {
		t := byName[ht.Name]
		if t == nil {
			return nil, fmt.Errorf("%w: table %s is not in the destination schema", ErrIncompatible, ht.Name)
		}
		p := &insertPlan{table: ht.Name}
		have := map[string]bool{}
		for _, hc := range ht.Columns {
			c, ok := t.column(hc.Name)
			if !ok {
				return nil, fmt.Errorf("%w: column %s.%s is not in the destination schema", ErrIncompatible, ht.Name, hc.Name)
			}
			have[hc.Name] = true
			p.columns = append(p.columns, hc.Name)
			p.classes = append(p.classes, classOf(c.declType))
			p.overriding = p.overriding || c.identityAlways
		}
		for _, c := range t.columns {
			if !have[c.name] && c.notNull && !c.hasDefault {
				return nil, fmt.Errorf("%w: column %s.%s is required (NOT NULL, no default) but the backup has no values for it",
					ErrIncompatible, t.name, c.name)
			}
		}
		// SQLite allows 32766 bound parameters and PostgreSQL 65535; a
		// hundred rows per statement is most of the gain over one.
		p.batch = max(1, min(100, 30000/len(p.columns)))
		ins.plans[ht.Name] = p
	}
	return ins, nil
}

// countRows describes the destination tables that hold rows.
func countRows(ctx context.Context, tx *sql.Tx, tables []*tableInfo) ([]string, error) {
	var occupied []string
	for _, t := range tables {
		var n int64
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(t.name)).Scan(&n); err != nil {
			return nil, fmt.Errorf("backup: count rows of %s: %w", t.name, err)
		}
		if n > 0 {
			unit := "rows"
			if n == 1 {
				unit = "row"
			}
			occupied = append(occupied, fmt.Sprintf("%s: %d %s", t.name, n, unit))
		}
	}
	return occupied, nil
}

// resetSequences moves every sequence that feeds a column past the
// largest restored value, so new rows do not collide with restored ones.
// (SQLite needs nothing: a rowid or AUTOINCREMENT counter follows the
// largest key present.)
func resetSequences(ctx context.Context, tx *sql.Tx, tables []*tableInfo) error {
	for _, t := range tables {
		for _, c := range t.columns {
			if !c.serial {
				continue
			}
			// pg_get_serial_sequence is NULL for a default drawn from a
			// sequence the column does not own; setval(NULL) is a no-op.
			q := fmt.Sprintf("SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT max(%s) FROM %s), 0) + 1, false)",
				quoteIdent(c.name), quoteIdent(t.name))
			var v sql.NullInt64
			if err := tx.QueryRowContext(ctx, q, quoteIdent(t.name), c.name).Scan(&v); err != nil {
				return fmt.Errorf("backup: reset the sequence of %s.%s: %w", t.name, c.name, err)
			}
		}
	}
	return nil
}

// foreignKeyCheck reports rows of a SQLite database that reference
// missing rows.
func foreignKeyCheck(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT "table", rowid, parent FROM pragma_foreign_key_check LIMIT 5`)
	if err != nil {
		return fmt.Errorf("backup: check foreign keys: %w", err)
	}
	var bad []string
	err = eachRow(rows, func() error {
		var table, parent string
		var rowid sql.NullInt64
		if err := rows.Scan(&table, &rowid, &parent); err != nil {
			return err
		}
		bad = append(bad, fmt.Sprintf("a row of %s (rowid %d) references a missing row of %s", table, rowid.Int64, parent))
		return nil
	})
	if err != nil {
		return fmt.Errorf("backup: check foreign keys: %w", err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("backup: the backup's rows are inconsistent: %s", strings.Join(bad, "; "))
	}
	return nil
}

// insertPlan is how one backup table goes into the destination.
type insertPlan struct {
	table      string
	columns    []string
	classes    []typeClass
	overriding bool
	batch      int
	rows       int64
}

// inserter is the sink of Restore's second pass: it converts values to the
// destination's types and inserts them in multi-row batches.
type inserter struct {
	ctx     context.Context
	tx      *sql.Tx
	dialect string
	plans   map[string]*insertPlan
	cur     *insertPlan
	stmt    *sql.Stmt // for a full batch of cur
	args    []any
	pending int
}

func (in *inserter) begin(t *Table) error {
	if err := in.flush(); err != nil {
		return err
	}
	in.close()
	in.cur = in.plans[t.Name]
	if in.cur == nil {
		return fmt.Errorf("backup: no plan for table %s", t.Name)
	}
	return nil
}

func (in *inserter) row(vals []any) error {
	p := in.cur
	for i, v := range vals {
		cv, err := convert(v, p.classes[i])
		if err != nil {
			return fmt.Errorf("backup: table %s, column %s: %w", p.table, p.columns[i], err)
		}
		in.args = append(in.args, cv)
	}
	in.pending++
	if in.pending < p.batch {
		return nil
	}
	if in.stmt == nil {
		stmt, err := in.tx.PrepareContext(in.ctx, in.statement(p.batch))
		if err != nil {
			return fmt.Errorf("backup: restore table %s: %w", p.table, err)
		}
		in.stmt = stmt
	}
	if _, err := in.stmt.ExecContext(in.ctx, in.args...); err != nil {
		return fmt.Errorf("backup: restore table %s (rows %d-%d): %w", p.table, p.rows+1, p.rows+int64(in.pending), err)
	}
	p.rows += int64(in.pending)
	in.args, in.pending = in.args[:0], 0
	return nil
}

// flush inserts a partial batch.
func (in *inserter) flush() error {
	if in.pending == 0 {
		return nil
	}
	p := in.cur
	if _, err := in.tx.ExecContext(in.ctx, in.statement(in.pending), in.args...); err != nil {
		return fmt.Errorf("backup: restore table %s (rows %d-%d): %w", p.table, p.rows+1, p.rows+int64(in.pending), err)
	}
	p.rows += int64(in.pending)
	in.args, in.pending = in.args[:0], 0
	return nil
}

func (in *inserter) close() {
	if in.stmt != nil {
		_ = in.stmt.Close()
		in.stmt = nil
	}
}

// statement is the INSERT of n rows into the current table.
func (in *inserter) statement(n int) string {
	p := in.cur
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(quoteIdent(p.table))
	b.WriteString(" (")
	b.WriteString(quoteIdents(p.columns))
	b.WriteString(")")
	if p.overriding {
		b.WriteString(" OVERRIDING SYSTEM VALUE")
	}
	b.WriteString(" VALUES ")
	k := 0
	for r := range n {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range p.columns {
			if c > 0 {
				b.WriteString(", ")
			}
			k++
			b.WriteString(placeholder(in.dialect, k))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// rewindable returns r as something Restore can read twice, and a cleanup
// function. A seekable r (a file) is rewound to where it started; anything
// else is copied to a temporary file first.
func rewindable(r io.Reader, dir string) (io.ReadSeeker, func(), error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		// os.Stdin is an *os.File even when it is a pipe: trust Seek only
		// if it works.
		if start, err := rs.Seek(0, io.SeekCurrent); err == nil {
			return &offsetReader{rs: rs, start: start}, func() {}, nil
		}
	}
	f, err := os.CreateTemp(dir, "gatehouse-restore-*.tmp")
	if err != nil {
		return nil, nil, fmt.Errorf("backup: spool the input: %w", err)
	}
	cleanup := func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	if _, err := io.Copy(f, r); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("backup: spool the input: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("backup: spool the input: %w", err)
	}
	return f, cleanup, nil
}

// offsetReader rewinds to the position the caller's reader started at.
type offsetReader struct {
	rs    io.ReadSeeker
	start int64
}

func (o *offsetReader) Read(p []byte) (int, error) { return o.rs.Read(p) }

func (o *offsetReader) Seek(offset int64, whence int) (int64, error) {
	if whence == io.SeekStart {
		offset += o.start
	}
	n, err := o.rs.Seek(offset, whence)
	return n - o.start, err
}

func rewind(rs io.ReadSeeker) error {
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("backup: rewind the input: %w", err)
	}
	return nil
}
