// Package secret holds the server's secret key: where it comes from, the
// purpose-bound keys derived from it, and sealing data at rest (signing
// keys, TOTP seeds) with AES-256-GCM.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FileName is the key file created in the data directory when no key is
// configured.
const FileName = "secret_key"

// Key is the root secret. It never leaves the process except through
// Derive, which binds every use to a purpose.
type Key struct{ root []byte }

// Parse accepts 64 hex characters, base64 of at least 32 bytes, or any
// string of at least 32 characters.
func Parse(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) >= 32 {
		return Key{root: b}, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) >= 32 {
			return Key{root: b}, nil
		}
	}
	if len(s) >= 32 {
		return Key{root: []byte(s)}, nil
	}
	return Key{}, errors.New("secret key must be at least 32 bytes (64 hex characters recommended)")
}

// Load returns the configured key, or the one in dataDir, creating it there
// (mode 0600) on first start. created reports that a new key was written.
func Load(configured, dataDir string) (k Key, created bool, err error) {
	if configured != "" {
		k, err := Parse(configured)
		return k, false, err
	}
	path := filepath.Join(dataDir, FileName)
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := Parse(string(b))
		if err != nil {
			return Key{}, false, fmt.Errorf("%s: %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return Key{}, false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return Key{}, false, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Key{}, false, err
	}
	// O_EXCL: two processes starting together must not each write a key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return Load("", dataDir)
	}
	if err != nil {
		return Key{}, false, err
	}
	if _, err := f.WriteString(hex.EncodeToString(raw) + "\n"); err != nil {
		_ = f.Close()
		return Key{}, false, err
	}
	if err := f.Close(); err != nil {
		return Key{}, false, err
	}
	return Key{root: raw}, true, nil
}

// Derive returns a 32-byte key for one purpose, so that a key used to sign
// cookies can never decrypt stored secrets.
func (k Key) Derive(purpose string) []byte {
	out, err := hkdf.Key(sha256.New, k.root, nil, "gatehouse/"+purpose, 32)
	if err != nil {
		panic(err) // only for lengths HKDF cannot produce
	}
	return out
}

// Sealer encrypts small values at rest.
type Sealer struct{ aead cipher.AEAD }

// Sealer returns an AES-256-GCM sealer bound to purpose.
func (k Key) Sealer(purpose string) *Sealer {
	block, err := aes.NewCipher(k.Derive("seal/" + purpose))
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &Sealer{aead: aead}
}

// Seal encrypts plaintext; associated data (for example a record id) binds
// the ciphertext to its row so it cannot be swapped into another.
func (s *Sealer) Seal(plaintext, associated []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, associated)
}

// Open decrypts what Seal produced.
func (s *Sealer) Open(sealed, associated []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], associated)
	if err != nil {
		return nil, errors.New("sealed value cannot be opened with this secret key")
	}
	return pt, nil
}
