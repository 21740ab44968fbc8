package backup

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
	"github.com/gatehouse-sso/gatehouse/internal/store/sqlstore"
)

// TestRoundTrip backs up a database with a row in every table while
// writers keep committing, restores it into a fresh database of the same
// or the other dialect, and compares every row. It then takes a second
// backup with the writers stopped and restores it over the first (--force),
// after which source and destination must be identical.
func TestRoundTrip(t *testing.T) {
	const pass = "correct horse battery staple"
	cases := []struct {
		name       string
		from, to   backend
		passphrase string
	}{
		{"sqlite to sqlite", sqliteBackend, sqliteBackend, ""},
		{"sqlite to sqlite, encrypted", sqliteBackend, sqliteBackend, pass},
		{"sqlite to postgres", sqliteBackend, postgresBackend, ""},
		{"postgres to sqlite", postgresBackend, sqliteBackend, ""},
		{"postgres to postgres, encrypted", postgresBackend, postgresBackend, pass},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := tc.from.open(t)
			createProbe(t, src)
			fill(t, src)
			fixture := dumpDB(t, src)
			for table, rows := range fixture {
				if len(rows) == 0 {
					t.Fatalf("fixture left table %s empty", table)
				}
			}

			w := startWriters(t, src)
			w.waitFor(t, 10) // the snapshot starts with some writer rows in it
			var buf bytes.Buffer
			m, err := Write(ctxBG, src, &buf, WriteOptions{
				Passphrase: tc.passphrase, Generator: "gatehouse test", kdf: cheapKDF,
				// Commits land between the tables of the export: without a
				// snapshot, group_members would name users the users table
				// (already written) lacks, and the restore would fail.
				afterTable: func(string) { w.waitFor(t, 3) },
			})
			w.stop(t)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if m.Dialect != tc.from.name || m.Encrypted != (tc.passphrase != "") || m.Size != int64(buf.Len()) || m.SchemaVersion < 3 {
				t.Errorf("manifest %+v", m)
			}
			if tc.passphrase != "" && bytes.Contains(buf.Bytes(), []byte("alice")) {
				t.Error("encrypted backup contains plaintext")
			}

			dst := tc.to.open(t)
			createProbe(t, dst)
			rm, err := Restore(ctxBG, dst, bytes.NewReader(buf.Bytes()), RestoreOptions{Passphrase: tc.passphrase})
			if err != nil {
				t.Fatalf("Restore: %v", err)
			}
			if rm.SHA256 != m.SHA256 || rm.Rows() != m.Rows() || rm.Rows() == 0 {
				t.Errorf("restore manifest %v, write manifest %v", rm, m)
			}

			got := dumpDB(t, dst)
			if d := diffDumps(dumpBackup(t, buf.Bytes(), tc.passphrase), got); d != "" {
				t.Fatalf("restored rows differ from the backup:\n%s", d)
			}
			for _, tcnt := range m.Tables {
				if int64(len(got[tcnt.Name])) != tcnt.Rows {
					t.Errorf("table %s: manifest %d rows, restored %d", tcnt.Name, tcnt.Rows, len(got[tcnt.Name]))
				}
			}
			for table, rows := range fixture {
				if table == "throttle" || table == "sessions" {
					continue // the writers update these
				}
				for _, r := range rows {
					if !strings.Contains(strings.Join(got[table], "\n"), r) {
						t.Errorf("table %s: fixture row missing after restore: %s", table, r)
					}
				}
			}
			checkWriterInvariants(t, dst)
			if inBackup, inSource := countWriterUsers(t, dst), countWriterUsers(t, src); inBackup == 0 || inBackup >= inSource {
				t.Errorf("writer users: %d in the backup, %d in the source afterwards; want some, and fewer than the source", inBackup, inSource)
			}

			// New rows after a restore get fresh serial ids (PostgreSQL's
			// sequence was moved past the restored ones).
			exec(t, dst, "INSERT INTO zz_probe (note) VALUES ('after restore')")
			var maxID int64
			mustDo(t, dst.DB().QueryRowContext(ctxBG, "SELECT max(id) FROM zz_probe").Scan(&maxID))
			if maxID <= 9 {
				t.Errorf("new probe row got id %d, want > 9", maxID)
			}

			// Quiescent: restoring a second backup over the first makes the
			// destination equal to the source, row for row.
			buf.Reset()
			if _, err := Write(ctxBG, src, &buf, WriteOptions{Passphrase: tc.passphrase, kdf: cheapKDF}); err != nil {
				t.Fatal(err)
			}
			if _, err := Restore(ctxBG, dst, bytes.NewReader(buf.Bytes()), RestoreOptions{Passphrase: tc.passphrase}); !errors.Is(err, ErrNotEmpty) {
				t.Fatalf("restore over data without Force: %v, want ErrNotEmpty", err)
			}
			if _, err := Restore(ctxBG, dst, bytes.NewReader(buf.Bytes()), RestoreOptions{Passphrase: tc.passphrase, Force: true}); err != nil {
				t.Fatalf("forced restore: %v", err)
			}
			if d := diffDumps(dumpDB(t, src), dumpDB(t, dst)); d != "" {
				t.Fatalf("destination differs from source after a quiescent backup and restore:\n%s", d)
			}
		})
	}
}

// writers commit in the background while a backup runs: users created
// with a membership and a session in one transaction (and later deleted
// with them), throttle failures and session touches.
type writers struct {
	commits atomic.Int64
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error
}

