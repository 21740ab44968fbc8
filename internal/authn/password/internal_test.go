package password

import (
	"context"
	"encoding/base64"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/crypto/bcrypt"
)

var tinyParams = Params{Memory: 64, Time: 1, Threads: 1}

func TestMaxConcurrentDefault(t *testing.T) {
	tests := []struct {
		name string
		in   int
		want int
	}{
		{"default", 0, max(runtime.NumCPU(), 2)},
		{"negative", -3, max(runtime.NumCPU(), 2)},
		{"below minimum", 1, 2},
		{"explicit", 7, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHasher(Options{Params: tinyParams, MaxConcurrent: tt.in})
			if got := cap(h.sem); got != tt.want {
				t.Fatalf("slots = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParamsNormalised(t *testing.T) {
	h := NewHasher(Options{Params: Params{Memory: 1, Threads: 4, SaltLen: 2, KeyLen: 1000}})
	want := Params{Memory: 32, Time: 2, Threads: 4, SaltLen: minSaltLen, KeyLen: maxKeyLen}
	if h.params != want {
		t.Fatalf("params = %+v, want %+v", h.params, want)
	}
	enc, err := h.Hash(t.Context(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := h.Verify(t.Context(), "pw", enc); !ok || rehash || err != nil {
		t.Fatalf("Verify = %v, %v, %v", ok, rehash, err)
	}
}

// TestOwnHashesWithinLimits: parameters beyond the limits for stored
// hashes still verify when they are the Hasher's own.
func TestOwnHashesWithinLimits(t *testing.T) {
	h := NewHasher(Options{Params: Params{Memory: 8 * 100, Time: maxArgonTime + 1, Threads: 100}})
	enc, err := h.Hash(t.Context(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := h.Verify(t.Context(), "pw", enc); !ok || rehash || err != nil {
		t.Fatalf("Verify = %v, %v, %v", ok, rehash, err)
	}
	if _, _, err := NewHasher(Options{Params: tinyParams}).Verify(t.Context(), "pw", enc); !errors.Is(err, ErrMalformedHash) {
		t.Fatalf("another Hasher's Verify = %v, want ErrMalformedHash (beyond its limits)", err)
	}
}

// TestConcurrencyLimit holds every computation open and checks that no more
// than MaxConcurrent start, whichever of Hash, Verify and DummyVerify asks.
func TestConcurrencyLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 3
		h := NewHasher(Options{Params: tinyParams, MaxConcurrent: limit})
		enc, err := h.Hash(t.Context(), "pw")
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		var inFlight, peak, done atomic.Int32
		h.testWrap = func(fn func()) {
			n := inFlight.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			<-release
			fn()
			inFlight.Add(-1)
			done.Add(1)
		}
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				var err error
				switch i % 3 {
				case 0:
					_, err = h.Hash(t.Context(), "pw")
				case 1:
					_, _, err = h.Verify(t.Context(), "pw", enc)
				case 2:
					err = h.DummyVerify(t.Context(), "pw")
				}
				if err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		if got := inFlight.Load(); got != limit {
			t.Fatalf("in flight while blocked = %d, want %d", got, limit)
		}

		// A caller waiting for a slot gives up when its context ends.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start := time.Now()
		if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Hash while saturated = %v, want context.DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("waited %v for a slot, want 1s", waited)
		}

		close(release)
		wg.Wait()
		if p, d := peak.Load(), done.Load(); p != limit || d != 12 {
			t.Fatalf("peak = %d, done = %d; want %d, 12", p, d, limit)
		}
	})
}

// FuzzVerifyMalformed feeds arbitrary hashes to Verify: it must never panic,
// never accept a password with an error, and never ask for a rehash of a
// failed check. The limits are lowered so that no input costs more than a
// few milliseconds.
func FuzzVerifyMalformed(f *testing.F) {
	h := NewHasher(Options{Params: tinyParams})
	h.maxMemory, h.maxTime, h.maxBcryptCost, h.maxPBKDF2Iter = 256, 4, 5, 2000

	argon, _ := h.Hash(context.Background(), "pw")
	bc, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	for _, s := range []string{
		argon,
		string(bc),
		"$2b$" + string(bc[4:]),
		"$2y$" + string(bc[4:]),
		"pbkdf2_sha256$1$salt$" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"",
		"$",
		"$argon2id$v=19$m=64,t=1,p=1$$",
		"$argon2id$v=19$m=,t=,p=$x$y",
		"pbkdf2_sha256$$$",
		"$2a$",
		strings.Repeat("$", 64),
	} {
		f.Add("pw", s)
	}
	f.Fuzz(func(t *testing.T, pw, enc string) {
		ok, rehash, err := h.Verify(context.Background(), pw, enc)
		if err != nil && (ok || rehash) {
			t.Fatalf("Verify(%q) = %v, %v, %v: ok or rehash with an error", enc, ok, rehash, err)
		}
		if rehash && !ok {
			t.Fatalf("Verify(%q): rehash without ok", enc)
		}
		if err != nil && !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrUnsupportedHash) {
			t.Fatalf("Verify(%q) = %v: not a hash error", enc, err)
		}
	})
}
