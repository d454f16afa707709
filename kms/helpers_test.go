package kms_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/store/sqlite"
)

// epoch is where every fake clock starts: a whole second, so that JSON
// timestamps compare exactly.
var epoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is the service's clock in tests: it moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) AdvanceDays(n int) {
	c.mu.Lock()
	c.t = c.t.AddDate(0, 0, n)
	c.mu.Unlock()
}

// env is a service over a real store: SQLite in a temporary directory, or
// another (newEnvOn).
type env struct {
	svc   *kms.Service
	clock *fakeClock
	store kms.Store
}

// openEnv opens a service over a new SQLite store in dir. The caller closes
// the store.
func openEnv(dir string) (*env, error) {
	store, err := sqlite.Open(filepath.Join(dir, "keystore.db"))
	if err != nil {
		return nil, err
	}
	e, err := openEnvOn(store, testRoot())
	if err != nil {
		store.Close()
		return nil, err
	}
	return e, nil
}

// testRoot returns a new random root key.
func testRoot() kms.RootKey {
	key := make([]byte, 32)
	rand.Read(key)
	root, err := kms.NewAESRootKey(key)
	if err != nil {
		panic(err)
	}
	return root
}

// openEnvOn opens a service over store, sealing under root.
func openEnvOn(store kms.Store, root kms.RootKey) (*env, error) {
	clock := newClock()
	svc, err := kms.New(context.Background(), store, root, kms.Options{Now: clock.Now})
	if err != nil {
		return nil, err
	}
	return &env{svc: svc, clock: clock, store: store}, nil
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e, err := openEnv(t.TempDir())
	if err != nil {
		t.Fatalf("opening a test service: %v", err)
	}
	t.Cleanup(func() {
		if err := e.store.Close(); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	return e
}

// newEnvOn returns a service over store (which the caller closes), sealing
// under root.
func newEnvOn(t testing.TB, store kms.Store, root kms.RootKey) *env {
	t.Helper()
	e, err := openEnvOn(store, root)
	if err != nil {
		t.Fatalf("opening a test service: %v", err)
	}
	return e
}

// symKey creates a symmetric key and returns its id.
func (e *env) symKey(t testing.TB) string {
	t.Helper()
	out, err := e.svc.CreateKey(t.Context(), &kms.CreateKeyInput{Description: "test key"})
	if err != nil {
		t.Fatalf("CreateKey() err = %v, want nil", err)
	}
	return out.KeyMetadata.KeyId
}

func (e *env) keyARN(id string) string { return e.svc.KeyARN(id) }

func (e *env) alias(t testing.TB, name, keyID string) {
	t.Helper()
	if _, err := e.svc.CreateAlias(t.Context(), &kms.CreateAliasInput{AliasName: name, TargetKeyId: keyID}); err != nil {
		t.Fatalf("CreateAlias(%q, %q) err = %v, want nil", name, keyID, err)
	}
}

func (e *env) describe(t testing.TB, keyID string) *kms.KeyMetadata {
	t.Helper()
	out, err := e.svc.DescribeKey(t.Context(), &kms.DescribeKeyInput{KeyId: keyID})
	if err != nil {
		t.Fatalf("DescribeKey(%q) err = %v, want nil", keyID, err)
	}
	return out.KeyMetadata
}

func (e *env) encrypt(t testing.TB, keyID string, pt []byte, ec map[string]string) []byte {
	t.Helper()
	out, err := e.svc.Encrypt(t.Context(), &kms.EncryptInput{KeyId: keyID, Plaintext: pt, EncryptionContext: ec})
	if err != nil {
		t.Fatalf("Encrypt(%q) err = %v, want nil", keyID, err)
	}
	return out.CiphertextBlob
}

func (e *env) decrypt(t testing.TB, blob []byte, ec map[string]string) *kms.DecryptOutput {
	t.Helper()
	out, err := e.svc.Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
	if err != nil {
		t.Fatalf("Decrypt() err = %v, want nil", err)
	}
	return out
}

// wantCode checks that err carries the AWS error name code ("" for
// success).
func wantCode(t testing.TB, op string, err error, code string) {
	t.Helper()
	switch {
	case code == "" && err != nil:
		t.Fatalf("%s err = %v, want nil", op, err)
	case code == "":
	case err == nil:
		t.Fatalf("%s err = nil, want %s", op, code)
	case kms.CodeOf(err) != code:
		t.Fatalf("%s err = %v (%s), want %s", op, err, kms.CodeOf(err), code)
	}
	// Every *kms.Error matches its sentinel.
	var ke *kms.Error
	if code != "" && errors.As(err, &ke) && !errors.Is(err, &kms.Error{Code: code}) {
		t.Fatalf("%s: errors.Is(err, &Error{Code: %q}) = false", op, code)
	}
}

func i32(v int32) *int32 { return &v }

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// rsaFixture is one RSA_2048 key shared by the tests of the package, since
// RSA key generation is slow. Tests that change its state run sequentially
// and leave it Enabled.
var rsaFixture struct {
	once sync.Once
	dir  string
	e    *env
	id   string
	err  error
}

// sharedRSA returns the shared service and its RSA_2048 key.
func sharedRSA(t testing.TB) (*env, string) {
	t.Helper()
	f := &rsaFixture
	f.once.Do(func() {
		f.dir, f.err = os.MkdirTemp("", "kms-rsa-fixture-")
		if f.err != nil {
			return
		}
		if f.e, f.err = openEnv(f.dir); f.err != nil {
			return
		}
		var out *kms.CreateKeyOutput
		out, f.err = f.e.svc.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: kms.SpecRSA2048, Description: "shared RSA"})
		if f.err == nil {
			f.id = out.KeyMetadata.KeyId
		}
	})
	if f.err != nil {
		t.Fatalf("creating the shared RSA_2048 key: %v", f.err)
	}
	return f.e, f.id
}

func TestMain(m *testing.M) {
	code := m.Run()
	if f := &rsaFixture; f.dir != "" {
		if f.e != nil {
			if err := f.e.store.Close(); err != nil {
				fmt.Fprintln(os.Stderr, "closing the shared RSA store:", err)
				code = 1
			}
		}
		os.RemoveAll(f.dir)
	}
	os.Exit(code)
}
