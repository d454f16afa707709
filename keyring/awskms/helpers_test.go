package awskms_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/keyring/awskms"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
	"github.com/envelopekms/envelope/suite"
)

// The tests run against envelope's own KMS, an embedded keystore in a
// temporary directory: the keyrings talk to a real service, not a mock.
// Where a test needs the KMS to misbehave it wraps the service in a spyKMS,
// which passes every call through and changes at most one answer.

// newKMS opens a fresh keystore in a temporary directory.
func newKMS(t testing.TB) *kms.Service {
	t.Helper()
	ks, err := keystore.Open(t.Context(), t.TempDir(), keystore.Options{})
	if err != nil {
		t.Fatalf("keystore.Open err = %v, want nil", err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks.Service
}

// newKey creates a KMS key of the given spec ("" for SYMMETRIC_DEFAULT).
func newKey(t testing.TB, svc *kms.Service, spec string) *kms.KeyMetadata {
	t.Helper()
	out, err := svc.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: spec})
	if err != nil {
		t.Fatalf("CreateKey(%q) err = %v, want nil", spec, err)
	}
	return out.KeyMetadata
}

// newAlias points alias ("alias/NAME") at the key with id keyID.
func newAlias(t testing.TB, svc *kms.Service, alias, keyID string) {
	t.Helper()
	if _, err := svc.CreateAlias(context.Background(), &kms.CreateAliasInput{AliasName: alias, TargetKeyId: keyID}); err != nil {
		t.Fatalf("CreateAlias(%q, %q) err = %v, want nil", alias, keyID, err)
	}
}

// The RSA keyring tests share one RSA_2048 key (generating RSA keys is slow,
// more so under -race) in a keystore that TestMain removes. No test changes
// its state.
var (
	rsaOnce    sync.Once
	rsaSvc     *kms.Service
	rsaKeyARN  string
	rsaSymARN  string // a symmetric key beside it, for multi-keyrings
	rsaErr     error
	rsaCleanup func()
)

func sharedRSA(t testing.TB) (svc *kms.Service, rsaARN, symARN string) {
	t.Helper()
	rsaOnce.Do(func() {
		dir, err := os.MkdirTemp("", "awskms-rsa-test-")
		if err != nil {
			rsaErr = err
			return
		}
		ks, err := keystore.Open(context.Background(), dir, keystore.Options{})
		if err != nil {
			os.RemoveAll(dir)
			rsaErr = err
			return
		}
		rsaCleanup = func() { ks.Close(); os.RemoveAll(dir) }
		rsaSvc = ks.Service
		out, err := rsaSvc.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: kms.SpecRSA2048})
		if err != nil {
			rsaErr = err
			return
		}
		rsaKeyARN = out.KeyMetadata.Arn
		out, err = rsaSvc.CreateKey(context.Background(), &kms.CreateKeyInput{})
		if err != nil {
			rsaErr = err
			return
		}
		rsaSymARN = out.KeyMetadata.Arn
	})
	if rsaErr != nil {
		t.Fatalf("setting up the shared RSA KMS key: %v", rsaErr)
	}
	return rsaSvc, rsaKeyARN, rsaSymARN
}

func TestMain(m *testing.M) {
	code := m.Run()
	if rsaCleanup != nil {
		rsaCleanup()
	}
	os.Exit(code)
}

// spyKMS is the real KMS with a tap: it counts the calls the keyrings make,
// keeps their inputs, and can change one kind of answer.
type spyKMS struct {
	svc *kms.Service

	// Optional edits, set before use. n counts calls of that operation
	// from 0.
	editGenerate func(out *kms.GenerateDataKeyOutput)
	editEncrypt  func(out *kms.EncryptOutput)
	editDecrypt  func(n int, out *kms.DecryptOutput)
	failGetPub   func(n int) error
	editGetPub   func(out *kms.GetPublicKeyOutput)

	mu         sync.Mutex
	calls      map[string]int
	generateIn []kms.GenerateDataKeyInput
	encryptIn  []kms.EncryptInput
	decryptIn  []kms.DecryptInput
	decryptOut []*kms.DecryptOutput
}

var (
	_ awskms.Client    = (*spyKMS)(nil)
	_ awskms.RSAClient = (*spyKMS)(nil)
)

func newSpy(svc *kms.Service) *spyKMS { return &spyKMS{svc: svc, calls: map[string]int{}} }

// count records a call and returns its index among calls of op.
func (s *spyKMS) count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.calls[op]
	s.calls[op]++
	return n
}

// Calls returns how many times op was called.
func (s *spyKMS) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Total returns the number of calls of any operation.
func (s *spyKMS) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

