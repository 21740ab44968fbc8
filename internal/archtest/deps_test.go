// Package archtest enforces the dependency direction of ARCHITECTURE.md:
// edges → services → storage interfaces → model, with only the composition
// root seeing concrete backends.
package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/gatehouse-sso/gatehouse/"

// edges are the HTTP (and later LDAP) surfaces; they never import each
// other, the composition root or a concrete backend.
var edges = []string{"internal/web", "internal/forwardauth", "internal/oidcop", "internal/api", "internal/ldapd"}

// leaves import nothing of ours but the model. internal/metrics is one so
// that any package may import it (to record) without a cycle.
var leaves = []string{"internal/model", "internal/policy", "internal/httpx", "internal/redirect", "internal/secret", "internal/config", "internal/store", "internal/metrics"}

// backends are known only to the composition root, the CLI and tests.
var backends = []string{"internal/store/sqlstore", "internal/cache"}

func TestDependencyDirection(t *testing.T) {
	root := filepath.Join("..", "..")
	imports := map[string]map[string]bool{} // package dir → imported project packages (non-test files)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "testdata" || strings.HasPrefix(name, ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if imports[rel] == nil {
			imports[rel] = map[string]bool{}
		}
		for _, im := range f.Imports {
			p := strings.Trim(im.Path.Value, `"`)
			if p == "testing" {
				imports[rel]["testing"] = true
			}
			if strings.HasPrefix(p, module) {
				imports[rel][strings.TrimPrefix(p, module)] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 5 {
		t.Fatalf("found only %d packages; is the walk rooted right?", len(imports))
	}

	var problems []string
	bad := func(pkg, dep, why string) { problems = append(problems, pkg+" imports "+dep+": "+why) }
	for pkg, deps := range imports {
		isTestSupport := pkg == "internal/testenv" || strings.HasSuffix(pkg, "storetest") || strings.HasPrefix(pkg, "test/") || strings.HasPrefix(pkg, "bench")
		for dep := range deps {
			switch {
			case dep == "testing" && !isTestSupport:
				bad(pkg, dep, "production code must not import testing")
			case dep == "internal/testenv" && !isTestSupport:
				bad(pkg, dep, "test helpers stay out of the binary")
			case dep == "internal/cli" && pkg != "cmd/gatehouse":
				bad(pkg, dep, "only main calls the CLI")
			case dep == "internal/app" && pkg != "internal/cli" && !isTestSupport:
				bad(pkg, dep, "only the CLI uses the composition root")
			case exact(pkg, leaves) && dep != "internal/model":
				bad(pkg, dep, "leaf packages import only the model")
			case in(dep, backends) && !in(pkg, []string{"internal/app", "internal/cli"}) && !isTestSupport && !strings.HasPrefix(pkg, dep):
				bad(pkg, dep, "concrete backends are wired only by internal/app")
			case in(pkg, edges) && in(dep, edges) && !strings.HasPrefix(dep, pkg):
				bad(pkg, dep, "edges never import each other; internal/app passes callbacks")
			case !in(pkg, edges) && in(dep, edges) && pkg != "internal/app" && !isTestSupport:
				bad(pkg, dep, "services must not depend on an edge")
			}
		}
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

// in reports whether pkg is one of roots or below one.
func in(pkg string, roots []string) bool {
	for _, r := range roots {
		if pkg == r || strings.HasPrefix(pkg, r+"/") {
			return true
		}
	}
	return false
}

// exact reports whether pkg is one of names.
func exact(pkg string, names []string) bool {
	for _, n := range names {
		if pkg == n {
			return true
		}
	}
	return false
}
