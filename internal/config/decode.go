package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// decoder fills Go values from a goccy/go-yaml AST. We walk the AST
// ourselves instead of calling yaml.Unmarshal because the library stops at
// the first problem: walking lets us record every unknown key, wrong type
// and duplicate key with its line, keep decoding the rest, and remember the
// line of every key for Validate's messages.
type decoder struct {
	file     string
	src      map[string]origin
	readFile func(string) (string, error)
	problems []Problem
	// aliases maps each alias to the node its anchor named at that point
	// of the document (anchors may be redefined further down).
	aliases map[*ast.AliasNode]ast.Node
	// budget counts decoded nodes so that alias fan-out ("billion laughs")
	// cannot blow up memory; it is far above any real file.
	budget int
}

const (
	maxNodes = 200_000
	maxDepth = 64
)

func (d *decoder) add(line int, key, msg string) {
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Key: key, Msg: msg})
}

// parseDocument parses data and returns the body of its only document (nil
// for an empty file). ok is false when nothing more can be decoded.
func (d *decoder) parseDocument(data []byte) (body ast.Node, ok bool) {
	f, err := safeParse(data)
	if err != nil {
		line, msg := 0, err.Error()
		var ye yaml.Error
		if errors.As(err, &ye) {
			msg = ye.GetMessage()
			line = tokenLine(ye.GetToken())
		}
		d.add(line, "", "invalid YAML: "+msg)
		return nil, false
	}
	if f == nil || len(f.Docs) == 0 {
		return nil, true
	}
	for _, doc := range f.Docs[1:] {
		if doc != nil && !isNil(doc.Body) {
			d.add(nodeLine(doc.Body), "", "only one YAML document is allowed per file")
			break
		}
	}
	doc := f.Docs[0]
	if doc == nil || isNil(doc.Body) {
		return nil, true
	}
	d.aliases = map[*ast.AliasNode]ast.Node{}
	d.budget = maxNodes
	d.scanAnchors(doc.Body, map[string]ast.Node{}, 0)
	return doc.Body, true
}

// safeParse turns a parser panic into an error: a config file, however
// broken, must produce a message and never crash the server or the CLI.
func safeParse(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("the YAML parser failed on this input (%v)", r)
		}
	}()
	// Duplicate keys are allowed here so that we can report them together
	// with everything else instead of as a fatal syntax error.
	return parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
}

// scanAnchors resolves aliases in document order, as YAML defines them.
func (d *decoder) scanAnchors(n ast.Node, anchors map[string]ast.Node, depth int) {
	if isNil(n) || depth > 1000 {
		return
	}
	switch x := n.(type) {
	case *ast.MappingNode:
		for _, v := range x.Values {
			d.scanAnchors(v, anchors, depth+1)
		}
	case *ast.MappingValueNode:
		d.scanAnchors(x.Key, anchors, depth+1)
		d.scanAnchors(x.Value, anchors, depth+1)
	case *ast.MappingKeyNode:
		d.scanAnchors(x.Value, anchors, depth+1)
	case *ast.SequenceNode:
		for _, v := range x.Values {
			d.scanAnchors(v, anchors, depth+1)
		}
	case *ast.TagNode:
		d.scanAnchors(x.Value, anchors, depth+1)
	case *ast.AnchorNode:
		// Registered after its content, so an anchor cannot refer to itself.
		d.scanAnchors(x.Value, anchors, depth+1)
		if !isNil(x.Name) && x.Name.GetToken() != nil {
			anchors[x.Name.GetToken().Value] = x.Value
		}
	case *ast.AliasNode:
		if !isNil(x.Value) && x.Value.GetToken() != nil {
			if target, ok := anchors[x.Value.GetToken().Value]; ok {
				d.aliases[x] = target
			}
		}
	}
}

// resolve strips tags and anchors and follows aliases; nil means the node
// cannot be used (a problem has been recorded).
func (d *decoder) resolve(n ast.Node, key string) ast.Node {
	for range 32 {
		if isNil(n) {
			return nil
		}
		switch x := n.(type) {
		case *ast.TagNode:
			n = x.Value
		case *ast.AnchorNode:
			n = x.Value
		case *ast.AliasNode:
			target, ok := d.aliases[x]
			if !ok {
				name := ""
				if !isNil(x.Value) {
					name = x.Value.String()
				}
				d.add(nodeLine(x), key, fmt.Sprintf("alias *%s refers to no anchor defined before it", name))
				return nil
			}
			n = target
		default:
			return n
		}
	}
	d.add(nodeLine(n), key, "too many nested tags, anchors or aliases")
	return nil
}

