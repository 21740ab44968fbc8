// Package policy decides forward-auth access: which application a request
// belongs to and whether the caller may reach it. It is pure (no I/O, no
// clock) and compiled once from the configuration into a table, so the
// decision on every request is a few map lookups and comparisons — no
// database query, no parsing.
//
// Matching, in order:
//  1. Host → application: an exact host first, then the longest matching
//     wildcard suffix ("*.homelab.local" covers every name below
//     homelab.local). A host no application claims gets the default policy
//     (deny unless configured otherwise).
//  2. The application's skip paths (regexes): a match needs no sign-in.
//  3. The application's rules, first match wins. A rule matches on path
//     prefixes or a path regex, methods and client networks; its policy
//     (bypass, deny, one_factor, two_factor) and groups then decide.
//  4. No rule matched: one_factor with the application's allow_groups.
package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// Level is what a matched rule requires.
type Level int

const (
	// Deny refuses everyone.
	Deny Level = iota
	// Bypass lets everyone through without signing in.
	Bypass
	// OneFactor needs a signed-in user (password or a machine credential).
	OneFactor
	// TwoFactor needs a session with a second factor.
	TwoFactor
)

// ParseLevel reads the configuration spelling of a level.
func ParseLevel(s string) (Level, error) {
	switch s {
	case "deny":
		return Deny, nil
	case "bypass":
		return Bypass, nil
	case "one_factor":
		return OneFactor, nil
	case "two_factor":
		return TwoFactor, nil
	}
	return Deny, fmt.Errorf("%q is not one of bypass, deny, one_factor, two_factor", s)
}

func (l Level) String() string {
	switch l {
	case Bypass:
		return "bypass"
	case OneFactor:
		return "one_factor"
	case TwoFactor:
		return "two_factor"
	}
	return "deny"
}

// Result is the outcome of a decision.
type Result int

const (
	// Forbidden: the caller is known (or the rule denies everyone) and may
	// not pass.
	Forbidden Result = iota
	// Allow: pass the request on.
	Allow
	// Login: the caller must sign in (or sign in more strongly) first.
	Login
)

func (r Result) String() string {
	switch r {
	case Allow:
		return "allow"
	case Login:
		return "login"
	}
	return "forbidden"
}

// RuleSpec is one access rule as configured.
type RuleSpec struct {
	// Paths are prefixes of the request path ("/admin" matches "/admin"
	// and "/admin/x", not "/administrator").
	Paths []string
	// PathRegex is matched against the path when set.
	PathRegex string
	// Methods are upper-case HTTP methods; empty matches any.
	Methods []string
	// Networks are client CIDRs or IPs; empty matches any.
	Networks []string
	// Groups the caller must be in (any of them); empty means the app's
	// AllowGroups for one_factor/two_factor.
	Groups []string
	Policy Level
}

// AppSpec is a protected application as configured.
type AppSpec struct {
	Slug string
	// Hosts are exact names or "*.suffix" wildcards, lower case.
	Hosts []string
	// SkipPaths are regexes of paths that need no sign-in.
	SkipPaths []string
	// AllowGroups may use the app; empty means any signed-in user.
	AllowGroups []string
	Rules       []RuleSpec
}

// Spec is the whole input of Compile.
type Spec struct {
	Apps []AppSpec
	// Default is the policy for hosts no app claims: Deny unless set.
	Default Level
}

// App is a compiled application.
type App struct {
	Slug      string
	Index     int // position in Spec.Apps, for callers' side tables
	skip      []skipPath
	rules     []rule
	allow     groupSet
	needsIP   bool
	wildcards []string
}

// NeedsIP reports whether any rule of the app looks at the client
// network, so callers resolve the client IP only when it matters.
func (a *App) NeedsIP() bool { return a != nil && a.needsIP }

type rule struct {
	prefixes []string
	re       *regexp.Regexp
	methods  []string
	nets     []netip.Prefix
	groups   groupSet
	level    Level
}

// groupSet is a small set; nil means "no restriction".
type groupSet []string

