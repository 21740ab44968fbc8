package backup

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValueRoundTrip(t *testing.T) {
	tm := time.Date(2030, 1, 2, 3, 4, 5, 678901234, time.FixedZone("x", 3600))
	cases := []struct {
		name string
		in   any
		want any // after decoding; nil means in
		json string
	}{
		{"null", nil, nil, `null`},
		{"zero", int64(0), nil, `0`},
		{"min int64", int64(math.MinInt64), nil, `-9223372036854775808`},
		{"max int64", int64(math.MaxInt64), nil, `9223372036854775807`},
		{"int32 widens", int32(-7), int64(-7), `-7`},
		{"true", true, nil, `true`},
		{"false", false, nil, `false`},
		{"empty string", "", nil, `""`},
		{"escapes", "a\"b\\c\nd\te\x00\x1f<>&\u2028", nil, `"a\"b\\c\nd\te\u0000\u001f<>&` + "\u2028" + `"`},
		{"unicode", "Bøb 🚀 ünïcödé", nil, `"Bøb 🚀 ünïcödé"`},
		{"invalid UTF-8 text", "ok\xff\xfe", nil, `{"text":"b2v//g=="}`},
		{"bytes", []byte{0, 1, 0xff}, nil, `{"bytes":"AAH/"}`},
		{"empty bytes", []byte{}, nil, `{"bytes":""}`},
		{"float", 1.5, nil, `{"float":"1.5"}`},
		{"tiny float", 5e-324, nil, `{"float":"5e-324"}`},
		{"huge float", 1e300, nil, `{"float":"1e+300"}`},
		{"infinity", math.Inf(-1), nil, `{"float":"-Inf"}`},
		{"time", tm, nil, `{"time":"2030-01-02T03:04:05.678901234+01:00"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := appendValue(nil, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.json {
				t.Errorf("encoded %s, want %s", b, tc.json)
			}
			if !json.Valid(b) {
				t.Fatalf("invalid JSON %s", b)
			}
			row, err := decodeRow([]byte("["+string(b)+"]"), 1)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == nil {
				want = tc.in
			}
			got := row[0]
			if gt, ok := got.(time.Time); ok {
				if !gt.Equal(want.(time.Time)) {
					t.Errorf("decoded %v, want %v", got, want)
				}
				return
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded %#v, want %#v", got, want)
			}
		})
	}

	t.Run("NaN", func(t *testing.T) {
		b, _ := appendValue(nil, math.NaN())
		row, err := decodeRow([]byte("["+string(b)+"]"), 1)
		if err != nil || !math.IsNaN(row[0].(float64)) {
			t.Fatalf("%s → %v, %v", b, row, err)
		}
	})
	t.Run("every string survives", func(t *testing.T) {
		var sb strings.Builder
		for r := rune(0); r < 0x3000; r++ {
			sb.WriteRune(r)
		}
		s := sb.String()
		b, _ := appendValue(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Fatalf("encoding/json reads it back differently: %v", err)
		}
	})
}

func TestDecodeRowRejects(t *testing.T) {
	for _, line := range []string{
		`{}`, `[1,2`, `[1] [2]`, `[1.5]`, `[1e3]`, `[{"bytes":"!!"}]`, `[{"nope":"x"}]`,
		`[{"bytes":"AA","text":"AA"}]`, `[{"bytes":1}]`, `[{"time":"yesterday"}]`, `[[1]]`, `[1,2]`,
	} {
		if _, err := decodeRow([]byte(line), 1); err == nil {
			t.Errorf("%s: accepted", line)
		}
	}
}

func TestConvert(t *testing.T) {
	cases := []struct {
		v     any
		class typeClass
		want  any
		err   bool
	}{
		{int64(1), classBool, true, false},
		{int64(0), classBool, false, false},
		{int64(2), classBool, nil, true},
		{true, classBool, true, false},
		{true, classInt, int64(1), false},
		{false, classInt, int64(0), false},
		{int64(5), classInt, int64(5), false},
		{"x", classOther, "x", false},
		{nil, classBool, nil, false},
	}
	for _, tc := range cases {
		got, err := convert(tc.v, tc.class)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("convert(%v, %v) = %v, %v", tc.v, tc.class, got, err)
		}
	}
	for decl, want := range map[string]typeClass{
		"INTEGER": classInt, "bigint": classInt, "smallint": classInt, "integer": classInt, "boolean": classBool,
		"BOOLEAN": classBool, "text": classOther, "TEXT": classOther, "bytea": classOther, "interval": classOther,
		"double precision": classOther, "timestamp with time zone": classOther,
	} {
		if got := classOf(decl); got != want {
			t.Errorf("classOf(%q) = %v, want %v", decl, got, want)
		}
	}
}

func TestFKOrder(t *testing.T) {
	tb := func(name string, parents ...string) *tableInfo {
		t := &tableInfo{name: name}
		for _, p := range parents {
			t.fks = append(t.fks, foreignKey{parent: p})
		}
		return t
	}
	names := func(ts []*tableInfo) string {
		var s []string
		for _, t := range ts {
			s = append(s, t.name)
		}
		return strings.Join(s, " ")
	}
	cases := []struct {
		name string
		in   []*tableInfo
		want string
	}{
		{"independent tables by name", []*tableInfo{tb("b"), tb("a"), tb("c")}, "a b c"},
		{"gatehouse", []*tableInfo{
			tb("api_tokens", "users"), tb("gate_sessions", "sessions"), tb("group_members", "groups", "users"),
			tb("groups"), tb("sessions", "users"), tb("throttle"), tb("users"),
		}, "groups throttle users api_tokens group_members sessions gate_sessions"},
		{"self reference", []*tableInfo{tb("tree", "tree"), tb("a")}, "a tree"},
		{"unknown parent", []*tableInfo{tb("x", "elsewhere")}, "x"},
		{"cycle goes last", []*tableInfo{tb("p", "q"), tb("q", "p"), tb("z"), tb("child", "z")}, "z child p q"},
		{"two keys to one parent", []*tableInfo{tb("c", "p", "p"), tb("p")}, "p c"},
	}
	for _, tc := range cases {
		if got := names(fkOrder(tc.in)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestLineReader(t *testing.T) {
	lr := lineReader{br: bufio.NewReaderSize(strings.NewReader("a\n"+strings.Repeat("x", 70000)+"\nlast"), 16)}
	if l, err := lr.next(); err != nil || string(l) != "a" {
		t.Fatalf("%q %v", l, err)
	}
	if l, err := lr.next(); err != nil || len(l) != 70000 {
		t.Fatalf("%d %v", len(l), err)
	}
	if _, err := lr.next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("unterminated last line: %v", err)
	}
	lr = lineReader{br: bufio.NewReader(io.MultiReader(strings.NewReader("{"), bytes.NewReader(make([]byte, maxLine+1))))}
	if _, err := lr.next(); err == nil || !strings.Contains(err.Error(), "longer") {
		t.Fatalf("long line: %v", err)
	}
}

// TestEncryptionChunking round-trips sizes around the chunk boundary: an
// empty stream, exact multiples and one byte either side.
func TestEncryptionChunking(t *testing.T) {
	for _, n := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3 * chunkSize, 3*chunkSize + 7} {
		data := bytes.Repeat([]byte{0x5a}, n)
		for i := range data {
			data[i] = byte(i * 7)
		}
		var buf bytes.Buffer
		sw, err := newSealWriter(&buf, "pw", cheapKDF)
		if err != nil {
			t.Fatal(err)
		}
		// Odd write sizes exercise the buffering.
		for rest := data; len(rest) > 0; {
			k := min(len(rest), 1000+len(rest)%3333)
			if _, err := sw.Write(rest[:k]); err != nil {
				t.Fatal(err)
			}
			rest = rest[k:]
		}
		if err := sw.Close(); err != nil {
			t.Fatal(err)
		}
		open := func(b []byte, pass string) ([]byte, error) {
			r, err := openEnvelope(bufio.NewReader(bytes.NewReader(b)), pass, nil)
			if err != nil {
				return nil, err
			}
			return io.ReadAll(r)
		}
		got, err := open(buf.Bytes(), "pw")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("n=%d: %d bytes back, %v", n, len(got), err)
		}
		if _, err := open(buf.Bytes(), "PW"); err != ErrWrongPassphrase {
			t.Fatalf("n=%d: wrong passphrase: %v", n, err)
		}
		// Dropping the last chunk leaves a stream whose new last chunk was
		// not sealed as last.
		envLen := bytes.IndexByte(buf.Bytes(), '\n') + 1
		sealed := chunkSize + 16
		if body := buf.Len() - envLen; body > sealed {
			cut := envLen + (body-1)/sealed*sealed
			if _, err := open(buf.Bytes()[:cut], "pw"); err == nil {
				t.Fatalf("n=%d: stream cut at a chunk boundary was accepted", n)
			}
		}
	}
}
