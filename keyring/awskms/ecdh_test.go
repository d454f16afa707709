package awskms_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/keyring/awskms"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/suite"
)

// ecdhSpy passes the ECDH keyring's calls to a real KMS, counts them and
// can change DeriveSharedSecret's answers.
type ecdhSpy struct {
	svc        *kms.Service
	mu         sync.Mutex
	calls      map[string]int
	editDerive func(*kms.DeriveSharedSecretOutput)
}

var _ awskms.ECDHClient = (*ecdhSpy)(nil)

func (s *ecdhSpy) count(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[op]++
}

func (s *ecdhSpy) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *ecdhSpy) GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error) {
	s.count("GetPublicKey")
	return s.svc.GetPublicKey(ctx, in)
}

func (s *ecdhSpy) DeriveSharedSecret(ctx context.Context, in *kms.DeriveSharedSecretInput) (*kms.DeriveSharedSecretOutput, error) {
	s.count("DeriveSharedSecret")
	out, err := s.svc.DeriveSharedSecret(ctx, in)
	if err == nil && s.editDerive != nil {
		s.editDerive(out)
	}
	return out, err
}

var ecdhSpecs = []struct {
	spec  string
	curve ecdh.Curve
}{
	{kms.SpecECCNISTP256, ecdh.P256()},
	{kms.SpecECCNISTP384, ecdh.P384()},
	{kms.SpecECCNISTP521, ecdh.P521()},
}

// agreementKey creates a KEY_AGREEMENT key of spec and returns its ARN and
// public key.
func agreementKey(t testing.TB, svc *kms.Service, spec string) (string, *ecdh.PublicKey) {
	t.Helper()
	out, err := svc.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: spec, KeyUsage: kms.UsageKeyAgreement})
	if err != nil {
		t.Fatalf("CreateKey(%s, KEY_AGREEMENT) err = %v", spec, err)
	}
	pk, err := svc.GetPublicKey(context.Background(), &kms.GetPublicKeyInput{KeyId: out.KeyMetadata.Arn})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keyring.ParseECDHPublicKey(pk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return out.KeyMetadata.Arn, pub
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return v
	}
}

func unwrapWith(kr keyring.Keyring, m *keyring.EncryptionMaterials) ([]byte, error) {
	dm := &keyring.DecryptionMaterials{Suite: m.Suite, Context: m.Context}
	err := kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys)
	if err == nil && dm.DataKey == nil {
		err = errors.New("no data key and no error")
	}
	return dm.DataKey, err
}