var (
	textUnmarshalerType  = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshalerTypes = []reflect.Type{
		reflect.TypeFor[yaml.BytesUnmarshaler](),
		reflect.TypeFor[yaml.BytesUnmarshalerContext](),
		reflect.TypeFor[yaml.InterfaceUnmarshaler](),
		reflect.TypeFor[yaml.InterfaceUnmarshalerContext](),
		reflect.TypeFor[yaml.NodeUnmarshaler](),
		reflect.TypeFor[yaml.NodeUnmarshalerContext](),
	}
)

// spend takes n from the node budget and reports whether any was left; the
// first overdraft is reported once.
func (d *decoder) spend(n int, at ast.Node, key string) bool {
	if d.budget <= 0 {
		return false
	}
	d.budget -= n
	if d.budget <= 0 {
		d.add(nodeLine(at), key, "the document is too large once its aliases are expanded")
		return false
	}
	return true
}

func valueOf(c *Config) reflect.Value { return reflect.ValueOf(c).Elem() }

// decodeValue decodes n into v, which must be settable; key is the path of
// v for messages, like "apps[1].slug".
func (d *decoder) decodeValue(n ast.Node, v reflect.Value, key string, depth int) {
	if !d.spend(1, n, key) {
		return
	}
	if depth > maxDepth {
		d.add(nodeLine(n), key, "nested too deeply")
		return
	}
	n = d.resolve(n, key)
	if n == nil {
		return
	}
	if _, null := n.(*ast.NullNode); null {
		// An empty value ("key:" or "~") keeps the default, so a section
		// whose children are all commented out does not wipe its defaults.
		// Use "" to empty a string.
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decodeValue(n, v.Elem(), key, depth+1)
		return
	}
	if d.decodeCustom(n, v, key) {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, key, depth)
	case reflect.Slice:
		d.decodeSlice(n, v, key, depth)
	case reflect.Map:
		d.decodeMap(n, v, key, depth)
	case reflect.String:
		s, ok := scalarText(n)
		if !ok {
			d.typeError(n, key, "a string")
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			d.typeError(n, key, "true or false")
			return
		}
		v.SetBool(b.Value)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := n.(*ast.IntegerNode)
		if !ok {
			d.typeError(n, key, "a whole number")
			return
		}
		var x int64
		switch iv := i.Value.(type) {
		case int64:
			x = iv
		case uint64:
			if iv > 1<<63-1 {
				d.add(nodeLine(n), key, "number out of range")
				return
			}
			x = int64(iv)
		}
		if v.OverflowInt(x) {
			d.add(nodeLine(n), key, "number out of range")
			return
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, ok := n.(*ast.IntegerNode)
		if !ok {
			d.typeError(n, key, "a whole number")
			return
		}
		var x uint64
		switch iv := i.Value.(type) {
		case int64:
			if iv < 0 {
				d.add(nodeLine(n), key, "must not be negative")
				return
			}
			x = uint64(iv)
		case uint64:
			x = iv
		}
		if v.OverflowUint(x) {
			d.add(nodeLine(n), key, "number out of range")
			return
		}
		v.SetUint(x)
	case reflect.Float32, reflect.Float64:
		s, ok := scalarText(n)
		f, err := strconv.ParseFloat(s, 64)
		if _, isStr := n.(*ast.StringNode); !ok || isStr || err != nil || v.OverflowFloat(f) {
			d.typeError(n, key, "a number")
			return
		}
		v.SetFloat(f)
	default:
		d.decodeWithLibrary(n, v, key)
	}
}

// decodeCustom handles types that decode themselves: TextUnmarshalers from
// a scalar (Duration, netip.Prefix...), then the library's own unmarshaler
// interfaces. It reports whether it took care of v.
func (d *decoder) decodeCustom(n ast.Node, v reflect.Value, key string) bool {
	if !v.CanAddr() {
		return false
	}
	pt := v.Addr().Type()
	isText := pt.Implements(textUnmarshalerType)
	if s, scalar := scalarText(n); isText && scalar {
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.add(nodeLine(n), key, err.Error())
		}
		return true
	}
	for _, t := range yamlUnmarshalerTypes {
		if pt.Implements(t) {
			d.decodeWithLibrary(n, v, key)
			return true
		}
	}
	if isText {
		d.typeError(n, key, "a single value")
		return true
	}
	return false
}