func (g groupSet) admits(member []string) bool {
	if g == nil {
		return true
	}
	for _, want := range g {
		if slices.Contains(member, want) {
			return true
		}
	}
	return false
}

type suffix struct {
	suffix string // ".homelab.local"
	app    *App
}

// Table is a compiled Spec. It is immutable and safe for concurrent use.
type Table struct {
	exact    map[string]*App
	suffixes []suffix // longest first
	apps     []*App
	def      Level
}

// Compile checks and compiles spec. Errors name the app and field.
func Compile(spec Spec) (*Table, error) {
	t := &Table{exact: map[string]*App{}, def: spec.Default}
	var errs []error
	seenSuffix := map[string]string{}
	for i, as := range spec.Apps {
		a := &App{Slug: as.Slug, Index: i}
		if len(as.AllowGroups) > 0 {
			a.allow = groupSet(slices.Clone(as.AllowGroups))
		}
		for _, h := range as.Hosts {
			h = strings.ToLower(strings.TrimSpace(h))
			if rest, ok := strings.CutPrefix(h, "*."); ok {
				if rest == "" || strings.ContainsAny(rest, "*/:") {
					errs = append(errs, fmt.Errorf("app %s: bad wildcard host %q", as.Slug, h))
					continue
				}
				if other, dup := seenSuffix[rest]; dup {
					errs = append(errs, fmt.Errorf("app %s: host %q is already claimed by app %s", as.Slug, h, other))
					continue
				}
				seenSuffix[rest] = as.Slug
				t.suffixes = append(t.suffixes, suffix{"." + rest, a})
				a.wildcards = append(a.wildcards, rest)
				continue
			}
			if h == "" || strings.ContainsAny(h, "*/: ") {
				errs = append(errs, fmt.Errorf("app %s: bad host %q", as.Slug, h))
				continue
			}
			if other, dup := t.exact[h]; dup {
				errs = append(errs, fmt.Errorf("app %s: host %q is already claimed by app %s", as.Slug, h, other.Slug))
				continue
			}
			t.exact[h] = a
		}
		for _, p := range as.SkipPaths {
			re, err := regexp.Compile(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("app %s: skip path %q: %v", as.Slug, p, err))
				continue
			}
			a.skip = append(a.skip, newSkipPath(p, re))
		}
		for j, rs := range as.Rules {
			r, err := compileRule(rs)
			if err != nil {
				errs = append(errs, fmt.Errorf("app %s: rules[%d]: %v", as.Slug, j, err))
				continue
			}
			if len(r.nets) > 0 {
				a.needsIP = true
			}
			a.rules = append(a.rules, r)
		}
		t.apps = append(t.apps, a)
	}
	sort.SliceStable(t.suffixes, func(i, j int) bool { return len(t.suffixes[i].suffix) > len(t.suffixes[j].suffix) })
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func compileRule(rs RuleSpec) (rule, error) {
	r := rule{level: rs.Policy}
	for _, p := range rs.Paths {
		if !strings.HasPrefix(p, "/") {
			return rule{}, fmt.Errorf("path %q must start with /", p)
		}
		r.prefixes = append(r.prefixes, p)
	}
	if rs.PathRegex != "" {
		re, err := regexp.Compile(rs.PathRegex)
		if err != nil {
			return rule{}, fmt.Errorf("path_regex: %v", err)
		}
		r.re = re
	}
	for _, m := range rs.Methods {
		r.methods = append(r.methods, strings.ToUpper(m))
	}
	for _, n := range rs.Networks {
		p, err := ParseNetwork(n)
		if err != nil {
			return rule{}, err
		}
		r.nets = append(r.nets, p)
	}
	if len(rs.Groups) > 0 {
		r.groups = groupSet(slices.Clone(rs.Groups))
	}
	return r, nil
}

