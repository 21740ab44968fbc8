package password

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// bcryptHash is a bcrypt hash imported from another system.
type bcryptHash []byte

// parseBcrypt accepts the 60-character modular crypt form
// $2a$|$2b$|$2y$<cost>$<22 salt chars><31 hash chars>.
func (h *Hasher) parseBcrypt(s string) (verifier, error) {
	if len(s) != 60 || s[6] != '$' {
		return nil, fmt.Errorf("%w: bcrypt: want 60 characters", ErrMalformedHash)
	}
	for _, c := range s[7:] {
		if !isBcryptBase64(c) {
			return nil, fmt.Errorf("%w: bcrypt: bad character", ErrMalformedHash)
		}
	}
	// bcrypt.Cost checks the whole prefix; the length check above keeps it
	// from reading past the end.
	cost, err := bcrypt.Cost([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: bcrypt: %v", ErrMalformedHash, err)
	}
	if cost > h.maxBcryptCost {
		return nil, fmt.Errorf("%w: bcrypt: cost %d above %d", ErrMalformedHash, cost, h.maxBcryptCost)
	}
	return bcryptHash(s), nil
}

func isBcryptBase64(c rune) bool {
	return c == '.' || c == '/' || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')
}

// verify compares in constant time (inside x/crypto/bcrypt). bcrypt only
// reads the first 72 bytes of a password, as the systems that made these
// hashes did; a longer password is compared on those 72 bytes.
func (v bcryptHash) verify(password string) bool {
	return bcrypt.CompareHashAndPassword(v, []byte(password)) == nil
}

func (bcryptHash) stale(Params) bool { return true }

// djangoPBKDF2 is a hash from Django's PBKDF2PasswordHasher.
type djangoPBKDF2 struct {
	iter int
	salt string
	key  []byte
}

// parseDjangoPBKDF2 parses pbkdf2_sha256$<iterations>$<salt>$<key>, where
// the salt is used as text and the key is padded standard base64 of the
// 32-byte PBKDF2-HMAC-SHA256 output.
func (h *Hasher) parseDjangoPBKDF2(s string) (verifier, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2_sha256" {
		return nil, fmt.Errorf("%w: pbkdf2_sha256: want 4 fields", ErrMalformedHash)
	}
	var v djangoPBKDF2
	var err error
	if parts[1] == "" || parts[1][0] < '1' || parts[1][0] > '9' {
		return nil, fmt.Errorf("%w: pbkdf2_sha256: bad iterations", ErrMalformedHash)
	}
	if v.iter, err = strconv.Atoi(parts[1]); err != nil || v.iter > h.maxPBKDF2Iter {
		return nil, fmt.Errorf("%w: pbkdf2_sha256: bad iterations", ErrMalformedHash)
	}
	if v.salt = parts[2]; v.salt == "" {
		return nil, fmt.Errorf("%w: pbkdf2_sha256: empty salt", ErrMalformedHash)
	}
	if v.key, err = base64.StdEncoding.Strict().DecodeString(parts[3]); err != nil || len(v.key) != sha256.Size {
		return nil, fmt.Errorf("%w: pbkdf2_sha256: bad key", ErrMalformedHash)
	}
	return v, nil
}

func (v djangoPBKDF2) verify(password string) bool {
	key, err := pbkdf2.Key(sha256.New, password, []byte(v.salt), v.iter, len(v.key))
	// pbkdf2.Key fails only in FIPS 140-3 mode for inputs FIPS forbids
	// (such as a salt under 16 bytes); those hashes cannot be checked there.
	return err == nil && subtle.ConstantTimeCompare(key, v.key) == 1
}

func (djangoPBKDF2) stale(Params) bool { return true }
