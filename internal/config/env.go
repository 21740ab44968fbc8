package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// envPrefix starts every environment twin.
const envPrefix = "GATEHOUSE_"

// envName is the environment twin of a key path: session.idle_timeout is
// GATEHOUSE_SESSION_IDLE_TIMEOUT.
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// envVar is one environment twin of a setting.
type envVar struct {
	key    string // yaml key path
	name   string // GATEHOUSE_...
	secret bool   // also has a NAME_FILE twin
	index  []int  // path of struct field indexes from Config
}

// envVars lists every environment twin, derived from the struct so that a
// new scalar field gets its twin without further code. Lists of structs
// (apps, users, groups) and maps have none: their items have no stable name.
func envVars() []envVar {
	var out []envVar
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		si := fieldsOf(t)
		for _, f := range si.fields {
			ft := t.FieldByIndex(f.index).Type
			key := joinKey(prefix, f.name)
			idx := append(append([]int(nil), index...), f.index...)
			switch {
			case envSettable(ft):
				out = append(out, envVar{key: key, name: envName(key), secret: f.secret, index: idx})
			case ft.Kind() == reflect.Struct:
				walk(ft, key, idx)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// envSettable reports whether a value of type t can be written as one
// environment variable: a scalar, a text-decoded type, or a list of those
// (comma-separated).
func envSettable(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Slice && t.Elem().Kind() != reflect.Struct && envSettable(t.Elem())
	}
	return false
}

// applyEnv overrides c with the environment; each value set is recorded in
// c.src so that Validate blames the variable rather than the file.
func applyEnv(c *Config, lookupEnv func(string) (string, bool), readFile func(string) (string, error)) []Problem {
	var problems []Problem
	root := valueOf(c)
	for _, ev := range envVars() {
		val, isSet := lookupEnv(ev.name)
		var file string
		fileSet := false
		if ev.secret {
			file, fileSet = lookupEnv(ev.name + "_FILE")
		}
		bad := func(env, msg string) {
			problems = append(problems, Problem{Key: ev.key, Env: env, Msg: msg})
		}
		switch {
		case isSet && fileSet:
			bad(ev.name+"_FILE", fmt.Sprintf("set either %s or %s_FILE, not both", ev.name, ev.name))
			continue
		case fileSet:
			s, err := readFile(file)
			if err != nil {
				bad(ev.name+"_FILE", fmt.Sprintf("reading %s: %v", file, err))
				continue
			}
			val = s
		case !isSet:
			continue
		}
		env := ev.name
		if fileSet {
			env += "_FILE"
		}
		if err := setFromString(root.FieldByIndex(ev.index), val); err != nil {
			bad(env, err.Error())
			continue
		}
		// Lines of the file's value (say trusted_proxies[0]) no longer apply.
		for k := range c.src {
			if strings.HasPrefix(k, ev.key+"[") || strings.HasPrefix(k, ev.key+".") {
				delete(c.src, k)
			}
		}
		c.src[ev.key] = origin{env: env}
	}
	return problems
}

// setFromString decodes one environment value into v.
func setFromString(v reflect.Value, s string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("expected true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("expected a whole number, got %q", s)
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, err := strconv.ParseUint(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("expected a whole number, got %q", s)
		}
		v.SetUint(i)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
		if err != nil {
			return fmt.Errorf("expected a number, got %q", s)
		}
		v.SetFloat(f)
	case reflect.Slice:
		// Comma-separated; blanks are dropped so "a, b," is [a b].
		var parts []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		out := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			if err := setFromString(out.Index(i), p); err != nil {
				return fmt.Errorf("item %d: %w", i+1, err)
			}
		}
		v.Set(out)
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
