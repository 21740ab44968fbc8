package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
)

// This file gives the backup service (internal/backup) the raw,
// transaction-scoped access a logical dump and restore need, without it
// importing this package: it sees these methods through small interfaces.

// SnapshotTx runs fn in a read-only transaction that sees one consistent
// state of the whole database while the server keeps writing.
//
// On SQLite it is a deferred transaction on one read-pool connection: in WAL
// mode its first read fixes a snapshot that later commits do not change,
// which makes it an online backup without blocking the writer. On
// PostgreSQL it is REPEATABLE READ READ ONLY, whose snapshot likewise covers
// every statement of the transaction, with statement_timeout lifted so a
// long table export is not cut off. fn must use only tx.
func (s *Store) SnapshotTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.tx != nil {
		return fmt.Errorf("sqlstore: snapshot: called inside a transaction")
	}
	opts := &sql.TxOptions{ReadOnly: true}
	if s.d == postgresDialect {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.read.BeginTx(ctx, opts)
	if err != nil {
		return fail("snapshot: begin", err)
	}
	// A read-only transaction has nothing to commit; rolling back also
	// releases the snapshot on every path.
	defer func() { _ = tx.Rollback() }()
	if s.d == postgresDialect {
		if _, err := tx.ExecContext(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
			return fail("snapshot", err)
		}
	}
	return fn(tx)
}

// RestoreTx runs fn in one read-write transaction that commits when fn
// returns nil and rolls back otherwise, so a failed restore leaves the
// database as it was.
//
// On SQLite it runs on the single writer connection (BEGIN IMMEDIATE, so
// no other writer interleaves) with foreign-key checks deferred to COMMIT,
// which lets fn delete and insert tables in any order as long as the end
// state is consistent. PostgreSQL cannot defer non-deferrable constraints,
// so there fn must insert parents before children; statement_timeout is
// lifted for the transaction.
func (s *Store) RestoreTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	if s.tx != nil {
		return fmt.Errorf("sqlstore: restore: called inside a transaction")
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fail("restore: begin", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	setup := "PRAGMA defer_foreign_keys = ON"
	if s.d == postgresDialect {
		setup = "SET LOCAL statement_timeout = 0"
	}
	if _, err := tx.ExecContext(ctx, setup); err != nil {
		return fail("restore", err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		// Not through fail: a deferred foreign-key failure at COMMIT is
		// not the "not found" its classification would say.
		return fmt.Errorf("sqlstore: restore: commit: %w", err)
	}
	committed = true
	return nil
}

// LatestSchemaVersion is the newest migration this binary embeds: the
// schema version a store it opens (and migrates) ends up at.
func (s *Store) LatestSchemaVersion() (int, error) {
	ms, err := s.d.migrations()
	if err != nil {
		return 0, err
	}
	if len(ms) == 0 {
		return 0, nil
	}
	return ms[len(ms)-1].version, nil
}
