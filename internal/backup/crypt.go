package backup

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"golang.org/x/crypto/argon2"
)

// An encrypted backup is a plaintext envelope line followed by sealed
// chunks:
//
//	{"format":"gatehouse-backup-encrypted","version":1,"kdf":{...},"cipher":"AES-256-GCM",...}\n
//	chunk 0 | chunk 1 | ... | last chunk
//
// The key comes from the passphrase through argon2id with the envelope's
// random salt and cost. The plaintext (the gzip stream) is cut into
// chunk_size pieces, each sealed with AES-256-GCM under the nonce
// prefix(7) || counter(4, big endian) || last(1) and the envelope line as
// additional data: this is the STREAM construction (Hoang, Reyhanitabar,
// Rogaway, Vizár 2015), which makes dropping, reordering or truncating
// chunks, or editing the envelope, fail authentication, and lets both
// sides work in constant memory. Every chunk but the last holds exactly
// chunk_size bytes.
//
// The envelope also carries key_check, 16 bytes of the argon2id output
// that are not part of the AES key, so a wrong passphrase is reported as
// such rather than as a damaged file. It gives an attacker nothing the
// first chunk's known gzip header would not.

const (
	envelopeFormat  = "gatehouse-backup-encrypted"
	envelopeVersion = 1
	cipherName      = "AES-256-GCM"
	kdfName         = "argon2id"
	chunkSize       = 64 << 10
	noncePrefixLen  = 7
	keyCheckLen     = 16
	saltLen         = 16
	maxEnvelopeLine = 4 << 10
)