// decodeWithLibrary hands n to go-yaml for types this decoder does not
// know (interfaces, custom unmarshalers); it then only reports one error.
func (d *decoder) decodeWithLibrary(n ast.Node, v reflect.Value, key string) {
	if !v.CanAddr() {
		d.add(nodeLine(n), key, "cannot be decoded")
		return
	}
	if err := yaml.NodeToValue(n, v.Addr().Interface(), yaml.Strict()); err != nil {
		line, msg := nodeLine(n), err.Error()
		var ye yaml.Error
		if errors.As(err, &ye) {
			msg = ye.GetMessage()
			if l := tokenLine(ye.GetToken()); l > 0 {
				line = l
			}
		}
		d.add(line, key, msg)
	}
}

func (d *decoder) typeError(n ast.Node, key, want string) {
	d.add(nodeLine(n), key, fmt.Sprintf("expected %s, got %s", want, describe(n)))
}

// entry is one key of a mapping, after merge keys ("<<") are expanded.
type entry struct {
	key    string
	line   int
	value  ast.Node
	merged bool // came from a merge key: may be overridden, never a duplicate
}

// entries lists the keys of a mapping node: merged ones first so that the
// mapping's own keys, applied later, win, as YAML merge keys specify.
func (d *decoder) entries(m *ast.MappingNode, key string, depth int) []entry {
	var merged, own []entry
	for _, mv := range m.Values {
		if mv == nil || isNil(mv.Key) {
			continue
		}
		if mv.Key.IsMergeKey() {
			merged = append(merged, d.mergeEntries(mv.Value, key, depth)...)
			continue
		}
		k, ok := keyText(mv.Key)
		if !ok {
			d.add(nodeLine(mv.Key), key, "keys must be plain strings")
			continue
		}
		own = append(own, entry{key: k, line: nodeLine(mv.Key), value: mv.Value})
	}
	return append(merged, own...)
}

func (d *decoder) mergeEntries(n ast.Node, key string, depth int) []entry {
	if depth > maxDepth {
		d.add(nodeLine(n), key, "nested too deeply")
		return nil
	}
	n = d.resolve(n, key)
	switch x := n.(type) {
	case nil:
		return nil
	case *ast.MappingNode:
		// Merges of merges multiply entries before anything is decoded, so
		// they are paid for here.
		if !d.spend(len(x.Values), x, key) {
			return nil
		}
		es := d.entries(x, key, depth+1)
		for i := range es {
			es[i].merged = true
		}
		return es
	case *ast.SequenceNode:
		// Earlier mappings in the list take precedence, so apply them last.
		var out []entry
		for i := len(x.Values) - 1; i >= 0; i-- {
			out = append(out, d.mergeEntries(x.Values[i], key, depth+1)...)
		}
		return out
	default:
		d.add(nodeLine(n), key, "<< must be followed by a mapping or a list of mappings")
		return nil
	}
}

// field is one settable key of a struct.
type field struct {
	name   string
	index  []int
	secret bool
}

type structInfo struct {
	fields []field
	byName map[string]int
}

var structCache sync.Map // reflect.Type → *structInfo

// fieldsOf lists the exported fields of t by their yaml names (the
// lower-cased field name when the tag has none; "-" skips a field; a
// struct tagged ",inline" contributes its own fields).
func fieldsOf(t reflect.Type) *structInfo {
	if si, ok := structCache.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byName: map[string]int{}}
	var collect func(t reflect.Type, index []int)
	collect = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			idx := append(append([]int(nil), index...), i)
			if name == "-" {
				continue
			}
			if opts == "inline" && f.Type.Kind() == reflect.Struct {
				collect(f.Type, idx)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			si.byName[name] = len(si.fields)
			si.fields = append(si.fields, field{name: name, index: idx, secret: f.Tag.Get("secret") == "true"})
		}
	}
	collect(t, nil)
	si2, _ := structCache.LoadOrStore(t, si)
	return si2.(*structInfo)
}

