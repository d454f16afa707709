package httpserver

import (
	"go/build"
	"slices"
	"strings"
	"testing"
)

// TestImports: the lean server is HTTP and nothing else. It imports
// nothing of this module (package awsapi, package kms, or any other), only
// the standard library and golang.org/x/sys, on every system, in its code
// and in its tests; so neither can come to depend on what it serves.
func TestImports(t *testing.T) {
	for _, goos := range []string{"linux", "darwin", "freebsd", "windows"} {
		ctxt := build.Default
		ctxt.GOOS = goos
		p, err := ctxt.ImportDir(".", 0)
		if err != nil {
			t.Fatalf("GOOS=%s: reading the package: %v", goos, err)
		}
		if p.Name != "httpserver" || len(p.GoFiles) == 0 {
			t.Fatalf("GOOS=%s: package %q with files %q", goos, p.Name, p.GoFiles)
		}
		for _, path := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") && !strings.HasPrefix(path, "golang.org/x/sys/") {
				t.Errorf("GOOS=%s: the lean server imports %q: only the standard library and golang.org/x/sys may be imported", goos, path)
			}
		}
	}
}
