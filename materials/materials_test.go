package materials_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/internal/format"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/materials"
	"github.com/envelopekms/envelope/suite"
)

func mustSuite(t testing.TB, id suite.ID) *suite.Suite {
	t.Helper()
	s, ok := suite.ByID(id)
	if !ok {
		t.Fatalf("ByID(%s) ok = false", id)
	}
	return s
}

func newAES(t testing.TB) *keyring.RawAES {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	kr, err := keyring.NewRawAES("ns", "k", key)
	if err != nil {
		t.Fatalf("NewRawAES err = %v, want nil", err)
	}
	return kr
}

// countingKeyring is a raw AES keyring that counts its calls.
type countingKeyring struct {
	keyring.Keyring
	enc, dec int
}

func (c *countingKeyring) OnEncrypt(ctx context.Context, m *keyring.EncryptionMaterials) error {
	c.enc++
	return c.Keyring.OnEncrypt(ctx, m)
}

func (c *countingKeyring) OnDecrypt(ctx context.Context, m *keyring.DecryptionMaterials, edks []keyring.EncryptedDataKey) error {
	c.dec++
	return c.Keyring.OnDecrypt(ctx, m, edks)
}

// shortKeyring is a faulty keyring: it hands out data keys of the wrong
// length (wrapping them for real, so the fault is only the length).
type shortKeyring struct{ kr keyring.Keyring }

func (s shortKeyring) OnEncrypt(ctx context.Context, m *keyring.EncryptionMaterials) error {
	if m.DataKey == nil {
		m.DataKey = make([]byte, m.Suite.KeyLength-8)
		rand.Read(m.DataKey)
	}
	return s.kr.OnEncrypt(ctx, m)
}

func (s shortKeyring) OnDecrypt(_ context.Context, m *keyring.DecryptionMaterials, _ []keyring.EncryptedDataKey) error {
	m.DataKey = make([]byte, m.Suite.KeyLength+1)
	return nil
}

// lazyKeyring generates a data key but wraps it nowhere, and on decrypt
// returns without finding one.
type lazyKeyring struct{}

func (lazyKeyring) OnEncrypt(_ context.Context, m *keyring.EncryptionMaterials) error {
	m.DataKey = make([]byte, m.Suite.KeyLength)
	rand.Read(m.DataKey)
	return nil
}

func (lazyKeyring) OnDecrypt(context.Context, *keyring.DecryptionMaterials, []keyring.EncryptedDataKey) error {
	return nil
}

func TestCheckContext(t *testing.T) {
	tests := []struct {
		ec map[string]string
		ok bool
	}{
		{nil, true},
		{map[string]string{}, true},
		{map[string]string{"purpose": "test", "aws-crypto": "x", "aws-cryptox": "y", "AWS-CRYPTO-X": "z", "x-aws-crypto-y": "w"}, true},
		{map[string]string{"aws-crypto-x": "v"}, false},
		{map[string]string{"aws-crypto-": "v"}, false},
		{map[string]string{"aws-crypto-public-key": "v"}, false},
		{map[string]string{"ok": "v", "aws-crypto-x": "v"}, false},
	}
	for _, tt := range tests {
		err := materials.CheckContext(tt.ec)
		if tt.ok && err != nil {
			t.Errorf("CheckContext(%v) err = %v, want nil", tt.ec, err)
		}
		if !tt.ok && !errors.Is(err, materials.ErrReservedContextKey) {
			t.Errorf("CheckContext(%v) err = %v, want ErrReservedContextKey", tt.ec, err)
		}
	}
	err := materials.CheckContext(map[string]string{"aws-crypto-x": "v"})
	if err == nil || !strings.Contains(err.Error(), `"aws-crypto-x"`) {
		t.Errorf("CheckContext err = %v, want it to quote the key", err)
	}
}

