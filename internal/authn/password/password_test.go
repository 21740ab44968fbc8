package password_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-sso/gatehouse/internal/authn/password"
)

// tiny keeps tests fast; the production parameters are only exercised by
// TestDefaults and BenchmarkVerify.
var tiny = password.Params{Memory: 64, Time: 1, Threads: 1}

func newTiny() *password.Hasher { return password.NewHasher(password.Options{Params: tiny}) }

func TestDefaults(t *testing.T) {
	h := password.NewHasher(password.Options{})
	if got, want := h.Params(), (password.Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}); got != want {
		t.Fatalf("Params() = %+v, want %+v", got, want)
	}
	enc, err := h.Hash(t.Context(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !re.MatchString(enc) {
		t.Fatalf("Hash = %q, not a default argon2id PHC string", enc)
	}
	ok, rehash, err := h.Verify(t.Context(), "correct horse", enc)
	if !ok || rehash || err != nil {
		t.Fatalf("Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

func TestRoundTrip(t *testing.T) {
	h := newTiny()
	for _, pw := range []string{"", "p", "correct horse battery staple", "pässwörd🔑", strings.Repeat("x", 10000)} {
		enc, err := h.Hash(t.Context(), pw)
		if err != nil {
			t.Fatal(err)
		}
		if ok, rehash, err := h.Verify(t.Context(), pw, enc); !ok || rehash || err != nil {
			t.Errorf("Verify(own hash of %.10q) = %v, %v, %v; want true, false, nil", pw, ok, rehash, err)
		}
		if ok, rehash, err := h.Verify(t.Context(), pw+"x", enc); ok || rehash || err != nil {
			t.Errorf("Verify(wrong password) = %v, %v, %v; want false, false, nil", ok, rehash, err)
		}
	}
}

func TestSaltIsRandom(t *testing.T) {
	h := newTiny()
	a, _ := h.Hash(t.Context(), "same")
	b, _ := h.Hash(t.Context(), "same")
	if a == b {
		t.Fatalf("two hashes of one password are equal: %s", a)
	}
}

func TestNeedsRehash(t *testing.T) {
	old := newTiny()
	enc, err := old.Hash(t.Context(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		params password.Params
		want   bool
	}{
		{"same params", tiny, false},
		{"more memory", password.Params{Memory: 128, Time: 1, Threads: 1}, true},
		{"more time", password.Params{Memory: 64, Time: 2, Threads: 1}, true},
		{"more threads", password.Params{Memory: 64, Time: 1, Threads: 2}, true},
		{"longer salt", password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 32}, true},
		{"longer key", password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 64}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := password.NewHasher(password.Options{Params: tt.params})
			ok, rehash, err := h.Verify(t.Context(), "pw", enc)
			if !ok || err != nil {
				t.Fatalf("Verify = %v, %v; want true, nil", ok, err)
			}
			if rehash != tt.want {
				t.Errorf("needsRehash = %v, want %v", rehash, tt.want)
			}
			if _, rehash, _ := h.Verify(t.Context(), "wrong", enc); rehash {
				t.Error("needsRehash is true for a wrong password")
			}
		})
	}
}

func TestBcrypt(t *testing.T) {
	h := newTiny()
	gen, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("y", 72)
	genLong, err := bcrypt.GenerateFromPassword([]byte(long), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// $2a$, $2b$ and $2y$ differ only in how old implementations handled
	// non-ASCII and very long passwords; the computation is the same.
	for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
		enc := prefix + string(gen[4:])
		tests := []struct {
			name, password, hash string
			ok                   bool
		}{
			{"right", "hunter2", enc, true},
			{"wrong", "hunter3", enc, false},
			{"empty", "", enc, false},
			{"72 bytes", long, prefix + string(genLong[4:]), true},
			// bcrypt reads 72 bytes; longer input matched the imported
			// hash on the system that made it, so it matches here too.
			{"over 72 bytes", long + "zzz", prefix + string(genLong[4:]), true},
			{"71 bytes", long[:71], prefix + string(genLong[4:]), false},
		}
		for _, tt := range tests {
			t.Run(prefix+tt.name, func(t *testing.T) {
				ok, rehash, err := h.Verify(t.Context(), tt.password, tt.hash)
				if err != nil || ok != tt.ok || rehash != tt.ok {
					t.Fatalf("Verify = %v, %v, %v; want %v, %v, nil", ok, rehash, err, tt.ok, tt.ok)
				}
			})
		}
	}
	// A well-known vector from the OpenBSD test suite (password "U*U").
	if ok, _, err := h.Verify(t.Context(), "U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"); !ok || err != nil {
		t.Fatalf("OpenBSD vector: Verify = %v, %v", ok, err)
	}
}

func TestDjangoPBKDF2(t *testing.T) {
	h := newTiny()
	// Independent vector: PBKDF2-HMAC-SHA256("password", "salt", 1, 32),
	// published alongside RFC 6070's SHA-1 vectors.
	known, _ := hex.DecodeString("120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")
	knownEnc := "pbkdf2_sha256$1$salt$" + base64.StdEncoding.EncodeToString(known)

	// A hash as Django's PBKDF2PasswordHasher writes it: alphanumeric salt,
	// padded standard base64 of the 32-byte key.
	salt := "Ab3dEf7hIj1lMn0pQr5tUv"
	key, err := pbkdf2.Key(sha256.New, "lètmein", []byte(salt), 1200, 32)
	if err != nil {
		t.Fatal(err)
	}
	enc := "pbkdf2_sha256$1200$" + salt + "$" + base64.StdEncoding.EncodeToString(key)

	tests := []struct {
		name, password, hash string
		ok                   bool
	}{
		{"known vector", "password", knownEnc, true},
		{"known vector, wrong", "Password", knownEnc, false},
		{"django", "lètmein", enc, true},
		{"django, wrong", "letmein", enc, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(t.Context(), tt.password, tt.hash)
			if err != nil || ok != tt.ok || rehash != tt.ok {
				t.Fatalf("Verify = %v, %v, %v; want %v, %v, nil", ok, rehash, err, tt.ok, tt.ok)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	h := newTiny()
	good, _ := h.Hash(t.Context(), "pw")
	i := strings.LastIndexByte(good, '$')
	salt, key := good[strings.LastIndexByte(good[:i], '$')+1:i], good[i+1:]
	argon := func(mid string) string { return "$argon2id$v=19$" + mid + "$" + salt + "$" + key }
	bc := "$2a$04$" + strings.Repeat("a", 53)
	pb := "pbkdf2_sha256$1000$salt$" + base64.StdEncoding.EncodeToString(make([]byte, 32))

	tests := []struct {
		name, hash string
		want       error
	}{
		{"empty", "", password.ErrMalformedHash},
		{"plain text", "hunter2", password.ErrUnsupportedHash},
		{"md5crypt", "$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", password.ErrUnsupportedHash},
		{"argon2i", strings.Replace(good, "argon2id", "argon2i", 1), password.ErrUnsupportedHash},
		{"django argon2", "argon2" + good, password.ErrUnsupportedHash},
		{"pbkdf2_sha1", strings.Replace(pb, "sha256", "sha1", 1), password.ErrUnsupportedHash},
		{"argon2id prefix only", "$argon2id$", password.ErrMalformedHash},
		{"argon2id version 16", strings.Replace(good, "v=19", "v=16", 1), password.ErrUnsupportedHash},
		{"argon2id no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"argon2id extra field", good + "$x", password.ErrMalformedHash},
		{"argon2id params reordered", argon("t=1,m=64,p=1"), password.ErrMalformedHash},
		{"argon2id keyid param", argon("m=64,t=1,p=1,keyid=x"), password.ErrMalformedHash},
		{"argon2id m=0", argon("m=0,t=1,p=1"), password.ErrMalformedHash},
		{"argon2id t=0", argon("m=64,t=0,p=1"), password.ErrMalformedHash},
		{"argon2id p=0", argon("m=64,t=1,p=0"), password.ErrMalformedHash},
		{"argon2id m below 8p", argon("m=15,t=1,p=2"), password.ErrMalformedHash},
		{"argon2id p overflows uint8", argon("m=64,t=1,p=257"), password.ErrMalformedHash},
		{"argon2id m overflows uint32", argon("m=4294967296,t=1,p=1"), password.ErrMalformedHash},
		{"argon2id m too large", argon("m=4194304,t=1,p=1"), password.ErrMalformedHash},
		{"argon2id t too large", argon("m=64,t=1000,p=1"), password.ErrMalformedHash},
		{"argon2id signed param", argon("m=+64,t=1,p=1"), password.ErrMalformedHash},
		{"argon2id empty param", argon("m=,t=1,p=1"), password.ErrMalformedHash},
		{"argon2id padded salt", argon("m=64,t=1,p=1")[:len(argon("m=64,t=1,p=1"))-len(key)-1] + "==$" + key, password.ErrMalformedHash},
		{"argon2id bad base64 salt", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key, password.ErrMalformedHash},
		{"argon2id short salt", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key, password.ErrMalformedHash},
		{"argon2id short key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$a2V5", password.ErrMalformedHash},
		{"argon2id empty key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$", password.ErrMalformedHash},
		{"bcrypt short", bc[:59], password.ErrMalformedHash},
		{"bcrypt long", bc + "a", password.ErrMalformedHash},
		{"bcrypt cost 3", "$2a$03$" + strings.Repeat("a", 53), password.ErrMalformedHash},
		{"bcrypt cost 99", "$2a$99$" + strings.Repeat("a", 53), password.ErrMalformedHash},
		{"bcrypt cost above limit", "$2b$31$" + strings.Repeat("a", 53), password.ErrMalformedHash},
		{"bcrypt cost not digits", "$2a$x4$" + strings.Repeat("a", 53), password.ErrMalformedHash},
		{"bcrypt missing separator", "$2a$04x" + strings.Repeat("a", 53), password.ErrMalformedHash},
		{"bcrypt bad character", "$2a$04$" + strings.Repeat("a", 52) + "!", password.ErrMalformedHash},
		{"pbkdf2 fields", "pbkdf2_sha256$1000$salt", password.ErrMalformedHash},
		{"pbkdf2 extra field", pb + "$x", password.ErrMalformedHash},
		{"pbkdf2 zero iterations", strings.Replace(pb, "$1000$", "$0$", 1), password.ErrMalformedHash},
		{"pbkdf2 negative iterations", strings.Replace(pb, "$1000$", "$-1$", 1), password.ErrMalformedHash},
		{"pbkdf2 signed iterations", strings.Replace(pb, "$1000$", "$+1000$", 1), password.ErrMalformedHash},
		{"pbkdf2 iterations not a number", strings.Replace(pb, "$1000$", "$1e3$", 1), password.ErrMalformedHash},
		{"pbkdf2 iterations too many", strings.Replace(pb, "$1000$", "$99999999999$", 1), password.ErrMalformedHash},
		{"pbkdf2 empty salt", strings.Replace(pb, "$salt$", "$$", 1), password.ErrMalformedHash},
		{"pbkdf2 unpadded key", strings.TrimRight(pb, "="), password.ErrMalformedHash},
		{"pbkdf2 short key", "pbkdf2_sha256$1000$salt$" + base64.StdEncoding.EncodeToString(make([]byte, 16)), password.ErrMalformedHash},
		{"pbkdf2 bad base64", "pbkdf2_sha256$1000$salt$***", password.ErrMalformedHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify(t.Context(), "pw", tt.hash)
			if ok || rehash || !errors.Is(err, tt.want) {
				t.Fatalf("Verify(%q) = %v, %v, %v; want false, false, %v", tt.hash, ok, rehash, err, tt.want)
			}
			if strings.Contains(err.Error(), salt) || strings.Contains(err.Error(), key) {
				t.Errorf("error %q repeats parts of the hash", err)
			}
		})
	}
}

func TestDummyVerify(t *testing.T) {
	h := newTiny()
	if err := h.DummyVerify(t.Context(), "anything"); err != nil {
		t.Fatalf("DummyVerify = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := h.DummyVerify(ctx, "anything"); !errors.Is(err, context.Canceled) {
		t.Fatalf("DummyVerify(cancelled) = %v, want context.Canceled", err)
	}
}

func TestCancelledContext(t *testing.T) {
	h := newTiny()
	enc, _ := h.Hash(t.Context(), "pw")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash = %v, want context.Canceled", err)
	}
	if ok, _, err := h.Verify(ctx, "pw", enc); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Verify = %v, %v; want false, context.Canceled", ok, err)
	}
}

// BenchmarkVerify measures one sign-in's worth of hashing with the
// production parameters.
func BenchmarkVerify(b *testing.B) {
	h := password.NewHasher(password.Options{})
	enc, err := h.Hash(b.Context(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := h.Verify(b.Context(), "correct horse battery staple", enc); !ok || err != nil {
			b.Fatalf("Verify = %v, %v", ok, err)
		}
	}
}