// kdfParams is the argon2id cost and salt; defaultKDF follows RFC 9106's
// second recommended option (64 MiB, 3 passes, 4 lanes): about a second
// per guess on a small server, paid once per backup.
type kdfParams struct {
	Name      string `json:"name"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Salt      []byte `json:"salt"`
}

var defaultKDF = kdfParams{Name: kdfName, Time: 3, MemoryKiB: 64 << 10, Threads: 4}

type envelope struct {
	Format      string    `json:"format"`
	Version     int       `json:"version"`
	KDF         kdfParams `json:"kdf"`
	Cipher      string    `json:"cipher"`
	ChunkSize   int       `json:"chunk_size"`
	NoncePrefix []byte    `json:"nonce_prefix"`
	KeyCheck    []byte    `json:"key_check"`
}

// check bounds what a file may ask of the reader: a crafted envelope must
// not make argon2id allocate gigabytes or run for minutes.
func (e *envelope) check() error {
	k := e.KDF
	switch {
	case e.Version < 1:
		return fmt.Errorf("%w: bad envelope version %d", ErrCorrupt, e.Version)
	case e.Version > envelopeVersion:
		return fmt.Errorf("%w: encryption format version %d (this binary reads up to %d)", ErrUnsupported, e.Version, envelopeVersion)
	case k.Name != kdfName || e.Cipher != cipherName:
		return fmt.Errorf("%w: unknown key derivation %q or cipher %q", ErrUnsupported, k.Name, e.Cipher)
	case k.Time < 1 || k.Time > 16 || k.Threads < 1 || k.Threads > 64 ||
		k.MemoryKiB < 8*uint32(k.Threads) || k.MemoryKiB > 1<<20 || len(k.Salt) < 8 || len(k.Salt) > 64:
		return fmt.Errorf("%w: argon2id parameters out of range", ErrCorrupt)
	case e.ChunkSize < 1<<10 || e.ChunkSize > 16<<20 || len(e.NoncePrefix) != noncePrefixLen || len(e.KeyCheck) != keyCheckLen:
		return fmt.Errorf("%w: bad encryption envelope", ErrCorrupt)
	}
	return nil
}

// deriveKey returns the AES key and the key check value.
func deriveKey(passphrase string, k kdfParams) (key, check []byte) {
	out := argon2.IDKey([]byte(passphrase), k.Salt, k.Time, k.MemoryKiB, k.Threads, 32+keyCheckLen)
	return out[:32], out[32:]
}

// keyCache keeps the key derived for one envelope, so Restore's two passes
// over a file pay for argon2id once.
type keyCache struct {
	envelope []byte
	key      []byte
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func chunkNonce(prefix []byte, counter uint32, last bool) []byte {
	n := make([]byte, 12)
	copy(n, prefix)
	binary.BigEndian.PutUint32(n[noncePrefixLen:], counter)
	if last {
		n[11] = 1
	}
	return n
}

// sealWriter encrypts what is written to it; Close seals the last chunk
// and must be called.
type sealWriter struct {
	w       io.Writer
	aead    cipher.AEAD
	aad     []byte
	prefix  []byte
	counter uint32
	buf     []byte
	out     []byte
	err     error
}

func newSealWriter(w io.Writer, passphrase string, kdf *kdfParams) (*sealWriter, error) {
	k := defaultKDF
	if kdf != nil {
		k = *kdf
	}
	k.Salt = make([]byte, saltLen)
	prefix := make([]byte, noncePrefixLen)
	if _, err := rand.Read(k.Salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(prefix); err != nil {
		return nil, err
	}
	key, check := deriveKey(passphrase, k)
	env := envelope{
		Format: envelopeFormat, Version: envelopeVersion, KDF: k, Cipher: cipherName,
		ChunkSize: chunkSize, NoncePrefix: prefix, KeyCheck: check,
	}
	line, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	line = append(line, '\n')
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(line); err != nil {
		return nil, err
	}
	return &sealWriter{
		w: w, aead: aead, aad: line, prefix: prefix,
		buf: make([]byte, 0, chunkSize), out: make([]byte, 0, chunkSize+aead.Overhead()),
	}, nil
}

func (s *sealWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n := len(p)
	for len(p) > 0 {
		// A full buffer is sealed only once more data arrives: until then
		// it may be the last chunk.
		if len(s.buf) == chunkSize {
			if err := s.seal(false); err != nil {
				return 0, err
			}
		}
		k := min(chunkSize-len(s.buf), len(p))
		s.buf = append(s.buf, p[:k]...)
		p = p[k:]
	}
	return n, nil
}

func (s *sealWriter) seal(last bool) error {
	if !last && s.counter == math.MaxUint32 {
		s.err = errors.New("backup: too large to encrypt")
		return s.err
	}
	s.out = s.aead.Seal(s.out[:0], chunkNonce(s.prefix, s.counter, last), s.buf, s.aad)
	if _, err := s.w.Write(s.out); err != nil {
		s.err = err
		return err
	}
	s.counter++
	s.buf = s.buf[:0]
	return nil
}

// Close seals the final chunk (possibly empty).
func (s *sealWriter) Close() error {
	if s.err != nil {
		return s.err
	}
	err := s.seal(true)
	if err == nil {
		s.err = errors.New("backup: write after close")
	}
	return err
}

// openEnvelope reads the envelope line from br and returns a reader of the
// decrypted stream.
func openEnvelope(br *bufio.Reader, passphrase string, kc *keyCache) (io.Reader, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxEnvelopeLine {
		return nil, fmt.Errorf("%w: the first line is too long for a backup header", ErrNotBackup)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: the encryption header is incomplete: %v", ErrCorrupt, err)
	}
	line = bytes.Clone(line)
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: the first line is not a backup header", ErrNotBackup)
	}
	if env.Format != envelopeFormat {
		return nil, fmt.Errorf("%w: unknown format %q", ErrNotBackup, env.Format)
	}
	if err := env.check(); err != nil {
		return nil, err
	}
	if passphrase == "" {
		return nil, ErrPassphraseRequired
	}
	var key []byte
	if kc != nil && kc.key != nil && bytes.Equal(kc.envelope, line) {
		key = kc.key
	} else {
		var check []byte
		key, check = deriveKey(passphrase, env.KDF)
		if subtle.ConstantTimeCompare(check, env.KeyCheck) != 1 {
			// Also what an altered salt or cost looks like; either way
			// this passphrase does not open this file.
			return nil, ErrWrongPassphrase
		}
		if kc != nil {
			kc.envelope, kc.key = line, key
		}
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &openReader{
		r: br, aead: aead, aad: line, prefix: env.NoncePrefix, chunk: env.ChunkSize,
		in: make([]byte, env.ChunkSize+aead.Overhead()),
	}, nil
}

// openReader decrypts and authenticates chunk by chunk. Nothing is
// returned from a chunk before its tag is checked.
type openReader struct {
	r       *bufio.Reader
	aead    cipher.AEAD
	aad     []byte
	prefix  []byte
	chunk   int
	counter uint32
	in      []byte
	plain   []byte
	pos     int
	done    bool
	err     error
}

func (o *openReader) Read(p []byte) (int, error) {
	for o.pos == len(o.plain) {
		if o.err != nil {
			return 0, o.err
		}
		if o.done {
			return 0, io.EOF
		}
		o.err = o.next()
	}
	n := copy(p, o.plain[o.pos:])
	o.pos += n
	return n, nil
}

func (o *openReader) next() error {
	n, err := io.ReadFull(o.r, o.in)
	last := false
	switch {
	case err == nil:
		// A full chunk is the last one when nothing follows it.
		if _, perr := o.r.Peek(1); errors.Is(perr, io.EOF) {
			last = true
		} else if perr != nil {
			return perr
		}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		last = true
	default:
		return err
	}
	if n < o.aead.Overhead() {
		return fmt.Errorf("%w: the encrypted stream is truncated (chunk %d)", ErrCorrupt, o.counter)
	}
	plain, err := o.aead.Open(o.plain[:0], chunkNonce(o.prefix, o.counter, last), o.in[:n], o.aad)
	if err != nil {
		return fmt.Errorf("%w: encrypted chunk %d failed authentication: the file was truncated or altered", ErrCorrupt, o.counter)
	}
	if !last && o.counter == math.MaxUint32 {
		return fmt.Errorf("%w: too many chunks", ErrCorrupt)
	}
	o.plain, o.pos = plain, 0
	o.counter++
	o.done = last
	return nil
}