// ParseNetwork reads a CIDR or a bare IP (a single-host prefix).
func ParseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("network %q is not a CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("network %q is not an IP or CIDR", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// App returns the application serving host (lower case, no port), or nil.
func (t *Table) App(host string) *App {
	if a, ok := t.exact[host]; ok {
		return a
	}
	for _, s := range t.suffixes {
		if len(host) > len(s.suffix) && strings.HasSuffix(host, s.suffix) {
			return s.app
		}
	}
	return nil
}

// Apps lists the compiled applications in configuration order.
func (t *Table) Apps() []*App { return t.apps }

// Request is what the decision looks at.
type Request struct {
	Path   string
	Method string
	// IP is the client address; only read when App.NeedsIP.
	IP netip.Addr
}

// Subject is the caller. The zero Subject is anonymous.
type Subject struct {
	Authenticated bool
	Level         model.AuthLevel
	Groups        []string
}

// Decide returns the decision for a request to app (nil: a host no app
// claims) by subject.
func (t *Table) Decide(app *App, req Request, sub *Subject) Result {
	if app == nil {
		return require(t.def, nil, sub)
	}
	for i := range app.skip {
		if app.skip[i].match(req.Path) {
			return Allow
		}
	}
	for i := range app.rules {
		r := &app.rules[i]
		if !r.matches(req) {
			continue
		}
		g := r.groups
		if g == nil {
			g = app.allow
		}
		return require(r.level, g, sub)
	}
	return require(OneFactor, app.allow, sub)
}

// require applies a level and group restriction to the subject.
func require(l Level, groups groupSet, sub *Subject) Result {
	switch l {
	case Bypass:
		return Allow
	case Deny:
		return Forbidden
	}
	if !sub.Authenticated {
		return Login
	}
	if !groups.admits(sub.Groups) {
		return Forbidden
	}
	if l == TwoFactor && sub.Level < model.LevelTwoFactor {
		// Signing in again cannot help until second factors exist for this
		// user; a login redirect would loop between the app and the portal.
		return Forbidden
	}
	return Allow
}

func (r *rule) matches(req Request) bool {
	if len(r.prefixes) > 0 {
		ok := false
		for _, p := range r.prefixes {
			if hasPathPrefix(req.Path, p) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if r.re != nil && !r.re.MatchString(req.Path) {
		return false
	}
	if len(r.methods) > 0 && !slices.Contains(r.methods, req.Method) {
		return false
	}
	if len(r.nets) > 0 {
		ip := req.IP.Unmap()
		ok := false
		for _, n := range r.nets {
			if n.Contains(ip) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// hasPathPrefix matches whole segments: "/admin" covers "/admin" and
// "/admin/...", not "/administrator". A prefix ending in "/" is plain.
// Case is ignored: many apps behind the gate (the ASP.NET *arr family,
// Jellyfin) route "/Admin" like "/admin", so a rule must catch both; a
// case-sensitive app simply has nothing at the other spelling.
func hasPathPrefix(path, prefix string) bool {
	if len(path) < len(prefix) || !strings.EqualFold(path[:len(prefix)], prefix) {
		return false
	}
	if len(path) == len(prefix) || strings.HasSuffix(prefix, "/") {
		return true
	}
	return path[len(prefix)] == '/' || path[len(prefix)] == '?'
}

// skipPath is a skip-path regex with a shortcut for the common anchored
// form ("^/api/"): a path without the literal prefix is rejected without
// running the regex, which keeps the hot path cheap.
type skipPath struct {
	re       *regexp.Regexp
	prefix   string // literal prefix of an anchored regex, or ""
	complete bool   // the regex is exactly ^prefix
}

func newSkipPath(src string, re *regexp.Regexp) skipPath {
	s := skipPath{re: re}
	if rest, ok := strings.CutPrefix(src, "^"); ok {
		if anchored, err := regexp.Compile(rest); err == nil {
			s.prefix, s.complete = anchored.LiteralPrefix()
		}
	}
	return s
}

func (s *skipPath) match(path string) bool {
	if s.prefix != "" {
		if !strings.HasPrefix(path, s.prefix) {
			return false
		}
		if s.complete {
			return true
		}
	}
	return s.re.MatchString(path)
}
