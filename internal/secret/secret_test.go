package secret

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"hex", strings.Repeat("ab", 32), true},
		{"base64", "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=", true},
		{"long string", "this is a long enough passphrase!!", true},
		{"short", "short", false},
		{"empty", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.in)
			if (err == nil) != c.ok {
				t.Fatalf("Parse(%q) err=%v, want ok=%v", c.in, err, c.ok)
			}
		})
	}
}

func TestLoadCreatesOnce(t *testing.T) {
	dir := t.TempDir()
	k1, created, err := Load("", dir)
	if err != nil || !created {
		t.Fatalf("first load: created=%v err=%v", created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	k2, created, err := Load("", dir)
	if err != nil || created {
		t.Fatalf("second load: created=%v err=%v", created, err)
	}
	if !bytes.Equal(k1.Derive("x"), k2.Derive("x")) {
		t.Fatal("reloaded key differs")
	}
}

func TestDeriveSeparatesPurposes(t *testing.T) {
	k, _ := Parse(strings.Repeat("cd", 32))
	if bytes.Equal(k.Derive("a"), k.Derive("b")) {
		t.Fatal("different purposes gave the same key")
	}
}

func TestSealer(t *testing.T) {
	k, _ := Parse(strings.Repeat("ef", 32))
	s := k.Sealer("test")
	sealed := s.Seal([]byte("seed"), []byte("row-1"))
	if got, err := s.Open(sealed, []byte("row-1")); err != nil || string(got) != "seed" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := s.Open(sealed, []byte("row-2")); err == nil {
		t.Fatal("opened with the wrong associated data")
	}
	if _, err := k.Sealer("other").Open(sealed, []byte("row-1")); err == nil {
		t.Fatal("opened with another purpose's key")
	}
	other, _ := Parse(strings.Repeat("01", 32))
	if _, err := other.Sealer("test").Open(sealed, []byte("row-1")); err == nil {
		t.Fatal("opened with another secret key")
	}
	if _, err := s.Open([]byte("x"), nil); err == nil {
		t.Fatal("opened a truncated value")
	}
}
