package keystore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// writeKeyFile writes a new random 32-byte root key file with mode perm.
func writeKeyFile(t *testing.T, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "root.key")
	if err := os.WriteFile(path, randBytes(32), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantSourceError checks that err is a *RootSourceError for a keystore
// created with created and opened with given.
func wantSourceError(t *testing.T, what string, err error, created, given keystore.RootSource) *keystore.RootSourceError {
	t.Helper()
	var se *keystore.RootSourceError
	if !errors.As(err, &se) || !errors.Is(err, keystore.ErrRootSource) || se.Created != created || se.Given != given {
		t.Fatalf("%s err = %v, want a *RootSourceError (created with %q, given %q)", what, err, created, given)
	}
	return se
}

// openErr opens a keystore that must not open, and returns the error.
func openErr(t *testing.T, dir string, opts keystore.Options) error {
	t.Helper()
	ks, err := keystore.Open(t.Context(), dir, opts)
	if err == nil {
		ks.Close()
		t.Fatalf("keystore.Open(%s, %+v) err = nil, want an error", dir, opts)
	}
	return err
}

// TestRootKeyFile: a keystore made with a root key file kept apart opens
// with that file only; the file must be 32 bytes that only its owner may
// read or write, and is never made by the keystore.
func TestRootKeyFile(t *testing.T) {
	t.Parallel()
	keyFile := writeKeyFile(t, 0o600)
	dir := filepath.Join(t.TempDir(), "ks")
	ks := open(t, dir, keystore.Options{RootKeyFile: keyFile})
	if !ks.Created || ks.RootSource != keystore.SourceKeyFile {
		t.Errorf("Open(RootKeyFile): Created %v, RootSource %q; want true, %q", ks.Created, ks.RootSource, keystore.SourceKeyFile)
	}
	id, blob := newKey(t, ks)
	closeKS(t, ks)
	if _, err := os.Stat(filepath.Join(dir, keystore.RootKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a keystore with a root key file kept apart has a root.key beside it (%v)", err)
	}
	ks = open(t, dir, keystore.Options{RootKeyFile: keyFile})
	check(t, ks, id, blob)
	closeKS(t, ks)

	wantSourceError(t, "Open() without the root key file", openErr(t, dir, keystore.Options{}), keystore.SourceKeyFile, "")
	wantSourceError(t, "Open(passphrase)", openErr(t, dir, keystore.Options{Passphrase: []byte("p")}), keystore.SourceKeyFile, keystore.SourcePassphrase)
	if err := openErr(t, dir, keystore.Options{RootKeyFile: writeKeyFile(t, 0o600)}); !errors.Is(err, kms.ErrWrongRootKey) {
		t.Errorf("Open(another root key file) err = %v, want ErrWrongRootKey", err)
	}

	for _, tc := range []struct {
		name  string
		setup func(path string) error
		want  string
	}{
		{"group readable", func(p string) error { return os.Chmod(p, 0o640) }, "has mode 0640: others than its owner may read or change it; make it private (chmod 600 "},
		{"world writable", func(p string) error { return os.Chmod(p, 0o602) }, "has mode 0602"},
		{"short", func(p string) error { return os.WriteFile(p, randBytes(31), 0o600) }, "is 31 bytes, want 32"},
		{"long", func(p string) error { return os.WriteFile(p, randBytes(64), 0o600) }, "is longer than 32 bytes, want 32"},
		{"missing", func(p string) error { return nil }, "is missing; without it no key in the keystore can be used"},
		{"a directory", func(p string) error { return os.Mkdir(p, 0o700) }, "is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "root.key")
			if tc.name != "missing" && tc.name != "a directory" {
				data, err := os.ReadFile(keyFile)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.setup(p); err != nil {
				t.Fatal(err)
			}
			err := openErr(t, dir, keystore.Options{RootKeyFile: p})
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("Open(root key file %s) err = %q, want it to name the file and say %q", tc.name, err, tc.want)
			}
		})
	}
	// Still opens with the right file after all that.
	ks = open(t, dir, keystore.Options{RootKeyFile: keyFile})
	check(t, ks, id, blob)
	closeKS(t, ks)
}

// TestCreateWithBadRootKeyFile: a keystore is not created with a root key
// file that is missing or exposed; nothing is left that would stop a later
// creation.
func TestCreateWithBadRootKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(t.TempDir(), "none.key")
	err := openErr(t, dir, keystore.Options{RootKeyFile: missing})
	if !errors.Is(err, keystore.ErrNoRootKeyFile) || !strings.Contains(err.Error(), missing) {
		t.Errorf("creating with a missing root key file: err = %v, want ErrNoRootKeyFile naming %s", err, missing)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("creating with a missing root key file made it (%v)", err)
	}
	exposed := writeKeyFile(t, 0o644)
	if err := openErr(t, dir, keystore.Options{RootKeyFile: exposed}); !strings.Contains(err.Error(), "has mode 0644") {
		t.Errorf("creating with a root key file of mode 0644: err = %v, want the mode refused", err)
	}
	if err := openErr(t, dir, keystore.Options{MustExist: true}); !errors.Is(err, keystore.ErrNoKeystore) {
		t.Errorf("after failed creations: Open(MustExist) err = %v, want ErrNoKeystore", err)
	}
	good := writeKeyFile(t, 0o600)
	ks := open(t, dir, keystore.Options{RootKeyFile: good})
	if !ks.Created {
		t.Error("Created = false after failed creations")
	}
	closeKS(t, ks)
}

