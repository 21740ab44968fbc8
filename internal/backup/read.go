package backup

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
)

// sink receives the rows of a backup as they are read. The first pass of
// Restore, and Verify, read without one.
type sink interface {
	// begin announces the table whose rows follow.
	begin(t *Table) error
	row(vals []any) error
}

// Verify reads a whole backup, checking its structure, every value, the
// row counts and the checksum, without touching a database. It is what
// Restore does before it writes anything.
func Verify(r io.Reader, opts RestoreOptions) (*Manifest, error) {
	m, _, err := readBackup(r, opts.Passphrase, nil, nil)
	return m, err
}

// readBackup reads a backup from r, handing rows to s (nil: only check).
func readBackup(r io.Reader, passphrase string, kc *keyCache, s sink) (*Manifest, *Header, error) {
	cr := &countingReader{r: r}
	plain, encrypted, err := openStream(cr, passphrase, kc)
	if err != nil {
		return nil, nil, err
	}
	p := &parser{
		lr:   lineReader{br: bufio.NewReaderSize(plain.zr, 64<<10)},
		sum:  sha256.New(),
		sink: s,
	}
	m, hdr, err := p.run()
	if err != nil {
		return nil, nil, err
	}
	// The gzip member ended with the trailer (its CRC and length were
	// checked on the way to EOF); nothing may follow it.
	if _, err := plain.under.Peek(1); err == nil {
		return nil, nil, fmt.Errorf("%w: unexpected data after the end of the backup", ErrCorrupt)
	} else if !errors.Is(err, io.EOF) {
		return nil, nil, readErr(err)
	}
	m.Encrypted = encrypted
	m.Size = cr.n
	return m, hdr, nil
}

type stream struct {
	zr    *gzip.Reader
	under *bufio.Reader // what the gzip reader reads from
}

// openStream recognises a plain or encrypted backup and returns the
// decompressed stream.
func openStream(r io.Reader, passphrase string, kc *keyCache) (stream, bool, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(2)
	if len(head) == 0 {
		if err == nil || errors.Is(err, io.EOF) {
			return stream{}, false, fmt.Errorf("%w: the file is empty", ErrNotBackup)
		}
		return stream{}, false, readErr(err)
	}
	encrypted := false
	under := br
	switch {
	case len(head) == 1 && head[0] == gzipHeader[0]:
		return stream{}, false, fmt.Errorf("%w: the file is truncated", ErrCorrupt)
	case len(head) == 2 && head[0] == gzipHeader[0] && head[1] == gzipHeader[1]:
	case head[0] == '{':
		dr, err := openEnvelope(br, passphrase, kc)
		if err != nil {
			return stream{}, false, err
		}
		encrypted = true
		under = bufio.NewReaderSize(dr, 64<<10)
	default:
		return stream{}, false, fmt.Errorf("%w: it is neither a gzip stream nor an encrypted backup", ErrNotBackup)
	}
	gh, err := under.Peek(len(gzipHeader))
	if err != nil {
		return stream{}, false, readErr(err)
	}
	if !bytes.Equal(gh, gzipHeader) {
		if encrypted {
			// Authenticated, so not damage: something else was encrypted.
			return stream{}, false, fmt.Errorf("%w: the encrypted content is not a backup stream", ErrNotBackup)
		}
		return stream{}, false, fmt.Errorf("%w: unexpected gzip header % x", ErrCorrupt, gh)
	}
	zr, err := gzip.NewReader(under)
	if err != nil {
		return stream{}, false, readErr(err)
	}
	// One member only: what follows it is checked by the caller.
	zr.Multistream(false)
	return stream{zr: zr, under: under}, encrypted, nil
}

// readErr labels a failure to read the stream. Our own errors pass
// through; everything else (gzip checksum, deflate data, unexpected EOF)
// means the file is damaged or cut short.
func readErr(err error) error {
	for _, known := range []error{ErrCorrupt, ErrNotBackup, ErrUnsupported, ErrWrongPassphrase, ErrPassphraseRequired} {
		if errors.Is(err, known) {
			return err
		}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the file is truncated", ErrCorrupt)
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}

type parser struct {
	lr   lineReader
	sum  hash.Hash
	sink sink
}

func (p *parser) fail(format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrCorrupt, p.lr.line, fmt.Sprintf(format, args...))
}

func (p *parser) next() ([]byte, error) {
	line, err := p.lr.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is truncated: it ends after line %d, before its trailer", ErrCorrupt, p.lr.line)
		}
		return nil, readErr(err)
	}
	return line, nil
}

func (p *parser) hash(line []byte) {
	_, _ = p.sum.Write(line)
	_, _ = p.sum.Write([]byte{'\n'})
}

