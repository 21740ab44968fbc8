// Package password hashes and verifies passwords.
//
// New hashes are argon2id in PHC string form
// ($argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>, raw standard base64), with
// the OWASP parameters as defaults. Verify also accepts hashes imported from
// other systems, bcrypt ($2a$, $2b$, $2y$) and Django PBKDF2
// (pbkdf2_sha256$<iterations>$<salt>$<key>), and reports that those need
// rehashing, so a user's hash is upgraded at the first successful sign-in.
//
// Every hash computation runs under a concurrency limit: memory stays bounded
// by MaxConcurrent × Params.Memory during a login storm, and callers that
// wait for a slot give up when their context ends.
package password

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"strings"
)

var (
	// ErrMalformedHash is returned by Verify when the stored hash cannot be
	// parsed, or its parameters are outside the limits this package accepts.
	ErrMalformedHash = errors.New("password: malformed hash")
	// ErrUnsupportedHash is returned by Verify for a hash of a scheme this
	// package does not know.
	ErrUnsupportedHash = errors.New("password: unsupported hash scheme")
)

// Params are the argon2id cost parameters for new hashes.
type Params struct {
	// Memory in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
	// SaltLen and KeyLen are in bytes.
	SaltLen, KeyLen uint32
}

// DefaultParams returns the OWASP recommendation for argon2id: 19 MiB of
// memory, two passes, one thread, a 16-byte salt and a 32-byte key.
func DefaultParams() Params {
	return Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Options configure a Hasher. The zero value is the production default.
type Options struct {
	// Params for new hashes. Zero fields take the DefaultParams value.
	Params Params
	// MaxConcurrent bounds how many hashes are computed at once (default
	// runtime.NumCPU(), never less than 2).
	MaxConcurrent int
}

// Hard limits on what a stored hash may ask for. A hash beyond them is
// ErrMalformedHash rather than minutes of CPU or gigabytes of memory. The
// argon2id limits are raised to the Hasher's own parameters when those are
// larger, so its own hashes always verify.
const (
	maxArgonMemory = 256 * 1024 // KiB
	maxArgonTime   = 32
	maxArgonThread = 64
	minSaltLen     = 8
	maxSaltLen     = 64
	minKeyLen      = 16
	maxKeyLen      = 128
	maxBcryptCost  = 16         // cost 10, the usual default, is ~60 ms
	maxPBKDF2Iter  = 10_000_000 // Django 6.0 uses 1,200,000
)

// Hasher hashes and verifies passwords. It is safe for concurrent use.
type Hasher struct {
	params Params
	sem    chan struct{}
	// dummy is an argon2id hash with the current parameters of a random key
	// nobody knows; DummyVerify checks passwords against it.
	dummy string

	// Limits for stored hashes (see the constants above).
	maxMemory, maxTime uint32
	maxBcryptCost      int
	maxPBKDF2Iter      int

	// testWrap, when set, runs each hash computation (tests count how many
	// run at once).
	testWrap func(fn func())
}

// NewHasher returns a Hasher for o. Zero parameters take their defaults;
// parameters below the algorithm's minimums are raised to them.
func NewHasher(o Options) *Hasher {
	p, d := o.Params, DefaultParams()
	if p.Memory == 0 {
		p.Memory = d.Memory
	}
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.SaltLen == 0 {
		p.SaltLen = d.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = d.KeyLen
	}
	// argon2 needs at least 8 KiB per thread: the reference implementation
	// rejects less, and x/crypto/argon2 would silently use more than the
	// PHC string states.
	p.Memory = max(p.Memory, 8*uint32(p.Threads))
	p.SaltLen = min(max(p.SaltLen, minSaltLen), maxSaltLen)
	p.KeyLen = min(max(p.KeyLen, minKeyLen), maxKeyLen)

	n := o.MaxConcurrent
	if n <= 0 {
		n = runtime.NumCPU()
	}
	n = max(n, 2)

	h := &Hasher{
		params:        p,
		sem:           make(chan struct{}, n),
		maxMemory:     max(maxArgonMemory, p.Memory),
		maxTime:       max(maxArgonTime, p.Time),
		maxBcryptCost: maxBcryptCost,
		maxPBKDF2Iter: maxPBKDF2Iter,
	}
	h.dummy = encodeArgon2id(p, randomBytes(p.SaltLen), randomBytes(p.KeyLen))
	return h
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the argon2id PHC string of password with a fresh random salt.
// It fails only when ctx ends while waiting for a concurrency slot.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := randomBytes(h.params.SaltLen)
	var key []byte
	err := h.do(ctx, func() { key = argon2idKey(password, salt, h.params) })
	if err != nil {
		return "", err
	}
	return encodeArgon2id(h.params, salt, key), nil
}

// Verify reports whether password matches the stored hash encoded. When it
// does and encoded is not argon2id with the current parameters (an older
// argon2id, or an imported bcrypt or PBKDF2 hash), needsRehash is true and
// the caller should store a fresh Hash. A hash that cannot be parsed is
// ErrMalformedHash or ErrUnsupportedHash; an ended ctx is ctx.Err().
// Keys are compared in constant time.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	v, err := h.parse(encoded)
	if err != nil {
		return false, false, err
	}
	if err := h.do(ctx, func() { ok = v.verify(password) }); err != nil {
		return false, false, err
	}
	return ok, ok && v.stale(h.params), nil
}

// DummyVerify does the work of verifying password against an argon2id hash
// with the current parameters and throws the result away. Call it when
// there is no hash to check (unknown user, user without a password), so
// that the answer takes as long as for a real user. It fails only when ctx
// ends while waiting for a concurrency slot.
func (h *Hasher) DummyVerify(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

// do runs fn while holding one of the concurrency slots.
func (h *Hasher) do(ctx context.Context, fn func()) error {
	// select picks at random among ready cases: check ctx first so that an
	// ended context never gets a slot.
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-h.sem }()
	if h.testWrap != nil {
		h.testWrap(fn)
		return nil
	}
	fn()
	return nil
}

// verifier is one parsed stored hash.
type verifier interface {
	verify(password string) bool
	// stale reports whether the hash should be replaced by one made with p.
	stale(p Params) bool
}

// parse recognises the scheme of encoded and parses it.
func (h *Hasher) parse(encoded string) (verifier, error) {
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		return h.parseArgon2id(encoded)
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		return h.parseBcrypt(encoded)
	case strings.HasPrefix(encoded, "pbkdf2_sha256$"):
		return h.parseDjangoPBKDF2(encoded)
	case encoded == "":
		return nil, fmt.Errorf("%w: empty", ErrMalformedHash)
	default:
		return nil, ErrUnsupportedHash
	}
}

func randomBytes(n uint32) []byte {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error (it crashes the program
	// instead, since Go 1.24).
	_, _ = rand.Read(b)
	return b
}