func (s *spyKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput) (*kms.GenerateDataKeyOutput, error) {
	s.count("GenerateDataKey")
	s.mu.Lock()
	s.generateIn = append(s.generateIn, *in)
	s.mu.Unlock()
	out, err := s.svc.GenerateDataKey(ctx, in)
	if err == nil && s.editGenerate != nil {
		s.editGenerate(out)
	}
	return out, err
}

func (s *spyKMS) Encrypt(ctx context.Context, in *kms.EncryptInput) (*kms.EncryptOutput, error) {
	s.count("Encrypt")
	s.mu.Lock()
	s.encryptIn = append(s.encryptIn, *in)
	s.mu.Unlock()
	out, err := s.svc.Encrypt(ctx, in)
	if err == nil && s.editEncrypt != nil {
		s.editEncrypt(out)
	}
	return out, err
}

func (s *spyKMS) Decrypt(ctx context.Context, in *kms.DecryptInput) (*kms.DecryptOutput, error) {
	n := s.count("Decrypt")
	s.mu.Lock()
	s.decryptIn = append(s.decryptIn, *in)
	s.mu.Unlock()
	out, err := s.svc.Decrypt(ctx, in)
	if err == nil && s.editDecrypt != nil {
		s.editDecrypt(n, out)
	}
	if err == nil {
		s.mu.Lock()
		s.decryptOut = append(s.decryptOut, out)
		s.mu.Unlock()
	}
	return out, err
}

func (s *spyKMS) GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error) {
	n := s.count("GetPublicKey")
	if s.failGetPub != nil {
		if err := s.failGetPub(n); err != nil {
			return nil, err
		}
	}
	out, err := s.svc.GetPublicKey(ctx, in)
	if err == nil && s.editGetPub != nil {
		s.editGetPub(out)
	}
	return out, err
}

// DecryptKeyIDs returns the KeyId of every Decrypt call, in order.
func (s *spyKMS) DecryptKeyIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, in := range s.decryptIn {
		ids = append(ids, in.KeyId)
	}
	return ids
}

func mustSuite(t testing.TB, id suite.ID) *suite.Suite {
	t.Helper()
	s, ok := suite.ByID(id)
	if !ok {
		t.Fatalf("suite.ByID(%v) not found", id)
	}
	return s
}

// encryptMaterials returns fresh encryption materials, as the default
// materials manager makes them.
func encryptMaterials(t testing.TB, id suite.ID, ec map[string]string) *keyring.EncryptionMaterials {
	t.Helper()
	if ec == nil {
		ec = map[string]string{}
	}
	return &keyring.EncryptionMaterials{Suite: mustSuite(t, id), Context: ec}
}

func decryptMaterials(t testing.TB, id suite.ID, ec map[string]string) *keyring.DecryptionMaterials {
	t.Helper()
	if ec == nil {
		ec = map[string]string{}
	}
	return &keyring.DecryptionMaterials{Suite: mustSuite(t, id), Context: ec}
}

// wrap runs kr.OnEncrypt on fresh materials and fails the test on error.
func wrap(t testing.TB, kr keyring.Keyring, id suite.ID, ec map[string]string) *keyring.EncryptionMaterials {
	t.Helper()
	m := encryptMaterials(t, id, ec)
	if err := kr.OnEncrypt(t.Context(), m); err != nil {
		t.Fatalf("OnEncrypt(suite %v, context %v) err = %v, want nil", id, ec, err)
	}
	return m
}

// unwrapErr asserts that err reports that no data key could be unwrapped,
// as an *keyring.UnwrapError wrapping keyring.ErrNoDataKey, and returns it.
func unwrapErr(t testing.TB, err error) *keyring.UnwrapError {
	t.Helper()
	if err == nil {
		t.Fatal("OnDecrypt err = nil, want an *keyring.UnwrapError")
	}
	var ue *keyring.UnwrapError
	if !errors.As(err, &ue) {
		t.Fatalf("OnDecrypt err = %v (%T), want an *keyring.UnwrapError", err, err)
	}
	if !errors.Is(err, keyring.ErrNoDataKey) {
		t.Errorf("OnDecrypt err = %v, want it to wrap keyring.ErrNoDataKey", err)
	}
	return ue
}

func providerInfos(edks []keyring.EncryptedDataKey) []string {
	var s []string
	for _, k := range edks {
		s = append(s, string(k.ProviderInfo))
	}
	return s
}

func allZero(b []byte) bool {
	return !slices.ContainsFunc(b, func(c byte) bool { return c != 0 })
}
