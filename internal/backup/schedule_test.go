package backup

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestRunScheduled(t *testing.T) {
	src := openSQLite(t)
	mustDo(t, src.CreateUser(ctxBG, modelUser("u-1", "someone")))
	t0 := time.Date(2032, 1, 2, 3, 0, 0, 0, time.UTC)

	ls := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		mustDo(t, err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		slices.Sort(names)
		return names
	}

	cases := []struct {
		name string
		keep Retention
		runs int // hourly, from t0
		want []string
	}{
		{"keep all", Retention{}, 3, []string{"gatehouse-20320102T030000Z.backup", "gatehouse-20320102T040000Z.backup", "gatehouse-20320102T050000Z.backup"}},
		{"by count", Retention{Count: 2}, 5, []string{"gatehouse-20320102T060000Z.backup", "gatehouse-20320102T070000Z.backup"}},
		{"by age", Retention{MaxAge: 150 * time.Minute}, 5, []string{"gatehouse-20320102T050000Z.backup", "gatehouse-20320102T060000Z.backup", "gatehouse-20320102T070000Z.backup"}},
		{"count and age together", Retention{Count: 4, MaxAge: 90 * time.Minute}, 5, []string{"gatehouse-20320102T060000Z.backup", "gatehouse-20320102T070000Z.backup"}},
		{"age shorter than the interval keeps the newest", Retention{MaxAge: time.Minute}, 3, []string{"gatehouse-20320102T050000Z.backup"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "backups")
			for i := range tc.runs {
				now := t0.Add(time.Duration(i) * time.Hour)
				res, err := RunScheduled(ctxBG, src, dir, tc.keep, now, WriteOptions{})
				if err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
				if filepath.Base(res.Path) != FileName(now) || res.Manifest.Rows() == 0 || !res.Manifest.CreatedAt.Equal(now) {
					t.Fatalf("run %d: %+v", i, res)
				}
				for _, p := range res.Pruned {
					if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("pruned %s still exists", p)
					}
				}
			}
			if got := ls(dir); !slices.Equal(got, tc.want) {
				t.Fatalf("files = %v, want %v", got, tc.want)
			}
			for _, name := range tc.want {
				f, err := os.Open(filepath.Join(dir, name))
				mustDo(t, err)
				_, err = Verify(f, RestoreOptions{})
				_ = f.Close()
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
				if info, _ := os.Stat(filepath.Join(dir, name)); info.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, want 0600", name, info.Mode().Perm())
				}
			}
		})
	}

	t.Run("other files are left alone, stale temporary files removed", func(t *testing.T) {
		dir := t.TempDir()
		keepers := []string{"notes.txt", "gatehouse-latest.backup", "gatehouse-20000101T000000Z.backup.bak"}
		for _, n := range append(slices.Clone(keepers), ".gatehouse-123.tmp", ".gatehouse-456.tmp") {
			mustDo(t, os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600))
		}
		old := t0.Add(-48 * time.Hour)
		mustDo(t, os.Chtimes(filepath.Join(dir, ".gatehouse-123.tmp"), old, old))
		mustDo(t, os.Chtimes(filepath.Join(dir, ".gatehouse-456.tmp"), t0, t0)) // may be a run in progress
		if _, err := RunScheduled(ctxBG, src, dir, Retention{Count: 1}, t0, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		want := append(slices.Clone(keepers), ".gatehouse-456.tmp", FileName(t0))
		slices.Sort(want)
		if got := ls(dir); !slices.Equal(got, want) {
			t.Fatalf("files = %v, want %v", got, want)
		}
	})

	t.Run("same second twice", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := RunScheduled(ctxBG, src, dir, Retention{}, t0, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := RunScheduled(ctxBG, src, dir, Retention{}, t0, WriteOptions{}); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("err = %v, want ErrExist", err)
		}
	})

	t.Run("failed backup prunes nothing and leaves no file", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := RunScheduled(ctxBG, src, dir, Retention{}, t0, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := RunScheduled(ctxBG, failingSource{}, dir, Retention{Count: 1}, t0.Add(time.Hour), WriteOptions{}); err == nil {
			t.Fatal("backup of a broken source succeeded")
		}
		if got := ls(dir); !slices.Equal(got, []string{FileName(t0)}) {
			t.Fatalf("files = %v", got)
		}
	})

	t.Run("encrypted", func(t *testing.T) {
		dir := t.TempDir()
		res, err := RunScheduled(ctxBG, src, dir, Retention{}, t0, WriteOptions{Passphrase: "pw", kdf: cheapKDF})
		mustDo(t, err)
		f, err := os.Open(res.Path)
		mustDo(t, err)
		defer f.Close()
		if m, err := Verify(f, RestoreOptions{Passphrase: "pw"}); err != nil || !m.Encrypted {
			t.Fatalf("verify: %v %+v", err, m)
		}
	})
}

// failingSource is a database that is down.
type failingSource struct{}

func (failingSource) Dialect() string { return dialectSQLite }

func (failingSource) SnapshotTx(context.Context, func(*sql.Tx) error) error {
	return errors.New("database is down")
}
