package envelope_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/envelopekms/envelope"

// layers is ARCHITECTURE.md's table of what each package may import from
// this module ("." is the module root). A package missing from it fails the
// test: a new package takes its place in the layering on purpose.
var layers = map[string][]string{
	"suite":                          {},
	"internal/format":                {"suite"},
	"internal/durable":               {},
	"kms/policy":                     {},
	"kms":                            {"internal/format", "suite", "kms/policy"},
	"kms/store/sqlite":               {"kms", "internal/durable"},
	"kms/store/postgres":             {"kms"},
	"kms/store/storetest":            {"kms"},
	"kms/keystore":                   {"kms", "kms/store/sqlite", "internal/durable"},
	"kms/awsclient":                  {"kms"},
	"kms/awsapi/internal/httpserver": {},
	"kms/awsapi":                     {"kms", "internal/durable", "kms/awsapi/internal/httpserver"},
	"keyring/internal/ecdhwire":      {"internal/format", "suite"},
	"keyring":                        {"internal/format", "suite", "keyring/internal/ecdhwire"},
	"keyring/awskms":                 {"keyring", "kms", "internal/format", "suite", "keyring/internal/ecdhwire"},
	"materials":                      {"keyring", "internal/format", "suite"},
	".":                              {"materials", "keyring", "internal/format", "suite"},
	"cmd/envelope":                   {"*"},
}

// forbidden are imports from outside the module that a package must not
// have: the format library stays free of cloud SDKs, SQL and HTTP servers,
// and the KMS core of SQL and HTTP.
var forbidden = map[string][]string{
	"suite":                     {"github.com/aws/", "modernc.org/", "github.com/jackc/", "database/sql", "net/http"},
	"internal/format":           {"github.com/aws/", "modernc.org/", "github.com/jackc/", "database/sql", "net/http"},
	"keyring":                   {"github.com/aws/", "modernc.org/", "github.com/jackc/", "database/sql", "net/http"},
	"keyring/internal/ecdhwire": {"github.com/aws/", "modernc.org/", "github.com/jackc/", "database/sql", "net/http"},
	"keyring/awskms":            {"github.com/aws/", "modernc.org/", "github.com/jackc/", "database/sql", "net/http"},
	"materials":                 {"github.com/aws/", "modernc.org/", "github.com/jackc/", "database/sql", "net/http"},
	".":                         {"github.com/aws/", "modernc.org/", "github.com/jackc/", "database/sql", "net/http"},
	"kms":                       {"github.com/aws/", "modernc.org/", "github.com/jackc/", "database/sql", "net/http", "github.com/prometheus/"},
	"kms/policy":                {"github.com/aws/", "modernc.org/", "github.com/jackc/", "database/sql", "net/http", "github.com/prometheus/", "os", "io/fs"},
}

// TestArchitecture checks the import graph against the layering of
// ARCHITECTURE.md: every package imports only the packages below it, nothing
// imports cmd/envelope, and the library packages stay free of heavy
// dependencies.
func TestArchitecture(t *testing.T) {
	imports := packageImports(t)
	for pkg, imps := range imports {
		if strings.HasPrefix(pkg, "bench/") || pkg == "bench" || pkg == "interop" || strings.HasPrefix(pkg, "interop/") {
			continue // tools and test suites (interop/esdkgo is a module of its own), not layers
		}
		allowed, ok := layers[pkg]
		if !ok {
			t.Errorf("package %s is not in the layering (architecture_test.go, ARCHITECTURE.md): give it its place", pkg)
			continue
		}
		for _, imp := range imps {
			if local, ok := strings.CutPrefix(imp, modulePath); ok {
				local = strings.TrimPrefix(local, "/")
				if local == "" {
					local = "."
				}
				if strings.HasPrefix(local, "cmd/") {
					t.Errorf("%s imports %s: nothing imports the CLI", pkg, local)
				} else if !slices.Contains(allowed, "*") && !slices.Contains(allowed, local) {
					t.Errorf("%s imports %s, which is not below it in ARCHITECTURE.md's layering", pkg, local)
				}
				continue
			}
			for _, f := range forbidden[pkg] {
				if imp == f || strings.HasPrefix(imp, f) {
					t.Errorf("%s imports %s: it must stay free of %s", pkg, imp, f)
				}
			}
		}
	}
	for pkg := range layers {
		if _, ok := imports[pkg]; !ok {
			t.Errorf("ARCHITECTURE.md's layering lists %s, which does not exist", pkg)
		}
	}
}

// packageImports returns, for every package directory of the module, the
// imports of its non-test Go files.
func packageImports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		for _, is := range f.Imports {
			imp, err := strconv.Unquote(is.Path.Value)
			if err != nil {
				return err
			}
			if !slices.Contains(out[pkg], imp) {
				out[pkg] = append(out[pkg], imp)
			}
		}
		if _, ok := out[pkg]; !ok {
			out[pkg] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("go.mod"); err != nil {
		t.Fatalf("run from the module root: %v", err)
	}
	return out
}
