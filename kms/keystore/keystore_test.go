package keystore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

func open(t *testing.T, dir string, opts keystore.Options) *keystore.Keystore {
	t.Helper()
	ks, err := keystore.Open(t.Context(), dir, opts)
	if err != nil {
		t.Fatalf("keystore.Open(%s) err = %v, want nil", dir, err)
	}
	return ks
}

func closeKS(t *testing.T, ks *keystore.Keystore) {
	t.Helper()
	if err := ks.Close(); err != nil {
		t.Fatalf("Close() err = %v", err)
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// newKey creates a key and a blob under it; check verifies both later.
func newKey(t *testing.T, ks *keystore.Keystore) (id string, blob []byte) {
	t.Helper()
	out, err := ks.CreateKey(t.Context(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ks.Encrypt(t.Context(), &kms.EncryptInput{KeyId: out.KeyMetadata.KeyId, Plaintext: []byte("persisted")})
	if err != nil {
		t.Fatal(err)
	}
	return out.KeyMetadata.KeyId, enc.CiphertextBlob
}

func check(t *testing.T, ks *keystore.Keystore, id string, blob []byte) {
	t.Helper()
	dec, err := ks.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: blob, KeyId: id})
	if err != nil || string(dec.Plaintext) != "persisted" {
		t.Fatalf("Decrypt() after reopening = %v, %v; want %q", dec, err, "persisted")
	}
}

func TestOpenCreatesThenReuses(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a", "envelope")
	ks := open(t, dir, keystore.Options{})
	if !ks.Created || ks.Dir != dir {
		t.Errorf("first Open: Created %v, Dir %q; want true, %q", ks.Created, ks.Dir, dir)
	}
	for _, p := range []string{dir, filepath.Dir(dir)} {
		if m := mode(t, p); m != 0o700 {
			t.Errorf("%s has mode %v, want 0700", p, m)
		}
	}
	for _, name := range []string{keystore.DBName, keystore.RootKeyName} {
		if m := mode(t, filepath.Join(dir, name)); m != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, m)
		}
	}
	root, err := os.ReadFile(filepath.Join(dir, keystore.RootKeyName))
	if err != nil || len(root) != 32 {
		t.Fatalf("root.key: %d bytes, %v; want 32", len(root), err)
	}
	id, blob := newKey(t, ks)
	closeKS(t, ks)

	ks = open(t, dir, keystore.Options{})
	if ks.Created {
		t.Error("second Open: Created = true, want false")
	}
	check(t, ks, id, blob)
	closeKS(t, ks)
	if again, _ := os.ReadFile(filepath.Join(dir, keystore.RootKeyName)); !bytes.Equal(again, root) {
		t.Error("reopening changed root.key")
	}
	// A passphrase given to a root-key-file keystore is refused: it is not
	// what protects the keystore.
	ks, err = keystore.Open(t.Context(), dir, keystore.Options{Passphrase: []byte("not its root key")})
	var se *keystore.RootSourceError
	if !errors.As(err, &se) || se.Created != keystore.SourceRootFile || se.Given != keystore.SourcePassphrase {
		if err == nil {
			ks.Close()
		}
		t.Fatalf("keystore.Open(passphrase) of a root.key keystore err = %v, want a *RootSourceError (created with root.key, given a passphrase)", err)
	}
}

func TestOpenServiceOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ks := open(t, dir, keystore.Options{Service: kms.Options{Region: "eu-west-3", AccountID: "123456789012"}})
	defer closeKS(t, ks)
	out, err := ks.CreateKey(t.Context(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:kms:eu-west-3:123456789012:key/" + out.KeyMetadata.KeyId; out.KeyMetadata.Arn != want {
		t.Errorf("Arn = %q, want %q", out.KeyMetadata.Arn, want)
	}
}

func TestOpenMissingRootKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ks := open(t, dir, keystore.Options{})
	newKey(t, ks)
	closeKS(t, ks)
	rootPath := filepath.Join(dir, keystore.RootKeyName)
	if err := os.Remove(rootPath); err != nil {
		t.Fatal(err)
	}
	for range 2 { // and the failure does not "repair" anything
		ks, err := keystore.Open(t.Context(), dir, keystore.Options{})
		if err == nil {
			ks.Close()
			t.Fatal("keystore.Open() without root.key err = nil, want an error")
		}
		if !strings.Contains(err.Error(), rootPath) {
			t.Errorf("keystore.Open() err = %q, want it to name %s", err, rootPath)
		}
		if _, serr := os.Stat(rootPath); !errors.Is(serr, os.ErrNotExist) {
			t.Fatalf("keystore.Open() created a new root.key (%v)", serr)
		}
	}
}

func TestOpenWrongRootKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ks := open(t, dir, keystore.Options{})
	id, blob := newKey(t, ks)
	closeKS(t, ks)
	rootPath := filepath.Join(dir, keystore.RootKeyName)
	good, err := os.ReadFile(rootPath)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		data  []byte
		wrong bool // the error wraps kms.ErrWrongRootKey
	}{
		{"another key", randBytes(32), true},
		{"one bit flipped", flip(good, 31), true},
		{"zeros", make([]byte, 32), true},
		{"short", good[:31], false},
		{"long", append(bytes.Clone(good), 0), false},
		{"empty", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(rootPath, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			ks, err := keystore.Open(t.Context(), dir, keystore.Options{})
			if err == nil {
				ks.Close()
				t.Fatal("keystore.Open() with a damaged root.key err = nil, want an error")
			}
			if errors.Is(err, kms.ErrWrongRootKey) != tc.wrong {
				t.Errorf("keystore.Open() err = %v; errors.Is(err, ErrWrongRootKey) = %v, want %v", err, !tc.wrong, tc.wrong)
			}
			if !tc.wrong && !strings.Contains(err.Error(), rootPath) {
				t.Errorf("keystore.Open() err = %q, want it to name %s", err, rootPath)
			}
		})
	}
	// The keystore was not touched: the right key still opens it.
	if err := os.WriteFile(rootPath, good, 0o600); err != nil {
		t.Fatal(err)
	}
	ks = open(t, dir, keystore.Options{})
	check(t, ks, id, blob)
	closeKS(t, ks)
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 1
	return b
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestPassphraseKeystore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "envelope")
	pass := []byte("correct horse battery staple")
	ks := open(t, dir, keystore.Options{Passphrase: pass})
	if !ks.Created {
		t.Error("Created = false for a new keystore")
	}
	id, blob := newKey(t, ks)
	closeKS(t, ks)

	if _, err := os.Stat(filepath.Join(dir, keystore.RootKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a passphrase keystore has a root.key file (%v)", err)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("keystore directory mode %v, want 0700", m)
	}
	if m := mode(t, filepath.Join(dir, keystore.DBName)); m != 0o600 {
		t.Errorf("keystore.db mode %v, want 0600", m)
	}

	ks = open(t, dir, keystore.Options{Passphrase: bytes.Clone(pass)})
	if ks.Created {
		t.Error("Created = true when reopening")
	}
	check(t, ks, id, blob)
	closeKS(t, ks)

	for _, tc := range []struct {
		name string
		pass []byte
		want error
	}{
		{"wrong passphrase", []byte("correct horse battery stapler"), kms.ErrWrongRootKey},
		{"empty passphrase", []byte{}, kms.ErrWrongRootKey},
		{"no passphrase", nil, keystore.ErrPassphraseRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := keystore.Open(t.Context(), dir, keystore.Options{Passphrase: tc.pass})
			if err == nil {
				ks.Close()
				t.Fatalf("keystore.Open(%s) err = nil, want %v", tc.name, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("keystore.Open(%s) err = %v, want errors.Is %v", tc.name, err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, keystore.RootKeyName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed opens created a root.key file (%v)", err)
	}
	// Still readable with the right passphrase after the failures.
	ks = open(t, dir, keystore.Options{Passphrase: pass})
	check(t, ks, id, blob)
	closeKS(t, ks)
}

// TestDir checks where the keystore lives by default. It uses t.Setenv, so
// it does not run in parallel.
func TestDir(t *testing.T) {
	home := t.TempDir()
	for _, tc := range []struct {
		name                  string
		envelopeHome, xdgData string
		want                  string
	}{
		{"ENVELOPE_HOME first", "/srv/envelope", "/xdg", "/srv/envelope"},
		{"then XDG_DATA_HOME", "", "/xdg/data", "/xdg/data/envelope"},
		{"then ~/.local/share", "", "", filepath.Join(home, ".local", "share", "envelope")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			t.Setenv("ENVELOPE_HOME", tc.envelopeHome)
			t.Setenv("XDG_DATA_HOME", tc.xdgData)
			got, err := keystore.Dir()
			if err != nil || got != tc.want {
				t.Errorf("Dir() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestOpenAfterCrashDuringCreation simulates a first Open killed after it
// recorded the root key source ("file") in the database but before root.key
// was written (or while it was empty). No key and no root-key check were ever
// written, so nothing depends on any root key: Open can, and should, finish
// creating the keystore instead of refusing it forever.
func TestOpenAfterCrashDuringCreation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		rootKey []byte // nil: no file
	}{
		{"root.key never created", nil},
		{"root.key created empty", []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// The state the first transaction of a first Open leaves.
			st, err := sqlite.Open(filepath.Join(dir, keystore.DBName))
			if err != nil {
				t.Fatal(err)
			}
			err = st.Update(context.Background(), func(tx kms.Tx) error {
				return tx.PutMeta("root-source", []byte("file"))
			})
			if cerr := st.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.rootKey != nil {
				if err := os.WriteFile(filepath.Join(dir, keystore.RootKeyName), tc.rootKey, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			ks, err := keystore.Open(t.Context(), dir, keystore.Options{})
			if err != nil {
				t.Errorf("REGRESSION (was a known bug): a keystore whose first Open was killed between recording its root key source and writing root.key can never be opened: %v", err)
			}
			newKey(t, ks)
			closeKS(t, ks)
		})
	}
}

func TestOpenMustExist(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "none")
	ks, err := keystore.Open(t.Context(), dir, keystore.Options{MustExist: true})
	if err == nil {
		ks.Close()
		t.Fatal("keystore.Open(MustExist) of no keystore err = nil, want ErrNoKeystore")
	}
	if !errors.Is(err, keystore.ErrNoKeystore) {
		t.Errorf("keystore.Open(MustExist) err = %v, want errors.Is ErrNoKeystore", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("keystore.Open(MustExist) created %s (%v)", dir, err)
	}
	ks = open(t, dir, keystore.Options{})
	id, blob := newKey(t, ks)
	closeKS(t, ks)
	ks = open(t, dir, keystore.Options{MustExist: true})
	if ks.Created {
		t.Error("Created = true for an existing keystore")
	}
	check(t, ks, id, blob)
	closeKS(t, ks)
}

// TestOpenIdentity: the region and account of the ARNs are fixed when the
// keystore is created; later opens give the same or none.
func TestOpenIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	svc := kms.Options{Region: "ap-south-2", AccountID: "210987654321"}
	ks := open(t, dir, keystore.Options{Service: svc})
	id, blob := newKey(t, ks)
	arn := ks.KeyARN(id)
	if want := "arn:aws:kms:ap-south-2:210987654321:key/" + id; arn != want {
		t.Fatalf("KeyARN = %q, want %q", arn, want)
	}
	closeKS(t, ks)

	for _, o := range []kms.Options{{}, svc, {Region: svc.Region}, {AccountID: svc.AccountID}} {
		ks := open(t, dir, keystore.Options{Service: o})
		if got := ks.KeyARN(id); got != arn {
			t.Errorf("reopened with %+v: KeyARN = %q, want %q", o, got, arn)
		}
		check(t, ks, arn, blob)
		closeKS(t, ks)
	}
	for _, o := range []kms.Options{{Region: "us-east-1"}, {AccountID: "111122223333"}, {Region: "eu-west-1", AccountID: svc.AccountID}} {
		ks, err := keystore.Open(t.Context(), dir, keystore.Options{Service: o})
		if err == nil {
			ks.Close()
			t.Errorf("keystore.Open(%+v) of a %s keystore err = nil, want ErrIdentityMismatch", o, svc.Region)
			continue
		}
		if !errors.Is(err, keystore.ErrIdentityMismatch) {
			t.Errorf("keystore.Open(%+v) err = %v, want errors.Is ErrIdentityMismatch", o, err)
		}
	}

	// A keystore created without options gets the defaults, for good.
	dir2 := t.TempDir()
	closeKS(t, open(t, dir2, keystore.Options{}))
	if _, err := keystore.Open(t.Context(), dir2, keystore.Options{Service: kms.Options{Region: "eu-west-1"}}); !errors.Is(err, keystore.ErrIdentityMismatch) {
		t.Errorf("keystore.Open(eu-west-1) of a default keystore err = %v, want ErrIdentityMismatch", err)
	}
	ks = open(t, dir2, keystore.Options{Service: kms.Options{Region: kms.DefaultRegion, AccountID: kms.DefaultAccountID}})
	closeKS(t, ks)
}

// TestCreatedAfterCrashBeforeAnyRecord: a first Open killed after SQLite made
// keystore.db but before anything was recorded leaves an empty database. The
// next Open creates the keystore (root key and all); it should say so.
func TestCreatedAfterCrashBeforeAnyRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, keystore.DBName))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	ks := open(t, dir, keystore.Options{})
	defer closeKS(t, ks)
	if _, err := os.Stat(filepath.Join(dir, keystore.RootKeyName)); err != nil {
		t.Fatalf("no root.key after Open: %v", err)
	}
	newKey(t, ks)
	if !ks.Created {
		t.Errorf("REGRESSION (was a known bug): Open created the root key and the keystore records but reports Created = false (it tests only whether keystore.db existed)")
	}
}