func (d *decoder) decodeStruct(n ast.Node, v reflect.Value, key string, depth int) {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.typeError(n, key, "a mapping")
		return
	}
	si := fieldsOf(v.Type())
	seen := map[string]int{}
	for _, e := range d.entries(m, key, depth) {
		path := joinKey(key, e.key)
		if !e.merged {
			if first, dup := seen[e.key]; dup {
				d.add(e.line, path, fmt.Sprintf("duplicate key (first set on line %d)", first))
				continue
			}
			seen[e.key] = e.line
		}
		if i, ok := si.byName[e.key]; ok {
			d.src[path] = origin{line: e.line}
			d.decodeValue(e.value, v.FieldByIndex(si.fields[i].index), path, depth+1)
			continue
		}
		if base, ok := strings.CutSuffix(e.key, "_file"); ok {
			if i, ok := si.byName[base]; ok && si.fields[i].secret && si.fields[i].isString(v) {
				d.src[joinKey(key, base)] = origin{line: e.line}
				d.decodeSecretFile(e.value, v.FieldByIndex(si.fields[i].index), path, depth+1)
				continue
			}
		}
		d.add(e.line, path, "unknown key"+suggest(e.key, si))
	}
	for _, f := range si.fields {
		first, a := seen[f.name]
		second, b := seen[f.name+"_file"]
		if f.secret && a && b {
			d.add(max(first, second), joinKey(key, f.name), fmt.Sprintf("set either %s or %s_file, not both", f.name, f.name))
		}
	}
}

func (f field) isString(v reflect.Value) bool {
	return v.Type().FieldByIndex(f.index).Type.Kind() == reflect.String
}

// decodeSecretFile reads the file named by a <key>_file value into v.
func (d *decoder) decodeSecretFile(n ast.Node, v reflect.Value, key string, depth int) {
	var path string
	d.decodeValue(n, reflect.ValueOf(&path).Elem(), key, depth)
	if path == "" {
		return
	}
	s, err := d.readFile(path)
	if err != nil {
		d.add(nodeLine(n), key, fmt.Sprintf("reading %s: %v", path, err))
		return
	}
	v.SetString(s)
}

func (d *decoder) decodeSlice(n ast.Node, v reflect.Value, key string, depth int) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.typeError(n, key, "a list")
		return
	}
	out := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
	for i, item := range seq.Values {
		path := fmt.Sprintf("%s[%d]", key, i)
		d.src[path] = origin{line: nodeLine(item)}
		d.decodeValue(item, out.Index(i), path, depth+1)
	}
	// A list in the file replaces the default list; it does not extend it.
	v.Set(out)
}

func (d *decoder) decodeMap(n ast.Node, v reflect.Value, key string, depth int) {
	if v.Type().Key().Kind() != reflect.String {
		d.decodeWithLibrary(n, v, key)
		return
	}
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.typeError(n, key, "a mapping")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]int{}
	for _, e := range d.entries(m, key, depth) {
		path := joinKey(key, e.key)
		if !e.merged {
			if first, dup := seen[e.key]; dup {
				d.add(e.line, path, fmt.Sprintf("duplicate key (first set on line %d)", first))
				continue
			}
			seen[e.key] = e.line
		}
		d.src[path] = origin{line: e.line}
		elem := reflect.New(v.Type().Elem()).Elem()
		if old := v.MapIndex(reflect.ValueOf(e.key).Convert(v.Type().Key())); old.IsValid() {
			elem.Set(old)
		}
		d.decodeValue(e.value, elem, path, depth+1)
		v.SetMapIndex(reflect.ValueOf(e.key).Convert(v.Type().Key()), elem)
	}
}

// scalarText returns the text of a scalar as written, so that a string
// setting given as 9000 or true still reads as "9000" or "true".
func scalarText(n ast.Node) (string, bool) {
	switch x := n.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		if x.Value == nil {
			return "", true
		}
		return x.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		if tk := n.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

func keyText(k ast.MapKeyNode) (string, bool) {
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value, true
	}
	switch k.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode:
		if tk := k.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

func describe(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	default:
		return "a " + strings.ToLower(n.Type().String())
	}
}

func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// parentKey strips the last ".name" or "[i]" from a key path.
func parentKey(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

func nodeLine(n ast.Node) int {
	if isNil(n) {
		return 0
	}
	return tokenLine(n.GetToken())
}

func tokenLine(tk *token.Token) int {
	if tk == nil || tk.Position == nil {
		return 0
	}
	return tk.Position.Line
}

// isNil also catches typed nil pointers stored in an ast.Node interface.
func isNil(n ast.Node) bool {
	if n == nil {
		return true
	}
	v := reflect.ValueOf(n)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// suggest proposes the closest known key, for typos like "idle_timout"
// and near-misses like "listen_addr".
func suggest(key string, si *structInfo) string {
	if len(key) > 64 {
		return ""
	}
	best, bestDist := "", 3
	for _, f := range si.fields {
		if dist := levenshtein(key, f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best == "" {
		for _, f := range si.fields {
			if len(f.name) >= 4 && (strings.HasPrefix(key, f.name) || strings.HasPrefix(f.name, key) && len(key) >= 4) {
				best = f.name
				break
			}
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
