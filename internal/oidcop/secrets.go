package oidcop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
)

// SecretHasher hashes client secrets at rest with HMAC-SHA256 under a key
// derived from the server secret.
//
// A password hash (argon2id, PBKDF2, bcrypt) would be the wrong tool:
// those are slow on purpose to protect low-entropy human passwords, and
// Hydra spends most of its client_credentials CPU on PBKDF2 for that
// reason. Client secrets are generated with 256 bits of entropy, so a
// brute force of the hash is hopeless whatever its speed, and the key means
// a stolen database alone does not even allow trying. Secrets an operator
// writes into the config are required to be long as well.
type SecretHasher struct{ key []byte }

// NewSecretHasher returns a hasher keyed with key (use a purpose-derived
// key, never the root secret).
func NewSecretHasher(key []byte) *SecretHasher { return &SecretHasher{key: key} }

// Hash returns the hex HMAC of secret; prefixed so a future scheme can be
// told apart.
func (h *SecretHasher) Hash(secret string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(secret))
	return "hmac256:" + hex.EncodeToString(m.Sum(nil))
}

// Verify compares secret with a stored hash in constant time. An empty
// hash (no secret set) never verifies.
func (h *SecretHasher) Verify(secret, hash string) bool {
	if hash == "" || secret == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h.Hash(secret)), []byte(hash)) == 1
}

// NewClientSecret returns a fresh random secret: 32 bytes, base64url.
func NewClientSecret() string { return randomString(32) }

// randomString returns n random bytes, base64url without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}

// sha256Hex is how one-time values (codes, refresh tokens, device codes)
// are stored: a database copy does not hand them out, and lookups stay
// exact-match. Unlike client secrets they need no key: they are random and
// short-lived.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
