// Package backup writes and restores logical snapshots of all of
// Gatehouse's state, portable between SQLite and PostgreSQL.
//
// A backup is one consistent read transaction of the source exported table
// by table (every table the schema has, discovered from the database
// catalogue, except schema_migrations), parents before children, as a
// gzip-compressed stream of JSON lines:
//
//	{"format":"gatehouse-backup","version":1,"schema_version":3,"dialect":"sqlite",...,"tables":[...]}
//	{"table":"users"}
//	["u1","alice","alice",...]
//	...
//	{"trailer":{"tables":[{"name":"users","rows":2},...],"sha256":"..."}}
//
// The header describes every table and column, each row is a JSON array in
// the header's column order, and the trailer holds per-table row counts and
// the SHA-256 of every byte before it, so a truncated or damaged file is
// refused before anything is written. Values are JSON null, integers,
// booleans and strings; bytes, floats, times and text that is not UTF-8 are
// one-key objects ({"bytes":"<base64>"}, ...). Booleans are 0/1 integers on
// SQLite and true/false on PostgreSQL; Restore converts by the type of the
// destination column, which is what makes backups portable.
//
// With a passphrase the gzip stream is encrypted (see crypt.go): an argon2id
// key, AES-256-GCM over 64 KiB chunks with the chunk counter and a
// last-chunk flag in the nonce, so reordering, truncation and tampering
// all fail authentication.
//
// Restore verifies the whole file first, then, in one transaction of the
// destination, refuses (unless forced) a destination that holds any rows,
// deletes everything (when forced) and inserts every row. Any error rolls
// the transaction back, leaving the destination as it was.
//
// The package works on database/sql transactions handed out by the store
// (Source and Destination below, which *sqlstore.Store implements), so it
// does not depend on a concrete backend.
package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Format identifies a Gatehouse backup in its header.
const Format = "gatehouse-backup"

// FormatVersion is the newest backup format this package writes and reads.
// Readers refuse newer versions: a newer format may mean something this
// code would silently get wrong.
const FormatVersion = 1

// Errors Restore and Verify return, wrapped with details; test with
// errors.Is.
var (
	// ErrNotBackup: the input is not a Gatehouse backup at all.
	ErrNotBackup = errors.New("not a Gatehouse backup")
	// ErrCorrupt: the input is damaged, truncated or was altered.
	ErrCorrupt = errors.New("backup is corrupt")
	// ErrUnsupported: the backup's format or schema version is newer than
	// this binary.
	ErrUnsupported = errors.New("backup is newer than this binary")
	// ErrPassphraseRequired: the backup is encrypted and no passphrase was
	// given.
	ErrPassphraseRequired = errors.New("backup is encrypted: a passphrase is required")
	// ErrWrongPassphrase: the passphrase does not open the backup.
	ErrWrongPassphrase = errors.New("wrong passphrase for this backup")
	// ErrNotEmpty: the destination holds data and Force was not set.
	ErrNotEmpty = errors.New("destination is not empty")
	// ErrIncompatible: the destination schema cannot take the backup's
	// rows (a table or column is missing).
	ErrIncompatible = errors.New("backup does not fit the destination schema")
)

// Source is a database to back up. *sqlstore.Store implements it.
type Source interface {
	// Dialect is "sqlite" or "postgres".
	Dialect() string
	// SnapshotTx runs fn in a read-only transaction that sees one
	// consistent state of the whole database.
	SnapshotTx(ctx context.Context, fn func(tx *sql.Tx) error) error
}

// Destination is a database to restore into. *sqlstore.Store implements
// it.
type Destination interface {
	// Dialect is "sqlite" or "postgres".
	Dialect() string
	// RestoreTx runs fn in one read-write transaction, committed when fn
	// returns nil and rolled back otherwise.
	RestoreTx(ctx context.Context, fn func(tx *sql.Tx) error) error
	// LatestSchemaVersion is the newest migration the running binary has.
	LatestSchemaVersion() (int, error)
}

// Header is the first line of a backup.
type Header struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// SchemaVersion is the newest migration applied to the source.
	SchemaVersion int `json:"schema_version"`
	// Dialect of the source database: "sqlite" or "postgres".
	Dialect   string    `json:"dialect"`
	CreatedAt time.Time `json:"created_at"`
	// Generator names the program that wrote the backup, for people.
	Generator string `json:"generator,omitempty"`
	// Tables in the order their rows follow (parents before children).
	Tables []Table `json:"tables"`
}

// Table describes one exported table.
type Table struct {
	Name    string   `json:"name"`
	Columns []Column `json:"columns"`
	// PrimaryKey lists the key's columns, if the table has one.
	PrimaryKey []string `json:"primary_key,omitempty"`
}

// Column is a column of a Table, with the type the source declared (for
// people; Restore goes by the destination's types).
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Manifest describes a backup that was written, verified or restored.
type Manifest struct {
	FormatVersion int
	SchemaVersion int
	Dialect       string
	CreatedAt     time.Time
	Generator     string
	Encrypted     bool
	// Tables and their row counts, in the backup's order.
	Tables []TableCount
	// SHA256 is the hex checksum recorded in the trailer.
	SHA256 string
	// Size is the number of bytes of the backup file.
	Size int64
}

// TableCount is one table's row count.
type TableCount struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
}

// Rows is the total row count over all tables.
func (m *Manifest) Rows() int64 {
	var n int64
	for _, t := range m.Tables {
		n += t.Rows
	}
	return n
}

// String summarises m in one line, for messages and logs.
func (m *Manifest) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d rows in %d tables, schema version %d, from %s", m.Rows(), len(m.Tables), m.SchemaVersion, m.Dialect)
	if !m.CreatedAt.IsZero() {
		fmt.Fprintf(&b, " taken at %s", m.CreatedAt.Format(time.RFC3339))
	}
	if m.Encrypted {
		b.WriteString(", encrypted")
	}
	return b.String()
}

// WriteOptions tunes Write.
type WriteOptions struct {
	// Passphrase, when set, encrypts the backup.
	Passphrase string
	// Generator is recorded in the header, e.g. "gatehouse 1.4.0".
	Generator string
	// Now stamps the header; nil is time.Now.
	Now func() time.Time

	// kdf overrides the argon2id cost; tests lower it.
	kdf *kdfParams
	// afterTable, when set, runs after each table is exported, inside the
	// snapshot; tests use it to commit writes mid-backup.
	afterTable func(table string)
}

// RestoreOptions tunes Restore and Verify.
type RestoreOptions struct {
	// Passphrase opens an encrypted backup; it is ignored for a plain one.
	Passphrase string
	// Force replaces the contents of a non-empty destination.
	Force bool
	// TempDir receives a copy of an input that cannot seek (a pipe), which
	// Restore needs to read twice; "" is os.TempDir().
	TempDir string
}
