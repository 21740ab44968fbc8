package backup

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// gzipHeader is the exact member header compress/gzip writes with the
// settings Write uses (no name, no time, default level, OS "unknown").
// Readers insist on it: the gzip CRC does not cover the header, and a byte
// flipped there must not pass unnoticed.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

type control struct {
	Table   *string  `json:"table,omitempty"`
	Trailer *trailer `json:"trailer,omitempty"`
}

type trailer struct {
	Tables []TableCount `json:"tables"`
	SHA256 string       `json:"sha256"`
}

// Write exports every table of src from one consistent snapshot to w and
// returns what it wrote. The server may keep running and writing: the
// snapshot (see Source.SnapshotTx) is unaffected by later commits.
//
// On error, what was written to w is incomplete and must be discarded
// (RunScheduled and the CLI write to a temporary file and rename).
func Write(ctx context.Context, src Source, w io.Writer, opts WriteOptions) (*Manifest, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	cw := &countingWriter{w: w}
	var out io.Writer = cw
	var sw *sealWriter
	if opts.Passphrase != "" {
		var err error
		if sw, err = newSealWriter(cw, opts.Passphrase, opts.kdf); err != nil {
			return nil, fmt.Errorf("backup: encrypt: %w", err)
		}
		out = sw
	}
	zw := gzip.NewWriter(out)
	sum := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(zw, sum), 64<<10)

	m := &Manifest{FormatVersion: FormatVersion, Dialect: src.Dialect(), Generator: opts.Generator, Encrypted: sw != nil}
	err := src.SnapshotTx(ctx, func(tx *sql.Tx) error {
		sv, err := schemaVersion(ctx, tx, m.Dialect)
		if err != nil {
			return err
		}
		tables, err := introspect(ctx, tx, m.Dialect)
		if err != nil {
			return err
		}
		m.SchemaVersion = sv
		m.CreatedAt = now().UTC().Truncate(time.Microsecond)
		hdr := Header{
			Format: Format, Version: FormatVersion, SchemaVersion: sv, Dialect: m.Dialect,
			CreatedAt: m.CreatedAt, Generator: opts.Generator,
		}
		for _, t := range tables {
			ht := Table{Name: t.name, PrimaryKey: t.primaryKey}
			for _, c := range t.columns {
				ht.Columns = append(ht.Columns, Column{Name: c.name, Type: c.declType})
			}
			hdr.Tables = append(hdr.Tables, ht)
		}
		if err := writeJSONLine(bw, hdr); err != nil {
			return err
		}
		for _, t := range tables {
			n, err := writeTable(ctx, tx, bw, t)
			if err != nil {
				return err
			}
			m.Tables = append(m.Tables, TableCount{Name: t.name, Rows: n})
			if opts.afterTable != nil {
				opts.afterTable(t.name)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("backup: write: %w", err)
	}
	m.SHA256 = hex.EncodeToString(sum.Sum(nil))
	// The trailer goes past the hash: it carries the hash.
	if err := writeJSONLine(zw, control{Trailer: &trailer{Tables: m.Tables, SHA256: m.SHA256}}); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("backup: write: %w", err)
	}
	if sw != nil {
		if err := sw.Close(); err != nil {
			return nil, fmt.Errorf("backup: write: %w", err)
		}
	}
	m.Size = cw.n
	return m, nil
}

// writeTable streams one table's rows, in primary-key order so that two
// backups of the same data are identical and restores fill indexes in
// order.
func writeTable(ctx context.Context, tx *sql.Tx, w *bufio.Writer, t *tableInfo) (n int64, err error) {
	if err := writeJSONLine(w, control{Table: &t.name}); err != nil {
		return 0, err
	}
	if len(t.columns) == 0 {
		return 0, nil
	}
	names := make([]string, len(t.columns))
	for i, c := range t.columns {
		names[i] = c.name
	}
	q := "SELECT " + quoteIdents(names) + " FROM " + quoteIdent(t.name)
	if len(t.primaryKey) > 0 {
		q += " ORDER BY " + quoteIdents(t.primaryKey)
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("backup: read table %s: %w", t.name, err)
	}
	defer closeRows(rows, &err)
	vals := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var line []byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, fmt.Errorf("backup: read table %s: %w", t.name, err)
		}
		line = append(line[:0], '[')
		for i, v := range vals {
			if i > 0 {
				line = append(line, ',')
			}
			if line, err = appendValue(line, v); err != nil {
				return n, fmt.Errorf("backup: table %s, column %s: %w", t.name, names[i], err)
			}
		}
		line = append(line, ']', '\n')
		if _, err := w.Write(line); err != nil {
			return n, fmt.Errorf("backup: write: %w", err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("backup: read table %s: %w", t.name, err)
	}
	return n, nil
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("backup: encode: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("backup: write: %w", err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
