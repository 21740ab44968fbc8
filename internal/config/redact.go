package config

import "reflect"

// redacted replaces a secret that is set; an unset secret stays empty so the
// log still shows whether it was configured.
const redacted = "REDACTED"

// Redacted returns a deep copy of c, safe to log, with every field tagged
// secret:"true" (at any depth, including list items) replaced by
// "REDACTED". Being driven by the tag, secrets added later are covered too.
func (c *Config) Redacted() *Config {
	cp := *c
	redact(reflect.ValueOf(&cp).Elem(), false)
	return &cp
}

// redact deep-copies the shared parts of v (slices, maps, pointers) in place
// and masks secrets; v is already a shallow copy.
func redact(v reflect.Value, secret bool) {
	switch v.Kind() {
	case reflect.String:
		if secret && v.Len() > 0 {
			v.SetString(redacted)
		}
	case reflect.Struct:
		si := fieldsOf(v.Type())
		for _, f := range si.fields {
			redact(v.FieldByIndex(f.index), f.secret)
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(cp, v)
		for i := range cp.Len() {
			redact(cp.Index(i), secret)
		}
		v.Set(cp)
	case reflect.Map:
		if v.IsNil() {
			return
		}
		cp := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(it.Value())
			redact(e, secret)
			cp.SetMapIndex(it.Key(), e)
		}
		v.Set(cp)
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		e := reflect.New(v.Type().Elem())
		e.Elem().Set(v.Elem())
		redact(e.Elem(), secret)
		v.Set(e)
	}
}