func startWriters(t *testing.T, s *sqlstore.Store) *writers {
	t.Helper()
	w := &writers{done: make(chan struct{})}
	// Only the user writer's commits count: they are what the
	// consistency checks look at.
	run := func(counted bool, fn func(i int) error) {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-w.done:
					return
				default:
				}
				if err := fn(i); err != nil {
					w.mu.Lock()
					w.err = err
					w.mu.Unlock()
					return
				}
				if counted {
					w.commits.Add(1)
				}
			}
		}()
	}
	run(true, func(i int) error {
		return s.InTx(ctxBG, func(tx store.Store) error {
			id := fmt.Sprintf("w-%05d", i)
			now := base.Add(time.Duration(i) * time.Millisecond)
			if err := tx.CreateUser(ctxBG, model.User{ID: id, Username: id, CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
			if err := tx.AddMember(ctxBG, "g-media", id); err != nil {
				return err
			}
			if err := tx.CreateSession(ctxBG, model.Session{ID: "ws-" + id, UserID: id, Level: 1, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				return err
			}
			if i%3 == 2 {
				// Deleting cascades to the membership and the session.
				return tx.DeleteUser(ctxBG, fmt.Sprintf("w-%05d", i-2))
			}
			return nil
		})
	})
	run(false, func(i int) error {
		_, err := s.RecordFailure(ctxBG, fmt.Sprintf("ip:203.0.113.%d", i%7), base.Add(time.Duration(i)*time.Second), time.Minute, 5, time.Minute)
		return err
	})
	run(false, func(i int) error {
		return s.TouchSessions(ctxBG, map[string]time.Time{"s-0": base.Add(time.Duration(i) * time.Second)})
	})
	return w
}

// waitFor blocks until the user writer has committed n more transactions.
func (w *writers) waitFor(t *testing.T, n int64) {
	t.Helper()
	target := w.commits.Load() + n
	deadline := time.Now().Add(20 * time.Second)
	for w.commits.Load() < target {
		w.mu.Lock()
		err := w.err
		w.mu.Unlock()
		if err != nil {
			t.Errorf("writer failed: %v", err)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("writers made no progress during the backup")
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (w *writers) stop(t *testing.T) {
	t.Helper()
	close(w.done)
	w.wg.Wait()
	if w.err != nil {
		t.Fatalf("writer: %v", w.err)
	}
}

// checkWriterInvariants: each writer transaction created a user, its
// membership and its session together, so a consistent snapshot has all
// three or none.
func checkWriterInvariants(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	var bad int
	err := s.DB().QueryRowContext(ctxBG, `SELECT count(*) FROM users u WHERE u.id LIKE 'w-%' AND (
		(SELECT count(*) FROM group_members m WHERE m.user_id = u.id) <> 1 OR
		(SELECT count(*) FROM sessions x WHERE x.user_id = u.id) <> 1)`).Scan(&bad)
	mustDo(t, err)
	var orphans int
	mustDo(t, s.DB().QueryRowContext(ctxBG, `SELECT
		(SELECT count(*) FROM group_members m WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = m.user_id)) +
		(SELECT count(*) FROM sessions x WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = x.user_id))`).Scan(&orphans))
	if bad != 0 || orphans != 0 {
		t.Errorf("inconsistent snapshot: %d writer users without exactly one membership and session, %d orphan rows", bad, orphans)
	}
}

func countWriterUsers(t *testing.T, s *sqlstore.Store) int {
	t.Helper()
	var n int
	mustDo(t, s.DB().QueryRowContext(ctxBG, "SELECT count(*) FROM users WHERE id LIKE 'w-%'").Scan(&n))
	return n
}

// TestWriteIsDeterministic: the same data gives the same bytes (apart from
// the creation time, fixed here), so backups can be compared and
// deduplicated.
func TestWriteIsDeterministic(t *testing.T) {
	s := openSQLite(t)
	createProbe(t, s)
	fill(t, s)
	now := func() time.Time { return base }
	var a, b bytes.Buffer
	for _, buf := range []*bytes.Buffer{&a, &b} {
		if _, err := Write(ctxBG, s, buf, WriteOptions{Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two backups of the same data differ")
	}
}

// TestRestoreFromPipe: an input that cannot seek is spooled and read twice.
func TestRestoreFromPipe(t *testing.T) {
	src := openSQLite(t)
	createProbe(t, src)
	fill(t, src)
	var buf bytes.Buffer
	if _, err := Write(ctxBG, src, &buf, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := openSQLite(t)
	createProbe(t, dst)
	pipe := struct{ *bytes.Reader }{bytes.NewReader(buf.Bytes())} // hides Seek
	if _, err := Restore(ctxBG, dst, pipe, RestoreOptions{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if d := diffDumps(dumpDB(t, src), dumpDB(t, dst)); d != "" {
		t.Fatal(d)
	}
}

// TestBackupOfUnmigratedDatabase is refused with a hint at the URL.
func TestBackupOfUnmigratedDatabase(t *testing.T) {
	s, err := sqlstore.Open(ctxBG, t.TempDir()+"/empty.db", sqlstore.Options{SkipMigrations: true})
	mustDo(t, err)
	defer s.Close()
	_, err = Write(ctxBG, s, &bytes.Buffer{}, WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "never migrated") {
		t.Fatalf("err = %v", err)
	}
}
