package backup

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Tags of the one-key objects that carry values JSON has no type for.
const (
	tagBytes = "bytes" // base64 (standard, padded)
	tagFloat = "float" // strconv 'g' form, including NaN and ±Inf
	tagTime  = "time"  // RFC 3339 with nanoseconds
	tagText  = "text"  // base64 of a string that is not valid UTF-8
)

// maxLine bounds one line of the stream, so a damaged file cannot make the
// reader buffer without limit before the checksum is known to be wrong.
const maxLine = 64 << 20

// appendValue appends v, a value database/sql scanned into an *any, as
// JSON.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		if !utf8.ValidString(v) {
			// JSON strings are Unicode: an invalid sequence would come back
			// as U+FFFD, so such text travels as bytes.
			return appendTagged(b, tagText, base64.StdEncoding.EncodeToString([]byte(v))), nil
		}
		return appendString(b, v), nil
	case []byte:
		return appendTagged(b, tagBytes, base64.StdEncoding.EncodeToString(v)), nil
	case float64:
		return appendTagged(b, tagFloat, strconv.FormatFloat(v, 'g', -1, 64)), nil
	case time.Time:
		return appendTagged(b, tagTime, v.Format(time.RFC3339Nano)), nil
	// database/sql drivers return only the types above; these cost nothing
	// and keep an unusual driver working.
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(v), 10), nil
	case float32:
		return appendValue(b, float64(v))
	default:
		return nil, fmt.Errorf("unsupported value type %T", v)
	}
}

func appendTagged(b []byte, tag, s string) []byte {
	b = append(b, '{')
	b = appendString(b, tag)
	b = append(b, ':')
	b = appendString(b, s)
	return append(b, '}')
}

// appendString appends s as a JSON string. Unlike encoding/json it leaves
// <, > and & alone (there is no HTML here), which keeps the output smaller
// and byte-for-byte predictable.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// decodeRow parses a row line (a JSON array) into values ready for a
// database/sql parameter: nil, int64, bool, string, []byte, float64 or
// time.Time.
func decodeRow(line []byte, ncols int) ([]any, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("row is not a JSON array: %w", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the row")
	}
	if len(raw) != ncols {
		return nil, fmt.Errorf("row has %d values, the table has %d columns", len(raw), ncols)
	}
	for i, v := range raw {
		d, err := decodeValue(v)
		if err != nil {
			return nil, fmt.Errorf("value %d: %w", i+1, err)
		}
		raw[i] = d
	}
	return raw, nil
}

func decodeValue(v any) (any, error) {
	switch v := v.(type) {
	case nil, bool, string:
		return v, nil
	case json.Number:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("number %s is not a 64-bit integer", v)
		}
		return n, nil
	case map[string]any:
		if len(v) != 1 {
			return nil, errors.New("a tagged value must have exactly one key")
		}
		for tag, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("tagged value %q is not a string", tag)
			}
			switch tag {
			case tagBytes:
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					return nil, fmt.Errorf("bytes: %w", err)
				}
				return b, nil
			case tagText:
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					return nil, fmt.Errorf("text: %w", err)
				}
				return string(b), nil
			case tagFloat:
				f, err := strconv.ParseFloat(s, 64)
				if err != nil {
					return nil, fmt.Errorf("float: %w", err)
				}
				return f, nil
			case tagTime:
				t, err := time.Parse(time.RFC3339Nano, s)
				if err != nil {
					return nil, fmt.Errorf("time: %w", err)
				}
				return t, nil
			default:
				return nil, fmt.Errorf("unknown value tag %q", tag)
			}
		}
	}
	return nil, fmt.Errorf("unexpected JSON value %T", v)
}

// typeClass is how Restore treats a destination column's values.
type typeClass int

const (
	classOther typeClass = iota
	classInt
	classBool
)

// classOf maps a declared column type to its class. Only integers and
// booleans need converting between dialects: SQLite keeps booleans as 0/1
// INTEGER, PostgreSQL as BOOLEAN.
func classOf(declType string) typeClass {
	t := strings.ToLower(declType)
	switch {
	case strings.HasPrefix(t, "bool"):
		return classBool
	case strings.Contains(t, "int") && !strings.Contains(t, "interval") && !strings.Contains(t, "point"):
		return classInt
	}
	return classOther
}

// convert adapts a decoded value to the destination column's class.
func convert(v any, c typeClass) (any, error) {
	switch c {
	case classBool:
		if n, ok := v.(int64); ok {
			switch n {
			case 0:
				return false, nil
			case 1:
				return true, nil
			}
			return nil, fmt.Errorf("integer %d does not fit a boolean column", n)
		}
	case classInt:
		if b, ok := v.(bool); ok {
			if b {
				return int64(1), nil
			}
			return int64(0), nil
		}
	}
	return v, nil
}

// lineReader reads newline-terminated lines of at most maxLine bytes.
type lineReader struct {
	br   *bufio.Reader
	buf  []byte
	line int
}

// next returns the next line without its newline; the slice is valid until
// the following call. A final line without a newline is an error: every
// line the writer produces ends with one, so its absence means truncation.
func (r *lineReader) next() ([]byte, error) {
	r.buf = r.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.buf = append(r.buf, chunk...)
		if len(r.buf) > maxLine {
			return nil, fmt.Errorf("line %d is longer than %d bytes", r.line+1, maxLine)
		}
		switch {
		case err == nil:
			r.line++
			return r.buf[:len(r.buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(r.buf) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}