func TestEncryptReservedContextKey(t *testing.T) {
	kr := &countingKeyring{Keyring: newAES(t)}
	d := materials.NewDefault(kr)
	for _, key := range []string{"aws-crypto-x", "aws-crypto-public-key"} {
		ec := map[string]string{"ok": "1", key: "v"}
		m, err := d.EncryptionMaterials(context.Background(), materials.EncryptionRequest{Context: ec, PlaintextLength: -1})
		if !errors.Is(err, materials.ErrReservedContextKey) {
			t.Errorf("EncryptionMaterials(context with %q) = %v, %v; want ErrReservedContextKey", key, m, err)
		}
	}
	if kr.enc != 0 {
		t.Errorf("keyring called %d times for refused contexts, want 0", kr.enc)
	}
}

func TestEncryptionMaterials(t *testing.T) {
	for _, s := range suite.All() {
		policy := suite.RequireEncryptRequireDecrypt
		if !s.Committing {
			policy = suite.ForbidEncryptAllowDecrypt
		}
		t.Run(s.ID.String(), func(t *testing.T) {
			kr := newAES(t)
			d := materials.NewDefault(kr)
			ec := map[string]string{"purpose": "test"}
			before := maps.Clone(ec)
			m, err := d.EncryptionMaterials(context.Background(), materials.EncryptionRequest{Context: ec, Suite: s, Policy: policy, PlaintextLength: 100})
			if err != nil {
				t.Fatalf("EncryptionMaterials(%s, %v) err = %v, want nil", s, policy, err)
			}
			if !maps.Equal(ec, before) {
				t.Errorf("EncryptionMaterials changed the caller's context to %v, want %v", ec, before)
			}
			if m.Suite != s {
				t.Errorf("materials suite = %v, want %v", m.Suite, s)
			}
			if len(m.DataKey) != s.KeyLength || len(m.EncryptedDataKeys) != 1 {
				t.Errorf("materials hold a %d-byte data key and %d EDKs, want %d and 1", len(m.DataKey), len(m.EncryptedDataKeys), s.KeyLength)
			}
			if m.Context["purpose"] != "test" {
				t.Errorf("materials context = %v, want it to hold the caller's pairs", m.Context)
			}
			pub, has := m.Context[format.PublicKeyContextKey]
			if !s.Signed() {
				if has || m.SigningKey != nil {
					t.Errorf("unsigned suite: context %v and signing key %v, want no public key and no signing key", m.Context, m.SigningKey)
				}
				if len(m.Context) != 1 {
					t.Errorf("unsigned suite: context %v, want only the caller's pair", m.Context)
				}
				return
			}
			if !has || m.SigningKey == nil {
				t.Fatalf("signed suite: context %v and signing key %v, want both", m.Context, m.SigningKey)
			}
			if m.SigningKey.Curve != s.Curve() {
				t.Errorf("signing key curve = %s, want %s", m.SigningKey.Curve.Params().Name, s.Curve().Params().Name)
			}
			// The context holds the compressed public point of the signing key.
			c, err := base64.StdEncoding.DecodeString(pub)
			if err != nil {
				t.Fatalf("%s = %q is not base64: %v", format.PublicKeyContextKey, pub, err)
			}
			want := elliptic.MarshalCompressed(m.SigningKey.Curve, m.SigningKey.X, m.SigningKey.Y)
			if !bytes.Equal(c, want) {
				t.Errorf("%s = %x, want the compressed signing public key %x", format.PublicKeyContextKey, c, want)
			}
			// The keyring bound the full context, public key included.
			dm := &keyring.DecryptionMaterials{Suite: s, Context: map[string]string{"purpose": "test"}}
			if err := kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys); err == nil {
				t.Errorf("the EDK unwrapped without %s in the context, want it bound", format.PublicKeyContextKey)
			}
		})
	}
}

func TestEncryptionMaterialsNilContext(t *testing.T) {
	for _, id := range []suite.ID{suite.AES256GCMHKDFSHA512CommitKey, suite.AES256GCMHKDFSHA512CommitKeyECDSAP384} {
		m, err := materials.NewDefault(newAES(t)).EncryptionMaterials(context.Background(), materials.EncryptionRequest{Suite: mustSuite(t, id)})
		if err != nil {
			t.Fatalf("EncryptionMaterials(nil context, %s) err = %v, want nil", id, err)
		}
		if m.Context == nil {
			t.Errorf("EncryptionMaterials(nil context, %s).Context = nil, want a map", id)
		}
	}
}

