package backup

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse-sso/gatehouse/internal/testenv"
)

// cheapKDF keeps argon2id fast in tests that derive many keys.
var cheapKDF = &kdfParams{Name: kdfName, Time: 1, MemoryKiB: 64, Threads: 1}

var ctxBG = context.Background()

// backend opens fresh, migrated databases of one dialect.
type backend struct {
	name string
	open func(t *testing.T) *sqlstore.Store
}

var (
	sqliteBackend   = backend{"sqlite", openSQLite}
	postgresBackend = backend{"postgres", openPostgres}
)

func openSQLite(t *testing.T) *sqlstore.Store {
	t.Helper()
	return openURL(t, filepath.Join(t.TempDir(), "gatehouse.db"))
}

func openPostgres(t *testing.T) *sqlstore.Store {
	t.Helper()
	return openURL(t, testenv.PostgresDB(t))
}

func openURL(t *testing.T, url string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(ctxBG, url, sqlstore.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// base is the fixture clock, at the microsecond precision the store keeps.
var base = time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.UTC)

// createProbe adds a table no migration has, with the types the
// migrations do not use yet (bytes, floats, a serial key, a real boolean
// on PostgreSQL, NULLs), to show that tables are discovered, not listed.
func createProbe(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	ddl := `CREATE TABLE zz_probe (
		id      INTEGER PRIMARY KEY AUTOINCREMENT,
		user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
		payload BLOB,
		ratio   REAL,
		flag    INTEGER NOT NULL DEFAULT 0 CHECK (flag IN (0, 1)),
		note    TEXT
	) STRICT`
	if s.Dialect() == dialectPostgres {
		ddl = `CREATE TABLE zz_probe (
			id      BIGSERIAL PRIMARY KEY,
			user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
			payload BYTEA,
			ratio   DOUBLE PRECISION,
			flag    BOOLEAN NOT NULL DEFAULT FALSE,
			note    TEXT
		)`
	}
	exec(t, s, ddl)
}

// exec runs statements in one write transaction.
func exec(t *testing.T, s *sqlstore.Store, stmts ...string) {
	t.Helper()
	err := s.RestoreTx(ctxBG, func(tx *sql.Tx) error {
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctxBG, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fill puts rows into every table of s: the core tables through the
// store's own methods, the probe table explicitly, and every other table
// (those of later migrations included) generically.
func fill(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	ctx := ctxBG
	users := []model.User{
		{ID: "u-alice", Username: "alice", Email: "alice@example.com", DisplayName: "Alice \"Al\" Liddell", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", CreatedAt: base, UpdatedAt: base},
		{ID: "u-bob", Username: "Bob", Email: "bob@example.com", DisplayName: "Bøb 🚀\nsecond line\ttab \\ back", Disabled: true, CreatedAt: base.Add(time.Second), UpdatedAt: base.Add(time.Minute)},
		{ID: "u-carol", Username: "carol", DisplayName: "", CreatedAt: base.Add(2 * time.Second), UpdatedAt: base.Add(2 * time.Second)},
		{ID: "u-dave", Username: "dave", Email: "dave@example.com", DisplayName: "<script>&amp;", CreatedAt: base, UpdatedAt: base},
		{ID: "u-erin", Username: "erin", CreatedAt: base, UpdatedAt: base},
	}
	for _, u := range users {
		mustDo(t, s.CreateUser(ctx, u))
	}
	for i, name := range []string{"admins", "media", "family"} {
		mustDo(t, s.CreateGroup(ctx, model.Group{ID: "g-" + name, Name: name, Description: "the " + name, CreatedAt: base.Add(time.Duration(i) * time.Hour)}))
	}
	for _, m := range [][2]string{{"g-admins", "u-alice"}, {"g-media", "u-alice"}, {"g-media", "u-bob"}, {"g-family", "u-carol"}} {
		mustDo(t, s.AddMember(ctx, m[0], m[1]))
	}
	for i, u := range users {
		mustDo(t, s.CreateSession(ctx, model.Session{
			ID: fmt.Sprintf("s-%d", i), UserID: u.ID, Level: model.AuthLevel(1 + i%2),
			CreatedAt: base, LastSeenAt: base.Add(time.Minute), ExpiresAt: base.Add(24 * time.Hour),
			IdleTimeout: time.Hour, ClientIP: "192.0.2." + strconv.Itoa(i), UserAgent: "Mozilla/5.0 (X11; Linux x86_64)",
		}))
	}
	for i := range 4 {
		_, err := s.RecordFailure(ctx, fmt.Sprintf("user:u-%d", i), base, 10*time.Minute, 3, 15*time.Minute)
		mustDo(t, err)
	}
	_, err := s.RecordFailure(ctx, "ip:198.51.100.7", base, 10*time.Minute, 1, 15*time.Minute)
	mustDo(t, err)

	flag := func(b bool) any {
		if s.Dialect() == dialectPostgres {
			return b
		}
		if b {
			return int64(1)
		}
		return int64(0)
	}
	ph := "?, ?, ?, ?, ?, ?"
	if s.Dialect() == dialectPostgres {
		ph = "$1, $2, $3, $4, $5, $6"
	}
	err = s.RestoreTx(ctx, func(tx *sql.Tx) error {
		for _, r := range [][]any{
			{int64(1), "u-alice", []byte{0, 0xff, 0x10, 0xc3}, 1.5, flag(true), "first"},
			{int64(7), nil, nil, -0.25, flag(false), nil},
			{int64(9), "u-bob", []byte{}, 1e300, flag(true), "ünïcödé 'quoted'"},
		} {
			if _, err := tx.ExecContext(ctx, "INSERT INTO zz_probe (id, user_id, payload, ratio, flag, note) VALUES ("+ph+")", r...); err != nil {
				return err
			}
		}
		return nil
	})
	mustDo(t, err)
	fillGeneric(t, s)
}

func modelUser(id, username string) model.User {
	return model.User{ID: id, Username: username, CreatedAt: base, UpdatedAt: base}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fillGeneric inserts three rows into every table that is still empty,
// parents first, drawing foreign keys from the parents' rows and values
// listed in CHECK (col IN (...)) constraints. A table it cannot fill fails
// the test with a request for a typed filler above.
func fillGeneric(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	var tables []*tableInfo
	var checks map[string]map[string][]any
	err := s.SnapshotTx(ctxBG, func(tx *sql.Tx) error {
		var err error
		if tables, err = introspect(ctxBG, tx, s.Dialect()); err != nil {
			return err
		}
		checks, err = checkValues(tx, s.Dialect())
		return err
	})
	mustDo(t, err)
	for _, tb := range tables {
		err := s.RestoreTx(ctxBG, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctxBG, "SELECT count(*) FROM "+quoteIdent(tb.name)).Scan(&n); err != nil || n > 0 {
				return err
			}
			for r := range 3 {
				fkVals := map[string]any{}
				for _, fk := range tb.fks {
					to := fk.to
					q := fmt.Sprintf("SELECT %s FROM %s ORDER BY 1 LIMIT 1 OFFSET %d", quoteIdents(to), quoteIdent(fk.parent), r)
					vals := make([]any, len(to))
					ptrs := make([]any, len(to))
					for i := range vals {
						ptrs[i] = &vals[i]
					}
					if err := tx.QueryRowContext(ctxBG, q).Scan(ptrs...); err != nil {
						return fmt.Errorf("parent %s of %s: %w", fk.parent, tb.name, err)
					}
					for i, c := range fk.from {
						fkVals[c] = vals[i]
					}
				}
				var cols []string
				var args []any
				for _, c := range tb.columns {
					cols = append(cols, c.name)
					if v, ok := fkVals[c.name]; ok {
						args = append(args, v)
						continue
					}
					if allowed := checks[tb.name][c.name]; len(allowed) > 0 {
						args = append(args, allowed[r%len(allowed)])
						continue
					}
					if !c.notNull && r == 1 {
						args = append(args, nil)
						continue
					}
					decl := strings.ToLower(c.declType)
					switch {
					case classOf(decl) == classBool:
						args = append(args, r%2 == 0)
					case classOf(decl) == classInt:
						args = append(args, int64(1000*r+7)) // fits every integer type
					case strings.Contains(decl, "blob") || strings.Contains(decl, "bytea"):
						args = append(args, []byte{0, byte(r), 0xff})
					case strings.Contains(decl, "real") || strings.Contains(decl, "double"):
						args = append(args, float64(r)+0.5)
					default:
						args = append(args, fmt.Sprintf("%s.%s #%d — ✓ \"q\"", tb.name, c.name, r))
					}
				}
				ph := make([]string, len(cols))
				for i := range ph {
					ph[i] = placeholder(s.Dialect(), i+1)
				}
				q := "INSERT INTO " + quoteIdent(tb.name) + " (" + quoteIdents(cols) + ") VALUES (" + strings.Join(ph, ", ") + ")"
				if _, err := tx.ExecContext(ctxBG, q, args...); err != nil {
					return fmt.Errorf("generic insert into %s failed (give it a typed filler in fill): %w", tb.name, err)
				}
			}
			return nil
		})
		mustDo(t, err)
	}
}

var (
	sqliteCheckIn   = regexp.MustCompile(`(?i)"?(\w+)"?\s+IN\s*\(([^)]*)\)`)
	postgresCheckIn = regexp.MustCompile(`\(?(\w+) = ANY \(ARRAY\[([^\]]*)\]`)
	checkItem       = regexp.MustCompile(`'((?:[^']|'')*)'|(-?\d+)`)
)

// checkValues finds the values CHECK (col IN (...)) constraints allow.
func checkValues(tx *sql.Tx, dialect string) (map[string]map[string][]any, error) {
	q := `SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL`
	re := sqliteCheckIn
	if dialect == dialectPostgres {
		q = `SELECT c.relname, pg_get_constraintdef(k.oid) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE k.contype = 'c' AND n.nspname = current_schema()`
		re = postgresCheckIn
	}
	rows, err := tx.QueryContext(ctxBG, q)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string][]any{}
	err = eachRow(rows, func() error {
		var table, def string
		if err := rows.Scan(&table, &def); err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(def, -1) {
			var vals []any
			for _, it := range checkItem.FindAllStringSubmatch(m[2], -1) {
				if it[2] != "" {
					n, _ := strconv.ParseInt(it[2], 10, 64)
					vals = append(vals, n)
				} else {
					vals = append(vals, strings.ReplaceAll(it[1], "''", "'"))
				}
			}
			if out[table] == nil {
				out[table] = map[string][]any{}
			}
			out[table][m[1]] = vals
		}
		return nil
	})
	return out, err
}

// dump is every row of every table, normalised so that dialects compare
// equal (booleans as 0/1): table → sorted rows, each "col=value" pairs
// sorted by column.
type dump map[string][]string

func normRow(cols []string, vals []any) string {
	pairs := make([]string, len(cols))
	for i, c := range cols {
		v, _ := convert(vals[i], classInt)
		b, err := appendValue(nil, v)
		if err != nil {
			panic(err)
		}
		pairs[i] = c + "=" + string(b)
	}
	slices.Sort(pairs)
	return strings.Join(pairs, " ")
}

func dumpDB(t *testing.T, s *sqlstore.Store) dump {
	t.Helper()
	d := dump{}
	err := s.SnapshotTx(ctxBG, func(tx *sql.Tx) error {
		tables, err := introspect(ctxBG, tx, s.Dialect())
		if err != nil {
			return err
		}
		for _, tb := range tables {
			var cols []string
			for _, c := range tb.columns {
				cols = append(cols, c.name)
			}
			rows, err := tx.QueryContext(ctxBG, "SELECT "+quoteIdents(cols)+" FROM "+quoteIdent(tb.name))
			if err != nil {
				return err
			}
			d[tb.name] = []string{}
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			err = eachRow(rows, func() error {
				if err := rows.Scan(ptrs...); err != nil {
					return err
				}
				d[tb.name] = append(d[tb.name], normRow(cols, vals))
				return nil
			})
			if err != nil {
				return err
			}
			slices.Sort(d[tb.name])
		}
		return nil
	})
	mustDo(t, err)
	return d
}

// collector is a sink that keeps every row of a backup, normalised.
type collector struct {
	d    dump
	cur  *Table
	cols []string
}

func (c *collector) begin(t *Table) error {
	c.cur = t
	c.cols = c.cols[:0]
	for _, col := range t.Columns {
		c.cols = append(c.cols, col.Name)
	}
	c.d[t.Name] = []string{}
	return nil
}

func (c *collector) row(vals []any) error {
	c.d[c.cur.Name] = append(c.d[c.cur.Name], normRow(c.cols, vals))
	return nil
}

// dumpBackup decodes a backup into the same shape as dumpDB.
func dumpBackup(t *testing.T, b []byte, passphrase string) dump {
	t.Helper()
	c := &collector{d: dump{}}
	_, _, err := readBackup(bytes.NewReader(b), passphrase, nil, c)
	mustDo(t, err)
	for _, rows := range c.d {
		slices.Sort(rows)
	}
	return c.d
}

// diffDumps reports the differences between two dumps, or "".
func diffDumps(want, got dump) string {
	var b strings.Builder
	var names []string
	for n := range want {
		names = append(names, n)
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		w, g := want[n], got[n]
		if slices.Equal(w, g) {
			continue
		}
		fmt.Fprintf(&b, "table %s: want %d rows, got %d\n", n, len(w), len(g))
		for _, r := range w {
			if !slices.Contains(g, r) {
				fmt.Fprintf(&b, "  - %s\n", r)
			}
		}
		for _, r := range g {
			if !slices.Contains(w, r) {
				fmt.Fprintf(&b, "  + %s\n", r)
			}
		}
	}
	return b.String()
}

// rewrite decodes a plain backup, lets edit change its lines (header and
// rows, without the trailer) and re-encodes it with a fresh, valid
// trailer, so tests can make backups that are intact but say something
// else.
func rewrite(t *testing.T, b []byte, edit func(lines []string) []string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	mustDo(t, err)
	var plain bytes.Buffer
	_, err = plain.ReadFrom(zr)
	mustDo(t, err)
	lines := strings.Split(strings.TrimSuffix(plain.String(), "\n"), "\n")
	lines = edit(lines[:len(lines)-1])

	var hdr Header
	mustDo(t, json.Unmarshal([]byte(lines[0]), &hdr))
	counts := map[string]int64{}
	cur := ""
	for _, l := range lines[1:] {
		var c control
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &c) == nil && c.Table != nil {
			cur = *c.Table
		} else {
			counts[cur]++
		}
	}
	body := strings.Join(lines, "\n") + "\n"
	sum := sha256.Sum256([]byte(body))
	tr := trailer{SHA256: hex.EncodeToString(sum[:])}
	for _, tb := range hdr.Tables {
		tr.Tables = append(tr.Tables, TableCount{Name: tb.Name, Rows: counts[tb.Name]})
	}
	tl, err := json.Marshal(control{Trailer: &tr})
	mustDo(t, err)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write([]byte(body))
	_, _ = zw.Write(append(tl, '\n'))
	mustDo(t, zw.Close())
	return out.Bytes()
}

// editHeader returns an edit for rewrite that changes the decoded header.
func editHeader(t *testing.T, fn func(h map[string]any)) func([]string) []string {
	return func(lines []string) []string {
		var h map[string]any
		mustDo(t, json.Unmarshal([]byte(lines[0]), &h))
		fn(h)
		b, err := json.Marshal(h)
		mustDo(t, err)
		lines[0] = string(b)
		return lines
	}
}