// TestECDHRoundTrips: on every curve, between two KMS keys, and between a
// KMS key and raw keys, both ways: messages of the KMS ECDH keyring are read
// by the raw ECDH keyring and the other way round.
func TestECDHRoundTrips(t *testing.T) {
	svc := newKMS(t)
	for _, sp := range ecdhSpecs {
		t.Run(sp.spec, func(t *testing.T) {
			alice, alicePub := agreementKey(t, svc, sp.spec)
			bob, bobPub := agreementKey(t, svc, sp.spec)
			carol, err := sp.curve.GenerateKey(rand.Reader) // a raw key pair
			if err != nil {
				t.Fatal(err)
			}
			spy := &ecdhSpy{svc: svc}
			aliceToBob := must[*awskms.ECDH](t)(awskms.NewECDH(spy, alice, bobPub))
			bobWithAlice := must[*awskms.ECDH](t)(awskms.NewECDH(svc, bob, alicePub))
			bobDiscovery := must[*awskms.ECDH](t)(awskms.NewECDHDiscovery(svc, bob))
			aliceToCarol := must[*awskms.ECDH](t)(awskms.NewECDH(svc, alice, carol.PublicKey()))
			aliceWithCarol := aliceToCarol
			carolDiscovery := must[*keyring.RawECDH](t)(keyring.NewDiscoveryECDH(carol))
			carolToAlice := must[*keyring.RawECDH](t)(keyring.NewRawECDH(carol, alicePub))
			ephToBob := must[*keyring.RawECDH](t)(keyring.NewEphemeralECDH(bobPub))
			cases := []struct {
				name    string
				enc     keyring.Keyring
				readers []keyring.Keyring
			}{
				{"KMS to KMS", aliceToBob, []keyring.Keyring{bobDiscovery, bobWithAlice, aliceToBob}},
				{"KMS to raw", aliceToCarol, []keyring.Keyring{carolDiscovery, carolToAlice, aliceWithCarol}},
				{"raw to KMS", carolToAlice, []keyring.Keyring{aliceWithCarol, must[*awskms.ECDH](t)(awskms.NewECDHDiscovery(svc, alice)), carolToAlice}},
				{"ephemeral to KMS", ephToBob, []keyring.Keyring{bobDiscovery}},
			}
			for _, c := range cases {
				for _, id := range []suite.ID{suite.AES256GCMHKDFSHA512CommitKeyECDSAP384, suite.AES128GCMHKDFSHA256} {
					m := wrap(t, c.enc, id, map[string]string{"purpose": c.name})
					wantID := "aws-kms-ecdh"
					if _, raw := c.enc.(*keyring.RawECDH); raw {
						wantID = "raw-ecdh"
					}
					if got := m.EncryptedDataKeys[0].ProviderID; got != wantID {
						t.Errorf("%s: provider id %q, want %q", c.name, got, wantID)
					}
					for _, r := range c.readers {
						dk, err := unwrapWith(r, m)
						if err != nil || !bytes.Equal(dk, m.DataKey) {
							t.Errorf("%s, %s: %v read %x, %v; want the data key", c.name, id, r, dk, err)
						}
					}
				}
			}
			if n := spy.Calls("GetPublicKey"); n != 1 {
				t.Errorf("GetPublicKey called %d times, want once (the public key is cached)", n)
			}
		})
	}
}

func TestNewECDHRefuses(t *testing.T) {
	svc := newKMS(t)
	arn, pub := agreementKey(t, svc, kms.SpecECCNISTP256)
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"alias", second(awskms.NewECDH(svc, "arn:aws:kms:us-east-1:111122223333:alias/x", pub)), "needs a key ARN"},
		{"key id", second(awskms.NewECDH(svc, "1234abcd-12ab-34cd-56ef-1234567890ab", pub)), "not an ARN"},
		{"nil client", second(awskms.NewECDH(nil, arn, pub)), "nil KMS client"},
		{"no recipient", second(awskms.NewECDH(svc, arn, nil)), "needs the recipient's public key"},
		{"X25519", second(awskms.NewECDH(svc, arn, x.PublicKey())), "X25519"},
		{"discovery alias", second(awskms.NewECDHDiscovery(svc, "alias/x")), "not an ARN"},
	}
	for _, tt := range tests {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) || !strings.HasPrefix(tt.err.Error(), "awskms: ") {
			t.Errorf("%s: err = %v, want one with %q", tt.name, tt.err, tt.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestECDHRefusesUnfitKeys: a key of another usage or spec, or on another
// curve than the recipient, is refused on first use with a clear error.
func TestECDHRefusesUnfitKeys(t *testing.T) {
	svc := newKMS(t)
	_, pub256 := agreementKey(t, svc, kms.SpecECCNISTP256)
	arn384, _ := agreementKey(t, svc, kms.SpecECCNISTP384)
	sym := newKey(t, svc, "").Arn
	signing := must[*kms.CreateKeyOutput](t)(svc.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: kms.SpecECCNISTP256, KeyUsage: kms.UsageSignVerify})).KeyMetadata.Arn
	tests := []struct {
		name, arn, want string
	}{
		{"symmetric", sym, "has no public key"},
		{"signing", signing, "needs a KEY_AGREEMENT key"},
		{"other curve", arn384, "must share a curve"},
	}
	for _, tt := range tests {
		kr := must[*awskms.ECDH](t)(awskms.NewECDH(svc, tt.arn, pub256))
		m := encryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, nil)
		if err := kr.OnEncrypt(context.Background(), m); err == nil || !strings.Contains(err.Error(), tt.want) || m.DataKey != nil || len(m.EncryptedDataKeys) != 0 {
			t.Errorf("%s: OnEncrypt err = %v, want %q and untouched materials", tt.name, err, tt.want)
		}
	}
	disc := must[*awskms.ECDH](t)(awskms.NewECDHDiscovery(svc, arn384))
	if err := disc.OnEncrypt(context.Background(), encryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, nil)); err == nil || !strings.Contains(err.Error(), "cannot encrypt") {
		t.Errorf("discovery OnEncrypt err = %v, want a refusal", err)
	}
}