func TestEncryptionMaterialsDefaultSuite(t *testing.T) {
	for _, tt := range []struct {
		policy suite.CommitmentPolicy
		want   suite.ID
	}{
		{suite.RequireEncryptRequireDecrypt, 0x0578},
		{suite.RequireEncryptAllowDecrypt, 0x0578},
		{suite.ForbidEncryptAllowDecrypt, 0x0378},
	} {
		m, err := materials.NewDefault(newAES(t)).EncryptionMaterials(context.Background(), materials.EncryptionRequest{Policy: tt.policy, PlaintextLength: -1})
		if err != nil {
			t.Fatalf("EncryptionMaterials(no suite, %v) err = %v, want nil", tt.policy, err)
		}
		if m.Suite.ID != tt.want {
			t.Errorf("EncryptionMaterials(no suite, %v) suite = %s, want %s", tt.policy, m.Suite.ID, tt.want)
		}
	}
}

func TestEncryptionPolicy(t *testing.T) {
	policies := []suite.CommitmentPolicy{suite.RequireEncryptRequireDecrypt, suite.RequireEncryptAllowDecrypt, suite.ForbidEncryptAllowDecrypt}
	for _, p := range policies {
		for _, s := range suite.All() {
			t.Run(p.String()+"/"+s.ID.String(), func(t *testing.T) {
				kr := &countingKeyring{Keyring: newAES(t)}
				m, err := materials.NewDefault(kr).EncryptionMaterials(context.Background(), materials.EncryptionRequest{Suite: s, Policy: p})
				allowed := s.Committing != (p == suite.ForbidEncryptAllowDecrypt)
				if allowed {
					if err != nil {
						t.Errorf("EncryptionMaterials(%s) under %v err = %v, want nil", s.ID, p, err)
					}
					return
				}
				var pe *materials.PolicyError
				if !errors.As(err, &pe) {
					t.Fatalf("EncryptionMaterials(%s) under %v = %v, %v; want *PolicyError", s.ID, p, m, err)
				}
				if pe.Suite != s || pe.Policy != p || !pe.Encrypt {
					t.Errorf("PolicyError = %+v, want suite %s, policy %v, Encrypt", pe, s.ID, p)
				}
				msg := err.Error()
				if !strings.Contains(msg, p.String()) || !strings.Contains(msg, s.ID.String()) {
					t.Errorf("PolicyError = %q, want it to name the policy and the suite", msg)
				}
				want := "requires a committing suite"
				if s.Committing {
					want = "forbids writing the committing suite"
				}
				if !strings.Contains(msg, want) {
					t.Errorf("PolicyError = %q, want it to say %q", msg, want)
				}
				if kr.enc != 0 {
					t.Errorf("keyring called %d times for a refused suite, want 0", kr.enc)
				}
			})
		}
	}
}

func TestEncryptionInvalidPolicy(t *testing.T) {
	kr := &countingKeyring{Keyring: newAES(t)}
	for _, p := range []suite.CommitmentPolicy{-1, 3} {
		_, err := materials.NewDefault(kr).EncryptionMaterials(context.Background(), materials.EncryptionRequest{Policy: p})
		if err == nil || !strings.Contains(err.Error(), "invalid commitment policy") {
			t.Errorf("EncryptionMaterials(policy %d) err = %v, want an invalid policy error", int(p), err)
		}
	}
	if kr.enc != 0 {
		t.Errorf("keyring called %d times for an invalid policy, want 0", kr.enc)
	}
}

func TestEncryptionFaultyKeyrings(t *testing.T) {
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	tests := []struct {
		name   string
		kr     keyring.Keyring
		errHas string
	}{
		{"wrong-length data key", shortKeyring{newAES(t)}, "24-byte data key"},
		{"no EDK", lazyKeyring{}, "no encrypted data key"},
		{"multi without generator", keyring.NewMulti(nil, newAES(t)), "generator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := materials.NewDefault(tt.kr).EncryptionMaterials(context.Background(), materials.EncryptionRequest{Suite: s})
			if err == nil {
				t.Fatalf("EncryptionMaterials = %+v, want an error", m)
			}
			if m != nil {
				t.Errorf("EncryptionMaterials returned materials with its error")
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("EncryptionMaterials err = %q, want it to contain %q", err, tt.errHas)
			}
		})
	}
}

