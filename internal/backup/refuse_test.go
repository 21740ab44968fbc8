package backup

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestRestoreRefuses feeds Restore damaged, foreign and unsuitable input,
// forced (so the emptiness check cannot be what stops it), and checks the
// error and that the destination did not change.
func TestRestoreRefuses(t *testing.T) {
	const pass = "the right passphrase"
	src := openSQLite(t)
	createProbe(t, src)
	fill(t, src)
	var plain, enc bytes.Buffer
	if _, err := Write(ctxBG, src, &plain, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(ctxBG, src, &enc, WriteOptions{Passphrase: pass, kdf: cheapKDF}); err != nil {
		t.Fatal(err)
	}
	good, goodEnc := plain.Bytes(), enc.Bytes()

	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0xff
		return c
	}
	type refusal struct {
		name       string
		input      []byte
		passphrase string
		noForce    bool
		want       error  // errors.Is
		msg        string // in the message
	}
	cases := []refusal{
		{name: "empty file", input: nil, want: ErrNotBackup, msg: "empty"},
		{name: "not a backup", input: []byte("hello, this is a text file\n"), want: ErrNotBackup},
		{name: "JSON that is not a backup", input: []byte(`{"format":"something-else"}` + "\n"), want: ErrNotBackup},
		{name: "wrong format version", input: rewrite(t, good, editHeader(t, func(h map[string]any) { h["version"] = 2 })),
			want: ErrUnsupported, msg: "format version 2"},
		{name: "newer schema version", input: rewrite(t, good, editHeader(t, func(h map[string]any) { h["schema_version"] = 9999 })),
			want: ErrUnsupported, msg: "schema version 9999"},
		{name: "foreign table", input: rewrite(t, good, func(lines []string) []string {
			lines = editHeader(t, func(h map[string]any) {
				h["tables"] = append(h["tables"].([]any), map[string]any{"name": "not_here", "columns": []any{map[string]any{"name": "x", "type": "TEXT"}}})
			})(lines)
			return append(lines, `{"table":"not_here"}`, `["x"]`)
		}), want: ErrIncompatible, msg: "not_here"},
		{name: "rows violate a constraint", input: rewrite(t, good, func(lines []string) []string {
			// A second user with alice's username_key: valid file, bad data.
			for i, l := range lines {
				if strings.HasPrefix(l, `["u-alice",`) {
					dup := strings.Replace(l, `"u-alice"`, `"u-alice-2"`, 1)
					return append(lines[:i+1], append([]string{dup}, lines[i+1:]...)...)
				}
			}
			t.Fatal("no alice row")
			return nil
		}), msg: "users"},
		{name: "orphan row", input: rewrite(t, good, func(lines []string) []string {
			for i, l := range lines {
				if l == `{"table":"group_members"}` {
					return append(lines[:i+1], append([]string{`["g-admins","u-ghost"]`}, lines[i+1:]...)...)
				}
			}
			t.Fatal("no group_members section")
			return nil
		}), msg: "group_members"},
		{name: "trailing data", input: append(bytes.Clone(good), 0, 1, 2), want: ErrCorrupt, msg: "after the end"},
		{name: "two backups concatenated", input: append(bytes.Clone(good), good...), want: ErrCorrupt},
		{name: "encrypted without passphrase", input: goodEnc, want: ErrPassphraseRequired},
		{name: "wrong passphrase", input: goodEnc, passphrase: "not it", want: ErrWrongPassphrase},
		{name: "not empty", input: good, noForce: true, want: ErrNotEmpty, msg: "users: 1 row"},
	}
	for _, n := range []int{1, 2, 9, 10, 11, len(good) / 3, len(good) / 2, len(good) - 9, len(good) - 8, len(good) - 1} {
		cases = append(cases, refusal{name: fmt.Sprintf("truncated to %d of %d bytes", n, len(good)), input: good[:n], want: ErrCorrupt})
	}
	for _, n := range []int{len(goodEnc) / 2, len(goodEnc) - 17, len(goodEnc) - 16, len(goodEnc) - 1} {
		cases = append(cases, refusal{name: fmt.Sprintf("encrypted, truncated to %d of %d bytes", n, len(goodEnc)), input: goodEnc[:n], passphrase: pass, want: ErrCorrupt})
	}
	for _, i := range []int{0, 1, 3, 4, 8, 9, 10, len(good) / 4, len(good) / 2, 3 * len(good) / 4, len(good) - 8, len(good) - 5, len(good) - 1} {
		cases = append(cases, refusal{name: fmt.Sprintf("byte %d of %d flipped", i, len(good)), input: flip(good, i)})
	}
	envEnd := bytes.IndexByte(goodEnc, '\n') + 1
	for _, i := range []int{2, envEnd - 2} {
		cases = append(cases, refusal{name: fmt.Sprintf("encrypted, envelope byte %d flipped", i), input: flip(goodEnc, i), passphrase: pass})
	}
	for _, i := range []int{envEnd, envEnd + 100, len(goodEnc) / 2, len(goodEnc) - 1} {
		cases = append(cases, refusal{name: fmt.Sprintf("encrypted, byte %d of %d flipped", i, len(goodEnc)), input: flip(goodEnc, i), passphrase: pass, want: ErrCorrupt, msg: "authentication"})
	}

	for _, db := range []backend{sqliteBackend, postgresBackend} {
		t.Run(db.name, func(t *testing.T) {
			dst := db.open(t)
			createProbe(t, dst)
			mustDo(t, dst.CreateUser(ctxBG, modelUser("u-existing", "existing")))
			before := dumpDB(t, dst)
			for _, tc := range cases {
				if db.name == dialectPostgres && tc.want != nil && tc.want != ErrNotEmpty {
					// File checks are independent of the destination; the
					// transactional cases are what PostgreSQL must show.
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					_, err := Restore(ctxBG, dst, bytes.NewReader(tc.input), RestoreOptions{Passphrase: tc.passphrase, Force: !tc.noForce})
					switch {
					case err == nil:
						t.Fatal("restore succeeded")
					case tc.want != nil && !errors.Is(err, tc.want):
						t.Errorf("err = %v, want %v", err, tc.want)
					case tc.want == nil && !isRefusal(err) && tc.msg == "":
						t.Errorf("err = %v, want one of the package's errors", err)
					case tc.msg != "" && !strings.Contains(err.Error(), tc.msg):
						t.Errorf("err = %q, want it to mention %q", err, tc.msg)
					}
					t.Logf("refused: %v", err)
					if d := diffDumps(before, dumpDB(t, dst)); d != "" {
						t.Fatalf("destination changed:\n%s", d)
					}
				})
			}
		})
	}
}