// TestECDHDecryptRefuses: another KMS key, a tampered sender key, another
// context: no data key, and an UnwrapError.
func TestECDHDecryptRefuses(t *testing.T) {
	svc := newKMS(t)
	bob, bobPub := agreementKey(t, svc, kms.SpecECCNISTP256)
	carol, _ := agreementKey(t, svc, kms.SpecECCNISTP256)
	ec := map[string]string{"purpose": "x"}
	m := wrap(t, must[*keyring.RawECDH](t)(keyring.NewEphemeralECDH(bobPub)), suite.AES256GCMHKDFSHA512CommitKey, ec)
	bobDisc := must[*awskms.ECDH](t)(awskms.NewECDHDiscovery(svc, bob))
	if _, err := unwrapWith(bobDisc, m); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	tamper := func(f func(e *keyring.EncryptedDataKey)) *keyring.EncryptionMaterials {
		e := m.EncryptedDataKeys[0]
		e.ProviderInfo, e.Ciphertext = bytes.Clone(e.ProviderInfo), bytes.Clone(e.Ciphertext)
		f(&e)
		return &keyring.EncryptionMaterials{Suite: m.Suite, Context: m.Context, EncryptedDataKeys: []keyring.EncryptedDataKey{e}}
	}
	other := *m
	other.Context = map[string]string{"purpose": "y"}
	tests := []struct {
		name string
		kr   keyring.Keyring
		m    *keyring.EncryptionMaterials
	}{
		{"another KMS key", must[*awskms.ECDH](t)(awskms.NewECDHDiscovery(svc, carol)), m},
		{"sender key flipped", bobDisc, tamper(func(e *keyring.EncryptedDataKey) { e.ProviderInfo[len(e.ProviderInfo)-2] ^= 4 })},
		{"sender parity flipped", bobDisc, tamper(func(e *keyring.EncryptedDataKey) { e.ProviderInfo[5+33+4] ^= 1 })},
		{"commitment flipped", bobDisc, tamper(func(e *keyring.EncryptedDataKey) { e.Ciphertext[33] ^= 1 })},
		{"other context", bobDisc, &other},
	}
	for _, tt := range tests {
		dk, err := unwrapWith(tt.kr, tt.m)
		var ue *keyring.UnwrapError
		if dk != nil || !errors.As(err, &ue) || !errors.Is(err, keyring.ErrNoDataKey) {
			t.Errorf("%s: %x, %v; want no data key and an UnwrapError", tt.name, dk, err)
		}
	}
}