// encrypt returns encryption materials for s from kr, under a policy that
// allows s.
func encrypt(t testing.TB, kr keyring.Keyring, s *suite.Suite, ec map[string]string) *keyring.EncryptionMaterials {
	t.Helper()
	p := suite.RequireEncryptRequireDecrypt
	if !s.Committing {
		p = suite.ForbidEncryptAllowDecrypt
	}
	m, err := materials.NewDefault(kr).EncryptionMaterials(context.Background(), materials.EncryptionRequest{Context: ec, Suite: s, Policy: p})
	if err != nil {
		t.Fatalf("EncryptionMaterials(%s) err = %v, want nil", s.ID, err)
	}
	return m
}

func TestDecryptionRoundTrip(t *testing.T) {
	for _, s := range suite.All() {
		t.Run(s.ID.String(), func(t *testing.T) {
			kr := newAES(t)
			em := encrypt(t, kr, s, map[string]string{"a": "b"})
			dm, err := materials.NewDefault(kr).DecryptionMaterials(context.Background(), materials.DecryptionRequest{
				Suite:             s,
				Context:           em.Context, // as read back from the header
				EncryptedDataKeys: em.EncryptedDataKeys,
				Policy:            suite.RequireEncryptAllowDecrypt,
			})
			if err != nil {
				t.Fatalf("DecryptionMaterials err = %v, want nil", err)
			}
			if !bytes.Equal(dm.DataKey, em.DataKey) {
				t.Errorf("DecryptionMaterials data key = %x, want %x", dm.DataKey, em.DataKey)
			}
			if dm.Suite != s {
				t.Errorf("DecryptionMaterials suite = %v, want %v", dm.Suite, s)
			}
			if !s.Signed() {
				if dm.VerificationKey != nil {
					t.Errorf("unsigned suite: VerificationKey = %v, want nil", dm.VerificationKey)
				}
				return
			}
			if dm.VerificationKey == nil || !dm.VerificationKey.Equal(&em.SigningKey.PublicKey) {
				t.Errorf("VerificationKey = %v, want the signing key's public key", dm.VerificationKey)
			}
			// And it really verifies what the signing key signs.
			digest := make([]byte, s.SignatureHash.Size())
			rand.Read(digest)
			sig, err := ecdsa.SignASN1(rand.Reader, em.SigningKey, digest)
			if err != nil {
				t.Fatal(err)
			}
			if !ecdsa.VerifyASN1(dm.VerificationKey, digest, sig) {
				t.Error("VerificationKey does not verify a signature of the SigningKey")
			}
		})
	}
}

func TestDecryptionPolicy(t *testing.T) {
	for _, p := range []suite.CommitmentPolicy{suite.RequireEncryptRequireDecrypt, suite.RequireEncryptAllowDecrypt, suite.ForbidEncryptAllowDecrypt} {
		for _, s := range suite.All() {
			t.Run(p.String()+"/"+s.ID.String(), func(t *testing.T) {
				kr := &countingKeyring{Keyring: newAES(t)}
				em := encrypt(t, kr, s, nil)
				kr.enc, kr.dec = 0, 0
				dm, err := materials.NewDefault(kr).DecryptionMaterials(context.Background(), materials.DecryptionRequest{
					Suite: s, Context: em.Context, EncryptedDataKeys: em.EncryptedDataKeys, Policy: p,
				})
				if s.Committing || p != suite.RequireEncryptRequireDecrypt {
					if err != nil || !bytes.Equal(dm.DataKey, em.DataKey) {
						t.Errorf("DecryptionMaterials(%s) under %v err = %v, want nil and the data key", s.ID, p, err)
					}
					return
				}
				var pe *materials.PolicyError
				if !errors.As(err, &pe) {
					t.Fatalf("DecryptionMaterials(%s) under %v err = %v, want *PolicyError", s.ID, p, err)
				}
				if pe.Encrypt || pe.Suite != s || pe.Policy != p {
					t.Errorf("PolicyError = %+v, want decrypt, suite %s, policy %v", pe, s.ID, p)
				}
				msg := err.Error()
				if !strings.Contains(msg, "does not commit") || !strings.Contains(msg, s.ID.String()) || !strings.Contains(msg, p.String()) {
					t.Errorf("PolicyError = %q, want it to name the suite and policy and say the suite does not commit", msg)
				}
				if kr.dec != 0 {
					t.Errorf("keyring called %d times for a refused message, want 0", kr.dec)
				}
			})
		}
	}
}