func isRefusal(err error) bool {
	for _, e := range []error{ErrCorrupt, ErrNotBackup, ErrUnsupported, ErrWrongPassphrase, ErrPassphraseRequired} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// TestEveryFlippedByteIsRefused flips each byte of a small backup, plain
// and encrypted, in turn: every single one must be caught by Verify.
func TestEveryFlippedByteIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	src := openSQLite(t)
	mustDo(t, src.CreateUser(ctxBG, modelUser("u-1", "someone")))
	for _, pass := range []string{"", "pw"} {
		var buf bytes.Buffer
		if _, err := Write(ctxBG, src, &buf, WriteOptions{Passphrase: pass, kdf: cheapKDF}); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if _, err := Verify(bytes.NewReader(b), RestoreOptions{Passphrase: pass}); err != nil {
			t.Fatalf("intact backup: %v", err)
		}
		for i := range b {
			b[i] ^= 0xff
			_, err := Verify(bytes.NewReader(b), RestoreOptions{Passphrase: pass})
			b[i] ^= 0xff
			if err == nil || !isRefusal(err) {
				t.Fatalf("encrypted=%v: byte %d of %d flipped: err = %v", pass != "", i, len(b), err)
			}
		}
		t.Logf("encrypted=%v: all %d flipped bytes refused", pass != "", len(b))
	}
}