// TestECDHRejectsBadKMSAnswers: a DeriveSharedSecret answer for another
// key, of another algorithm or of the wrong length gives no data key.
func TestECDHRejectsBadKMSAnswers(t *testing.T) {
	svc := newKMS(t)
	bob, bobPub := agreementKey(t, svc, kms.SpecECCNISTP256)
	m := wrap(t, must[*keyring.RawECDH](t)(keyring.NewEphemeralECDH(bobPub)), suite.AES256GCMHKDFSHA512CommitKey, nil)
	edits := map[string]func(*kms.DeriveSharedSecretOutput){
		"other key":   func(o *kms.DeriveSharedSecretOutput) { o.KeyId += "x" },
		"algorithm":   func(o *kms.DeriveSharedSecretOutput) { o.KeyAgreementAlgorithm = "ECDH_COFACTOR" },
		"short":       func(o *kms.DeriveSharedSecretOutput) { o.SharedSecret = o.SharedSecret[:31] },
		"long":        func(o *kms.DeriveSharedSecretOutput) { o.SharedSecret = append(o.SharedSecret, 0) },
		"wrong value": func(o *kms.DeriveSharedSecretOutput) { o.SharedSecret[0] ^= 1 },
	}
	for name, edit := range edits {
		spy := &ecdhSpy{svc: svc, editDerive: edit}
		dk, err := unwrapWith(must[*awskms.ECDH](t)(awskms.NewECDHDiscovery(spy, bob)), m)
		if dk != nil || err == nil {
			t.Errorf("%s: %x, %v; want no data key", name, dk, err)
		}
		enc := must[*awskms.ECDH](t)(awskms.NewECDH(spy, bob, bobPub))
		em := encryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, nil)
		if err := enc.OnEncrypt(context.Background(), em); name != "wrong value" && (err == nil || em.DataKey != nil) {
			t.Errorf("%s: OnEncrypt err = %v, data key %x; want a refusal", name, err, em.DataKey)
		}
	}
}

// TestECDHUnwrapBudget: a forged message with many encrypted data keys for
// the KMS key costs at most MaxFailedUnwraps DeriveSharedSecret calls.
func TestECDHUnwrapBudget(t *testing.T) {
	svc := newKMS(t)
	bob, bobPub := agreementKey(t, svc, kms.SpecECCNISTP256)
	m := wrap(t, must[*keyring.RawECDH](t)(keyring.NewEphemeralECDH(bobPub)), suite.AES256GCMHKDFSHA512CommitKey, nil)
	var forged []keyring.EncryptedDataKey
	for i := range 40 {
		e := m.EncryptedDataKeys[0]
		e.Ciphertext = bytes.Clone(e.Ciphertext)
		e.Ciphertext[40] ^= byte(i + 1)
		forged = append(forged, e)
	}
	spy := &ecdhSpy{svc: svc}
	dm := decryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, nil)
	err := must[*awskms.ECDH](t)(awskms.NewECDHDiscovery(spy, bob)).OnDecrypt(context.Background(), dm, append(forged, m.EncryptedDataKeys[0]))
	ue := unwrapErr(t, err)
	if n := spy.Calls("DeriveSharedSecret"); n != keyring.MaxFailedUnwraps {
		t.Errorf("DeriveSharedSecret called %d times, want %d", n, keyring.MaxFailedUnwraps)
	}
	if ue.Skipped != 41-keyring.MaxFailedUnwraps || dm.DataKey != nil {
		t.Errorf("skipped %d, data key %x", ue.Skipped, dm.DataKey)
	}
}

// TestECDHConcurrentUse: one keyring serves many goroutines at once (the
// public key is fetched once, under a lock; naming the keyring reads
// nothing that fetch writes). Run under -race.
func TestECDHConcurrentUse(t *testing.T) {
	svc := newKMS(t)
	alice, _ := agreementKey(t, svc, kms.SpecECCNISTP384)
	bob, bobPub := agreementKey(t, svc, kms.SpecECCNISTP384)
	spy := &ecdhSpy{svc: svc}
	kr := must[*awskms.ECDH](t)(awskms.NewECDH(spy, alice, bobPub))
	disc := must[*awskms.ECDH](t)(awskms.NewECDHDiscovery(svc, bob))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 8 {
		wg.Go(func() {
			_ = kr.String()
			m := encryptMaterials(t, suite.AES256GCMHKDFSHA512CommitKey, map[string]string{"a": "b"})
			if err := kr.OnEncrypt(context.Background(), m); err != nil {
				errs <- err
				return
			}
			_ = kr.String()
			if dk, err := unwrapWith(disc, m); err != nil || !bytes.Equal(dk, m.DataKey) {
				errs <- errors.Join(err, errors.New("unwrapped another data key"))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := spy.Calls("GetPublicKey"); n != 1 {
		t.Errorf("GetPublicKey called %d times by 8 goroutines, want once", n)
	}
}