func TestDecryptionPublicKeyChecks(t *testing.T) {
	kr := newAES(t)
	signed := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKeyECDSAP384)
	unsigned := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	em := encrypt(t, kr, signed, map[string]string{"a": "b"})
	pub := em.Context[format.PublicKeyContextKey]
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256pub := base64.StdEncoding.EncodeToString(elliptic.MarshalCompressed(p256.Curve, p256.X, p256.Y))

	tests := []struct {
		name   string
		s      *suite.Suite
		ec     map[string]string
		errHas string
	}{
		{"signed without public key", signed, map[string]string{"a": "b"}, "no aws-crypto-public-key"},
		{"signed, empty context", signed, nil, "no aws-crypto-public-key"},
		{"unsigned with public key", unsigned, map[string]string{"a": "b", format.PublicKeyContextKey: pub}, "unsigned suite"},
		{"public key not base64", signed, map[string]string{format.PublicKeyContextKey: "not base64!"}, "not base64"},
		{"public key not a point", signed, map[string]string{format.PublicKeyContextKey: base64.StdEncoding.EncodeToString(make([]byte, 49))}, "not a compressed"},
		{"public key on the wrong curve", signed, map[string]string{format.PublicKeyContextKey: p256pub}, "not a compressed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counting := &countingKeyring{Keyring: kr}
			dm, err := materials.NewDefault(counting).DecryptionMaterials(context.Background(), materials.DecryptionRequest{
				Suite: tt.s, Context: tt.ec, EncryptedDataKeys: em.EncryptedDataKeys,
			})
			if !errors.Is(err, format.ErrMalformed) {
				t.Fatalf("DecryptionMaterials = %v, %v; want an error wrapping format.ErrMalformed", dm, err)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("DecryptionMaterials err = %q, want it to contain %q", err, tt.errHas)
			}
			if counting.dec != 0 {
				t.Errorf("keyring called %d times for a malformed message, want 0", counting.dec)
			}
		})
	}
}

func TestDecryptionFaultyKeyrings(t *testing.T) {
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	em := encrypt(t, newAES(t), s, nil)
	tests := []struct {
		name string
		kr   keyring.Keyring
	}{
		{"wrong-length data key", shortKeyring{newAES(t)}},
		{"silent, no data key", lazyKeyring{}},
		{"other key", newAES(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dm, err := materials.NewDefault(tt.kr).DecryptionMaterials(context.Background(), materials.DecryptionRequest{
				Suite: s, Context: em.Context, EncryptedDataKeys: em.EncryptedDataKeys,
			})
			if dm != nil {
				t.Errorf("DecryptionMaterials returned materials %+v with error %v", dm, err)
			}
			var ue *keyring.UnwrapError
			if !errors.As(err, &ue) || !errors.Is(err, keyring.ErrNoDataKey) {
				t.Fatalf("DecryptionMaterials err = %v, want an *UnwrapError wrapping ErrNoDataKey", err)
			}
			if len(ue.Keys) != 1 || len(ue.Tried) == 0 {
				t.Errorf("UnwrapError = %+v, want the message's key and the keyring tried", ue)
			}
		})
	}
}

// keptKeyring runs kr and keeps the data key it leaves in the materials,
// to check what becomes of it.
type keptKeyring struct {
	kr  keyring.Keyring
	key []byte
}

