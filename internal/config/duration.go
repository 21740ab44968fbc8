package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// Duration is a time.Duration written in Go syntax ("90s", "15m", "12h")
// or with a day count in front ("7d", "1d12h"), since session lifetimes
// are naturally counted in days and Go has no day unit.
type Duration time.Duration

const day = 24 * time.Hour

// maxDays keeps days*24h inside an int64 of nanoseconds.
const maxDays = int64(1<<63-1) / int64(day)

// ParseDuration parses the syntax described on Duration.
func ParseDuration(s string) (time.Duration, error) {
	in := s
	s = strings.TrimSpace(s)
	neg := false
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		neg, s = true, rest
	}
	var total time.Duration
	if days, rest, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || days == "" || days[0] == '+' || n > maxDays {
			return 0, badDuration(in)
		}
		total = time.Duration(n) * day
		s = rest
		if s == "" {
			return sign(neg, total), nil
		}
		if s[0] == '-' || s[0] == '+' {
			return 0, badDuration(in)
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || (total > 0 && d > time.Duration(1<<63-1)-total) {
		return 0, badDuration(in)
	}
	return sign(neg, total+d), nil
}

func sign(neg bool, d time.Duration) time.Duration {
	if neg {
		return -d
	}
	return d
}

func badDuration(s string) error {
	return fmt.Errorf("invalid duration %q: use a number with a unit, like \"90s\", \"15m\", \"12h\" or \"7d\"", s)
}

// String formats d the way a person would write it in the file: whole days
// as "7d", and without Go's trailing zero units ("12h", not "12h0m0s").
func (d Duration) String() string {
	t := time.Duration(d)
	if t != 0 && t%day == 0 {
		return fmt.Sprintf("%dd", t/day)
	}
	s := t.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalText writes the String form, which ParseDuration reads back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses the syntax described on Duration; the env overlay
// and the config decoder both come through here.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML lets yaml.Unmarshal decode a Duration outside this
// package's own decoder (for example in other packages' tests).
func (d *Duration) UnmarshalYAML(b []byte) error {
	var s string
	if err := yaml.Unmarshal(b, &s); err != nil {
		return errors.New("a duration must be a string like \"15m\"")
	}
	return d.UnmarshalText([]byte(s))
}