func (p *parser) run() (*Manifest, *Header, error) {
	line, err := p.next()
	if err != nil {
		return nil, nil, err
	}
	hdr, err := p.header(line)
	if err != nil {
		return nil, nil, err
	}
	p.hash(line)

	counts := make([]int64, len(hdr.Tables))
	cur := -1 // index in hdr.Tables of the section being read
	for {
		line, err := p.next()
		if err != nil {
			return nil, nil, err
		}
		if len(line) == 0 {
			return nil, nil, p.fail("empty line")
		}
		switch line[0] {
		case '[':
			if cur < 0 {
				return nil, nil, p.fail("row before any table")
			}
			t := &hdr.Tables[cur]
			vals, err := decodeRow(line, len(t.Columns))
			if err != nil {
				return nil, nil, p.fail("table %s: %v", t.Name, err)
			}
			if p.sink != nil {
				if err := p.sink.row(vals); err != nil {
					return nil, nil, err
				}
			}
			counts[cur]++
			p.hash(line)
		case '{':
			var c control
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil || (c.Table == nil) == (c.Trailer == nil) {
				return nil, nil, p.fail("not a table marker or trailer")
			}
			if c.Table != nil {
				i := cur + 1
				for i < len(hdr.Tables) && hdr.Tables[i].Name != *c.Table {
					i++
				}
				if i == len(hdr.Tables) {
					return nil, nil, p.fail("table %q is not in the header, or out of order", *c.Table)
				}
				cur = i
				if p.sink != nil {
					if err := p.sink.begin(&hdr.Tables[cur]); err != nil {
						return nil, nil, err
					}
				}
				p.hash(line)
				continue
			}
			m, err := p.trailer(hdr, counts, c.Trailer)
			if err != nil {
				return nil, nil, err
			}
			if _, err := p.lr.next(); !errors.Is(err, io.EOF) {
				if err == nil {
					return nil, nil, p.fail("data after the trailer")
				}
				return nil, nil, readErr(err)
			}
			return m, hdr, nil
		default:
			return nil, nil, p.fail("not a JSON line")
		}
	}
}

func (p *parser) header(line []byte) (*Header, error) {
	var hdr Header
	if err := json.Unmarshal(line, &hdr); err != nil {
		return nil, fmt.Errorf("%w: the header does not parse (%v)", ErrCorrupt, err)
	}
	if hdr.Format != Format {
		return nil, fmt.Errorf("%w: format %q", ErrNotBackup, hdr.Format)
	}
	if hdr.Version > FormatVersion {
		return nil, fmt.Errorf("%w: backup format version %d, this binary reads up to version %d: restore it with a newer gatehouse",
			ErrUnsupported, hdr.Version, FormatVersion)
	}
	if hdr.Version < 1 || hdr.SchemaVersion < 0 {
		return nil, p.fail("bad version in the header")
	}
	seen := map[string]bool{}
	for _, t := range hdr.Tables {
		if t.Name == "" || seen[t.Name] || len(t.Columns) == 0 {
			return nil, p.fail("bad table %q in the header", t.Name)
		}
		seen[t.Name] = true
		cols := map[string]bool{}
		for _, c := range t.Columns {
			if c.Name == "" || cols[c.Name] {
				return nil, p.fail("bad column %q of table %s in the header", c.Name, t.Name)
			}
			cols[c.Name] = true
		}
	}
	return &hdr, nil
}

func (p *parser) trailer(hdr *Header, counts []int64, t *trailer) (*Manifest, error) {
	got := hex.EncodeToString(p.sum.Sum(nil))
	if t.SHA256 != got {
		return nil, fmt.Errorf("%w: checksum mismatch (the trailer says %.12s…, the content is %.12s…)", ErrCorrupt, t.SHA256, got)
	}
	if len(t.Tables) != len(hdr.Tables) {
		return nil, p.fail("the trailer counts %d tables, the header lists %d", len(t.Tables), len(hdr.Tables))
	}
	m := &Manifest{
		FormatVersion: hdr.Version, SchemaVersion: hdr.SchemaVersion, Dialect: hdr.Dialect,
		CreatedAt: hdr.CreatedAt, Generator: hdr.Generator, SHA256: got,
	}
	for i, tc := range t.Tables {
		if tc.Name != hdr.Tables[i].Name || tc.Rows != counts[i] {
			return nil, p.fail("table %s: the trailer counts %d rows, the file holds %d", hdr.Tables[i].Name, tc.Rows, counts[i])
		}
		m.Tables = append(m.Tables, TableCount{Name: tc.Name, Rows: counts[i]})
	}
	return m, nil
}