func (k *keptKeyring) OnEncrypt(ctx context.Context, m *keyring.EncryptionMaterials) error {
	err := k.kr.OnEncrypt(ctx, m)
	k.key = m.DataKey
	return err
}

func (k *keptKeyring) OnDecrypt(ctx context.Context, m *keyring.DecryptionMaterials, edks []keyring.EncryptedDataKey) error {
	err := k.kr.OnDecrypt(ctx, m, edks)
	if m.DataKey != nil {
		rand.Read(m.DataKey) // shortKeyring leaves zeros
	}
	k.key = m.DataKey
	return err
}

// A data key that the default manager refuses (of the wrong length, or
// wrapped by no key) is cleared, not left in memory with the materials.
func TestFaultyKeyringDataKeyCleared(t *testing.T) {
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	for _, tt := range []struct {
		name string
		kr   keyring.Keyring
	}{
		{"wrong-length data key", shortKeyring{newAES(t)}},
		{"no EDK", lazyKeyring{}},
	} {
		t.Run("encrypt/"+tt.name, func(t *testing.T) {
			k := &keptKeyring{kr: tt.kr}
			if _, err := materials.NewDefault(k).EncryptionMaterials(context.Background(), materials.EncryptionRequest{Suite: s}); err == nil {
				t.Fatalf("EncryptionMaterials err = nil, want an error")
			}
			if len(k.key) == 0 || !bytes.Equal(k.key, make([]byte, len(k.key))) {
				t.Errorf("refused data key %x was not cleared", k.key)
			}
		})
	}
	t.Run("decrypt/wrong-length data key", func(t *testing.T) {
		em := encrypt(t, newAES(t), s, nil)
		k := &keptKeyring{kr: shortKeyring{newAES(t)}}
		if _, err := materials.NewDefault(k).DecryptionMaterials(context.Background(), materials.DecryptionRequest{
			Suite: s, Context: em.Context, EncryptedDataKeys: em.EncryptedDataKeys,
		}); err == nil {
			t.Fatalf("DecryptionMaterials err = nil, want an error")
		}
		if len(k.key) == 0 || !bytes.Equal(k.key, make([]byte, len(k.key))) {
			t.Errorf("refused data key %x was not cleared", k.key)
		}
	})
}

func TestDecryptionCanceled(t *testing.T) {
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	kr := newAES(t)
	em := encrypt(t, kr, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := materials.NewDefault(keyring.NewMulti(ctxKeyring{}, kr)).DecryptionMaterials(ctx, materials.DecryptionRequest{
		Suite: s, Context: em.Context, EncryptedDataKeys: em.EncryptedDataKeys,
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("DecryptionMaterials(canceled) err = %v, want context.Canceled", err)
	}
}

// ctxKeyring fails as a network call would once its context is done.
type ctxKeyring struct{}

func (ctxKeyring) OnEncrypt(ctx context.Context, _ *keyring.EncryptionMaterials) error {
	return ctx.Err()
}

func (ctxKeyring) OnDecrypt(ctx context.Context, _ *keyring.DecryptionMaterials, _ []keyring.EncryptedDataKey) error {
	return ctx.Err()
}

// TestDecryptionInvalidPolicy: an out-of-range policy must not read more than
// the strictest one does. EncryptionMaterials refuses it; DecryptionMaterials
// should too.
func TestDecryptionInvalidPolicy(t *testing.T) {
	s := mustSuite(t, suite.AES256GCM)
	kr := newAES(t)
	em := encrypt(t, kr, s, nil)
	for _, p := range []suite.CommitmentPolicy{-1, 3} {
		dm, err := materials.NewDefault(kr).DecryptionMaterials(context.Background(), materials.DecryptionRequest{
			Suite: s, Context: em.Context, EncryptedDataKeys: em.EncryptedDataKeys, Policy: p,
		})
		if err == nil {
			t.Errorf("DecryptionMaterials(suite %s, policy %d) = data key %x, want an error", s.ID, int(p), dm.DataKey)
		}
	}
}
