package password

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// b64 is the PHC encoding: standard alphabet, no padding, and (Strict)
// no stray bits in the last character.
var b64 = base64.RawStdEncoding.Strict()

func argon2idKey(password string, salt []byte, p Params) []byte {
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

func encodeArgon2id(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

type argon2idHash struct {
	p         Params
	salt, key []byte
}

// parseArgon2id parses $argon2id$v=19$m=<m>,t=<t>,p=<p>$<salt>$<key>. The
// parameters must come in that order and without the optional keyid and
// data fields, which Gatehouse never writes.
func (h *Hasher) parseArgon2id(s string) (verifier, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, fmt.Errorf("%w: argon2id: want 5 fields", ErrMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("%w: argon2id: unsupported version", ErrUnsupportedHash)
	}
	var v argon2idHash
	var m, t, p uint64
	var err error
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, fmt.Errorf("%w: argon2id: want m, t and p", ErrMalformedHash)
	}
	if m, err = phcUint(params[0], "m=", 32); err != nil {
		return nil, err
	}
	if t, err = phcUint(params[1], "t=", 32); err != nil {
		return nil, err
	}
	if p, err = phcUint(params[2], "p=", 8); err != nil {
		return nil, err
	}
	v.p.Memory, v.p.Time, v.p.Threads = uint32(m), uint32(t), uint8(p)
	if v.p.Time < 1 || v.p.Time > h.maxTime ||
		v.p.Threads < 1 || v.p.Threads > max(maxArgonThread, h.params.Threads) ||
		v.p.Memory < 8*uint32(v.p.Threads) || v.p.Memory > h.maxMemory {
		return nil, fmt.Errorf("%w: argon2id: parameters out of range", ErrMalformedHash)
	}
	if v.salt, err = b64.DecodeString(parts[4]); err != nil || len(v.salt) < minSaltLen || len(v.salt) > maxSaltLen {
		return nil, fmt.Errorf("%w: argon2id: bad salt", ErrMalformedHash)
	}
	if v.key, err = b64.DecodeString(parts[5]); err != nil || len(v.key) < minKeyLen || len(v.key) > maxKeyLen {
		return nil, fmt.Errorf("%w: argon2id: bad key", ErrMalformedHash)
	}
	v.p.SaltLen, v.p.KeyLen = uint32(len(v.salt)), uint32(len(v.key))
	return v, nil
}

// phcUint parses "<name><decimal>" into an unsigned integer of the given
// bit size.
func phcUint(s, name string, bits int) (uint64, error) {
	digits, ok := strings.CutPrefix(s, name)
	if !ok || digits == "" || digits[0] < '0' || digits[0] > '9' {
		return 0, fmt.Errorf("%w: argon2id: bad %q parameter", ErrMalformedHash, strings.TrimSuffix(name, "="))
	}
	n, err := strconv.ParseUint(digits, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%w: argon2id: bad %q parameter", ErrMalformedHash, strings.TrimSuffix(name, "="))
	}
	return n, nil
}

func (v argon2idHash) verify(password string) bool {
	return subtle.ConstantTimeCompare(argon2idKey(password, v.salt, v.p), v.key) == 1
}

func (v argon2idHash) stale(p Params) bool { return v.p != p }
