package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with the configuration.
type Problem struct {
	// File and Line locate a value that came from the config file; Line is
	// 0 when the problem concerns the file as a whole or a default value.
	File string
	Line int
	// Key is the path of the setting, like apps[1].allow_groups[0].
	Key string
	Msg string
	// Env names the environment variable the value came from, if it did.
	Env string
}

// String formats the problem as `file:line: key: msg`, or `env VAR: msg`
// for values taken from the environment.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.Env != "":
		// The variable name already says which key it sets.
		fmt.Fprintf(&b, "env %s: ", p.Env)
	case p.File != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", p.File, p.Line)
	case p.File != "":
		fmt.Fprintf(&b, "%s: ", p.File)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" && p.Env == "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is every problem found in one load, in file order.
type Error struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// newError sorts problems into reading order: file lines first, then
// environment variables, then values that have no location.
func newError(problems []Problem) *Error {
	rank := func(p Problem) int {
		switch {
		case p.Env != "":
			return 1
		case p.File != "" || p.Line > 0:
			return 0
		default:
			return 2
		}
	}
	sorted := append([]Problem(nil), problems...)
	sort.SliceStable(sorted, func(i, j int) bool {
		ri, rj := rank(sorted[i]), rank(sorted[j])
		if ri != rj {
			return ri < rj
		}
		return ri == 0 && sorted[i].Line < sorted[j].Line
	})
	return &Error{Problems: sorted}
}