// TestRootKeyFileStandsInForRootKey: root.key beside a keystore may be moved
// away and given as a root key file; root.key itself must be private too.
func TestRootKeyFileStandsInForRootKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ks := open(t, dir, keystore.Options{})
	id, blob := newKey(t, ks)
	closeKS(t, ks)
	rootPath := filepath.Join(dir, keystore.RootKeyName)
	moved := filepath.Join(t.TempDir(), "moved.key")
	if err := os.Rename(rootPath, moved); err != nil {
		t.Fatal(err)
	}
	ks = open(t, dir, keystore.Options{RootKeyFile: moved})
	check(t, ks, id, blob)
	if ks.RootSource != keystore.SourceRootFile {
		t.Errorf("RootSource = %q, want %q (as created)", ks.RootSource, keystore.SourceRootFile)
	}
	closeKS(t, ks)
	if err := openErr(t, dir, keystore.Options{RootKeyFile: writeKeyFile(t, 0o600)}); !errors.Is(err, kms.ErrWrongRootKey) {
		t.Errorf("Open(another root key file) err = %v, want ErrWrongRootKey", err)
	}
	if err := os.Rename(moved, rootPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(rootPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := openErr(t, dir, keystore.Options{}); !strings.Contains(err.Error(), rootPath+" has mode 0644") {
		t.Errorf("Open() with root.key of mode 0644 err = %v, want the mode refused", err)
	}
}

// TestRootSources: a keystore opens only with the root key source it was
// created with, and says which it was; more than one source is refused.
func TestRootSources(t *testing.T) {
	t.Parallel()
	pass := []byte("correct horse battery staple")
	keyFile := writeKeyFile(t, 0o600)
	ppDir, kfDir := t.TempDir(), t.TempDir()
	closeKS(t, open(t, ppDir, keystore.Options{Passphrase: pass}))
	closeKS(t, open(t, kfDir, keystore.Options{RootKeyFile: keyFile}))

	wantSourceError(t, "passphrase keystore, Open(root key file)", openErr(t, ppDir, keystore.Options{RootKeyFile: keyFile}), keystore.SourcePassphrase, keystore.SourceKeyFile)
	if err := openErr(t, ppDir, keystore.Options{}); !errors.Is(err, keystore.ErrPassphraseRequired) {
		t.Errorf("passphrase keystore, Open() err = %v, want ErrPassphraseRequired", err)
	}
	err := openErr(t, kfDir, keystore.Options{Passphrase: pass})
	wantSourceError(t, "key file keystore, Open(passphrase)", err, keystore.SourceKeyFile, keystore.SourcePassphrase)
	if want := "keystore: " + kfDir + ": its root key comes from a root key file, not from a passphrase"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}

	err = openErr(t, t.TempDir(), keystore.Options{Passphrase: pass, RootKeyFile: keyFile})
	if !strings.Contains(err.Error(), "more than one root key source given (a root key file and a passphrase)") {
		t.Errorf("Open(two sources) err = %v", err)
	}
}

// TestOpenStoreNeedsRootSource: a keystore on a store without a directory
// (as PostgreSQL's) has no root.key to make, so it is created only with a
// root key source, and opened only with it.
func TestOpenStoreNeedsRootSource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, keystore.DBName))
	if err != nil {
		t.Fatal(err)
	}
	target := keystore.Target{Store: store, Name: "the store"}
	if _, err := keystore.OpenStore(t.Context(), target, keystore.Options{}); !errors.Is(err, keystore.ErrNoRootSource) {
		t.Fatalf("OpenStore() of a new store without a root key source err = %v, want ErrNoRootSource", err)
	}
	if err := keystore.CheckEmpty(t.Context(), target); err != nil {
		t.Errorf("the refused creation wrote into the store: %v", err)
	}
	keyFile := writeKeyFile(t, 0o600)
	ks, err := keystore.OpenStore(t.Context(), target, keystore.Options{RootKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	if !ks.Created || ks.Name != "the store" || ks.Dir != "" {
		t.Errorf("OpenStore: Created %v, Name %q, Dir %q", ks.Created, ks.Name, ks.Dir)
	}
	id, blob := newKey(t, ks)
	closeKS(t, ks) // closes the store

	wantSourceError(t, "Open(dir) without the root key file", openErr(t, dir, keystore.Options{}), keystore.SourceKeyFile, "")
	ks = open(t, dir, keystore.Options{RootKeyFile: keyFile})
	check(t, ks, id, blob)
	closeKS(t, ks)
}
