package keyring_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

var ecdhCurves = []struct {
	name  string
	curve ecdh.Curve
	info  int // provider info length
}{
	{"P-256", ecdh.P256(), 75},
	{"P-384", ecdh.P384(), 107},
	{"P-521", ecdh.P521(), 143},
}

func ecdhKey(t testing.TB, c ecdh.Curve) *ecdh.PrivateKey {
	t.Helper()
	k, err := c.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mustECDH(t)(keyring.NewX(...)) fails t on a constructor's error.
func mustECDH(t testing.TB) func(*keyring.RawECDH, error) *keyring.RawECDH {
	return func(kr *keyring.RawECDH, err error) *keyring.RawECDH {
		t.Helper()
		if err != nil {
			t.Fatalf("new raw ECDH keyring err = %v, want nil", err)
		}
		return kr
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// ecdhWrap runs kr as the generator of fresh encryption materials.
func ecdhWrap(t testing.TB, kr keyring.Keyring, id suite.ID, ec map[string]string) *keyring.EncryptionMaterials {
	t.Helper()
	m := &keyring.EncryptionMaterials{Suite: mustSuite(t, id), Context: ec}
	if err := kr.OnEncrypt(context.Background(), m); err != nil {
		t.Fatalf("OnEncrypt err = %v, want nil", err)
	}
	return m
}

// ecdhUnwrap unwraps edks with kr and returns the data key or the error.
func ecdhUnwrap(kr keyring.Keyring, s *suite.Suite, ec map[string]string, edks []keyring.EncryptedDataKey) ([]byte, error) {
	dm := &keyring.DecryptionMaterials{Suite: s, Context: ec}
	err := kr.OnDecrypt(context.Background(), dm, edks)
	if err == nil && dm.DataKey == nil {
		err = errors.New("OnDecrypt returned nil without a data key")
	}
	return dm.DataKey, err
}

// TestRawECDHRoundTrips: on every curve, a static sender's messages are
// read by the static keyring of either party and by the recipient's
// discovery keyring; an ephemeral sender's by the recipient's discovery and
// static keyrings... of the recipient only.
func TestRawECDHRoundTrips(t *testing.T) {
	for _, c := range ecdhCurves {
		t.Run(c.name, func(t *testing.T) {
			alice, bob := ecdhKey(t, c.curve), ecdhKey(t, c.curve)
			aliceToBob := mustECDH(t)(keyring.NewRawECDH(alice, bob.PublicKey()))
			bobWithAlice := mustECDH(t)(keyring.NewRawECDH(bob, alice.PublicKey()))
			bobDiscovery := mustECDH(t)(keyring.NewDiscoveryECDH(bob))
			toBob := mustECDH(t)(keyring.NewEphemeralECDH(bob.PublicKey()))
			for _, id := range []suite.ID{suite.AES256GCMHKDFSHA512CommitKeyECDSAP384, suite.AES256GCMHKDFSHA512CommitKey, suite.AES128GCM, suite.AES192GCMHKDFSHA384ECDSAP384} {
				s := mustSuite(t, id)
				ec := map[string]string{"purpose": "test", "aws-crypto-public-key": "AAAA"}
				for _, enc := range []*keyring.RawECDH{aliceToBob, bobWithAlice, toBob} {
					m := ecdhWrap(t, enc, id, ec)
					if len(m.DataKey) != s.KeyLength || len(m.EncryptedDataKeys) != 1 {
						t.Fatalf("%v: %d-byte data key, %d EDKs", enc, len(m.DataKey), len(m.EncryptedDataKeys))
					}
					edk := m.EncryptedDataKeys[0]
					if edk.ProviderID != "raw-ecdh" || len(edk.ProviderInfo) != c.info || len(edk.Ciphertext) != 32+32+s.KeyLength+16 {
						t.Fatalf("%v: EDK %q, %d-byte info, %d-byte ciphertext", enc, edk.ProviderID, len(edk.ProviderInfo), len(edk.Ciphertext))
					}
					readers := []*keyring.RawECDH{aliceToBob, bobWithAlice, bobDiscovery}
					if enc == toBob {
						readers = []*keyring.RawECDH{bobDiscovery}
					} else if enc == bobWithAlice {
						readers = []*keyring.RawECDH{aliceToBob, bobWithAlice, mustECDH(t)(keyring.NewDiscoveryECDH(alice))}
					}
					for _, dec := range readers {
						dk, err := ecdhUnwrap(dec, s, ec, m.EncryptedDataKeys)
						if err != nil || !bytes.Equal(dk, m.DataKey) {
							t.Errorf("%v wrote, %v read: %x, %v; want the data key", enc, dec, dk, err)
						}
					}
				}
			}
			// A data key made by another keyring is wrapped, not replaced.
			m := &keyring.EncryptionMaterials{Suite: mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey), DataKey: bytes.Repeat([]byte{9}, 32)}
			if err := toBob.OnEncrypt(context.Background(), m); err != nil || !bytes.Equal(m.DataKey, bytes.Repeat([]byte{9}, 32)) {
				t.Fatalf("OnEncrypt with a data key: %v, data key %x", err, m.DataKey)
			}
			if dk, err := ecdhUnwrap(bobDiscovery, m.Suite, nil, m.EncryptedDataKeys); err != nil || !bytes.Equal(dk, m.DataKey) {
				t.Errorf("unwrap of a given data key = %x, %v", dk, err)
			}
		})
	}
}

// TestRawECDHEphemeralKeysDiffer: each ephemeral wrap uses a new sender
// key, and each wrap a new salt.
func TestRawECDHEphemeralKeysDiffer(t *testing.T) {
	bob := ecdhKey(t, ecdh.P256())
	toBob := mustECDH(t)(keyring.NewEphemeralECDH(bob.PublicKey()))
	a := ecdhWrap(t, toBob, suite.AES256GCMHKDFSHA512CommitKey, nil).EncryptedDataKeys[0]
	b := ecdhWrap(t, toBob, suite.AES256GCMHKDFSHA512CommitKey, nil).EncryptedDataKeys[0]
	if bytes.Equal(a.ProviderInfo[5+33+4:], b.ProviderInfo[5+33+4:]) {
		t.Error("two ephemeral wraps share a sender key")
	}
	if !bytes.Equal(a.ProviderInfo[5:5+33], b.ProviderInfo[5:5+33]) {
		t.Error("the recipient differs between two wraps to one key")
	}
	static := mustECDH(t)(keyring.NewRawECDH(ecdhKey(t, ecdh.P256()), bob.PublicKey()))
	c := ecdhWrap(t, static, suite.AES256GCMHKDFSHA512CommitKey, nil).EncryptedDataKeys[0]
	d := ecdhWrap(t, static, suite.AES256GCMHKDFSHA512CommitKey, nil).EncryptedDataKeys[0]
	if !bytes.Equal(c.ProviderInfo, d.ProviderInfo) || bytes.Equal(c.Ciphertext[:32], d.Ciphertext[:32]) {
		t.Error("static wraps must share the provider info and differ in their salt")
	}
}

// TestRawECDHRefuses: a wrong key, a wrong curve, a tampered sender or
// recipient key, tampered ciphertext, another context: no data key.
func TestRawECDHRefuses(t *testing.T) {
	p256, p384 := ecdh.P256(), ecdh.P384()
	alice, bob, carol := ecdhKey(t, p256), ecdhKey(t, p256), ecdhKey(t, p256)
	bob384 := ecdhKey(t, p384)
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKeyECDSAP384)
	ec := map[string]string{"purpose": "test"}
	static := ecdhWrap(t, mustECDH(t)(keyring.NewRawECDH(alice, bob.PublicKey())), s.ID, ec).EncryptedDataKeys
	eph := ecdhWrap(t, mustECDH(t)(keyring.NewEphemeralECDH(bob.PublicKey())), s.ID, ec).EncryptedDataKeys

	tamper := func(edks []keyring.EncryptedDataKey, f func(e *keyring.EncryptedDataKey)) []keyring.EncryptedDataKey {
		e := edks[0]
		e.ProviderInfo = bytes.Clone(e.ProviderInfo)
		e.Ciphertext = bytes.Clone(e.Ciphertext)
		f(&e)
		return []keyring.EncryptedDataKey{e}
	}
	senderAt := 5 + 33 + 4
	// A sender key changed to another valid point (carol's): the keys no
	// longer agree, the commitment key differs.
	carolC := compressed(carol.PublicKey())
	tests := []struct {
		name string
		kr   keyring.Keyring
		ec   map[string]string
		edks []keyring.EncryptedDataKey
	}{
		{"wrong private key", mustECDH(t)(keyring.NewDiscoveryECDH(carol)), ec, static},
		{"wrong peer", mustECDH(t)(keyring.NewRawECDH(bob, carol.PublicKey())), ec, static},
		{"sender's key as discovery", mustECDH(t)(keyring.NewDiscoveryECDH(alice)), ec, static},
		{"wrong curve", mustECDH(t)(keyring.NewDiscoveryECDH(bob384)), ec, static},
		{"other context", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), map[string]string{"purpose": "other"}, static},
		{"ephemeral key replaced", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), ec, tamper(eph, func(e *keyring.EncryptedDataKey) { copy(e.ProviderInfo[senderAt:], carolC) })},
		{"ephemeral key bit flipped", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), ec, tamper(eph, func(e *keyring.EncryptedDataKey) { e.ProviderInfo[len(e.ProviderInfo)-1] ^= 1 })},
		{"ephemeral key parity flipped", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), ec, tamper(eph, func(e *keyring.EncryptedDataKey) { e.ProviderInfo[senderAt] ^= 1 })},
		{"static sender replaced", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), ec, tamper(static, func(e *keyring.EncryptedDataKey) { copy(e.ProviderInfo[senderAt:], carolC) })},
		{"recipient bit flipped", mustECDH(t)(keyring.NewRawECDH(bob, alice.PublicKey())), ec, tamper(static, func(e *keyring.EncryptedDataKey) { e.ProviderInfo[10] ^= 1 })},
		{"version 2", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), ec, tamper(static, func(e *keyring.EncryptedDataKey) { e.ProviderInfo[0] = 2 })},
		{"other provider id", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), ec, tamper(static, func(e *keyring.EncryptedDataKey) { e.ProviderID = "raw-ecdh2" })},
		{"salt flipped", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), ec, tamper(static, func(e *keyring.EncryptedDataKey) { e.Ciphertext[0] ^= 1 })},
		{"commitment flipped", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), ec, tamper(static, func(e *keyring.EncryptedDataKey) { e.Ciphertext[40] ^= 1 })},
		{"wrapped key flipped", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), ec, tamper(static, func(e *keyring.EncryptedDataKey) { e.Ciphertext[70] ^= 1 })},
		{"tag flipped", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), ec, tamper(static, func(e *keyring.EncryptedDataKey) { e.Ciphertext[len(e.Ciphertext)-1] ^= 1 })},
		{"ciphertext cut", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), ec, tamper(static, func(e *keyring.EncryptedDataKey) { e.Ciphertext = e.Ciphertext[:len(e.Ciphertext)-1] })},
		{"ciphertext grown", mustECDH(t)(keyring.NewDiscoveryECDH(bob)), ec, tamper(static, func(e *keyring.EncryptedDataKey) { e.Ciphertext = append(e.Ciphertext, 0) })},
		{"ephemeral keyring", mustECDH(t)(keyring.NewEphemeralECDH(bob.PublicKey())), ec, eph},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dk, err := ecdhUnwrap(tt.kr, s, tt.ec, tt.edks)
			if err == nil || dk != nil {
				t.Fatalf("OnDecrypt = %x, %v; want no data key", dk, err)
			}
			if !errors.Is(err, keyring.ErrNoDataKey) {
				t.Errorf("err = %v, want ErrNoDataKey", err)
			}
		})
	}
	// The same messages open with the right keys: the refusals are the
	// tampering's doing.
	if _, err := ecdhUnwrap(mustECDH(t)(keyring.NewDiscoveryECDH(bob)), s, ec, static); err != nil {
		t.Fatalf("untampered static: %v", err)
	}
	if _, err := ecdhUnwrap(mustECDH(t)(keyring.NewDiscoveryECDH(bob)), s, ec, eph); err != nil {
		t.Fatalf("untampered ephemeral: %v", err)
	}
}

func compressed(pub *ecdh.PublicKey) []byte {
	u := pub.Bytes()
	n := (len(u) - 1) / 2
	return append([]byte{2 | u[len(u)-1]&1}, u[1:1+n]...)
}

// TestRawECDHSuiteKeyLength: a wrap of a 16-byte data key does not unwrap
// as a 32-byte one.
func TestRawECDHSuiteKeyLength(t *testing.T) {
	bob := ecdhKey(t, ecdh.P256())
	m := ecdhWrap(t, mustECDH(t)(keyring.NewEphemeralECDH(bob.PublicKey())), suite.AES128GCMHKDFSHA256, nil)
	if dk, err := ecdhUnwrap(mustECDH(t)(keyring.NewDiscoveryECDH(bob)), mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey), nil, m.EncryptedDataKeys); err == nil || dk != nil {
		t.Fatalf("unwrap under a suite of another key length = %x, %v", dk, err)
	}
}

// TestRawECDHModes: discovery cannot encrypt, ephemeral cannot decrypt,
// with errors that say so.
func TestRawECDHModes(t *testing.T) {
	bob := ecdhKey(t, ecdh.P256())
	disc := mustECDH(t)(keyring.NewDiscoveryECDH(bob))
	m := &keyring.EncryptionMaterials{Suite: mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)}
	if err := disc.OnEncrypt(context.Background(), m); err == nil || !strings.Contains(err.Error(), "cannot encrypt") || m.DataKey != nil || len(m.EncryptedDataKeys) != 0 {
		t.Errorf("discovery OnEncrypt = %v (materials %+v), want a refusal that changes nothing", err, m)
	}
	eph := mustECDH(t)(keyring.NewEphemeralECDH(bob.PublicKey()))
	edks := ecdhWrap(t, eph, suite.AES256GCMHKDFSHA512CommitKey, nil).EncryptedDataKeys
	_, err := ecdhUnwrap(eph, mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey), nil, edks)
	if err == nil || !strings.Contains(err.Error(), "cannot decrypt") || !errors.Is(err, keyring.ErrNoDataKey) {
		t.Errorf("ephemeral OnDecrypt err = %v, want a refusal wrapping ErrNoDataKey", err)
	}
	if got := []keyring.ECDHMode{disc.Mode(), eph.Mode()}; got[0] != keyring.ECDHDiscovery || got[1] != keyring.ECDHEphemeral {
		t.Errorf("modes = %v", got)
	}
}

func TestNewRawECDHRefuses(t *testing.T) {
	p256, p384 := ecdhKey(t, ecdh.P256()), ecdhKey(t, ecdh.P384())
	x := ecdhKey(t, ecdh.X25519())
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"curves differ", second(keyring.NewRawECDH(p256, p384.PublicKey())), "must share a curve"},
		{"X25519 static", second(keyring.NewRawECDH(x, x.PublicKey())), "not allowed"},
		{"X25519 ephemeral", second(keyring.NewEphemeralECDH(x.PublicKey())), "not allowed"},
		{"X25519 discovery", second(keyring.NewDiscoveryECDH(x)), "not allowed"},
		{"no private key", second(keyring.NewRawECDH(nil, p256.PublicKey())), "needs a private key"},
		{"no recipient", second(keyring.NewRawECDH(p256, nil)), "needs the recipient"},
		{"no recipient (ephemeral)", second(keyring.NewEphemeralECDH(nil)), "needs the recipient"},
		{"no private key (discovery)", second(keyring.NewDiscoveryECDH(nil)), "needs a private key"},
	}
	for _, tt := range tests {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) || !strings.HasPrefix(tt.err.Error(), "keyring: ") {
			t.Errorf("%s: err = %v, want one with %q", tt.name, tt.err, tt.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestRawECDHUnwrapBudget: a forged message with many encrypted data keys
// addressed to the keyring's key costs at most MaxFailedUnwraps key
// agreements.
func TestRawECDHUnwrapBudget(t *testing.T) {
	bob := ecdhKey(t, ecdh.P256())
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	edk := ecdhWrap(t, mustECDH(t)(keyring.NewEphemeralECDH(bob.PublicKey())), s.ID, nil).EncryptedDataKeys[0]
	var forged []keyring.EncryptedDataKey
	for i := range 50 {
		e := edk
		e.Ciphertext = bytes.Clone(edk.Ciphertext)
		e.Ciphertext[40] ^= byte(i + 1)
		forged = append(forged, e)
	}
	_, err := ecdhUnwrap(mustECDH(t)(keyring.NewDiscoveryECDH(bob)), s, nil, append(forged, edk))
	var ue *keyring.UnwrapError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want an UnwrapError", err)
	}
	if len(ue.Errs) != keyring.MaxFailedUnwraps || ue.Skipped != 51-keyring.MaxFailedUnwraps {
		t.Errorf("%d failures and %d skipped, want %d and %d", len(ue.Errs), ue.Skipped, keyring.MaxFailedUnwraps, 51-keyring.MaxFailedUnwraps)
	}
	if len(err.Error()) > 2000 {
		t.Errorf("error of %d bytes for 51 keys", len(err.Error()))
	}
}

// TestRawECDHInMulti: an ECDH keyring beside an AES keyring, either as the
// generator, and each reads alone.
func TestRawECDHInMulti(t *testing.T) {
	bob := ecdhKey(t, ecdh.P384())
	eph := mustECDH(t)(keyring.NewEphemeralECDH(bob.PublicKey()))
	disc := mustECDH(t)(keyring.NewDiscoveryECDH(bob))
	aes := mustRawAES(t, "ns", "k", randomBytes(32))
	for _, multi := range []keyring.Keyring{keyring.NewMulti(eph, aes), keyring.NewMulti(aes, eph)} {
		m := ecdhWrap(t, multi, suite.AES256GCMHKDFSHA512CommitKeyECDSAP384, map[string]string{"a": "b"})
		for _, dec := range []keyring.Keyring{disc, aes, keyring.NewMulti(nil, aes, disc)} {
			if dk, err := ecdhUnwrap(dec, m.Suite, m.Context, m.EncryptedDataKeys); err != nil || !bytes.Equal(dk, m.DataKey) {
				t.Errorf("%v: %x, %v", dec, dk, err)
			}
		}
	}
}

// TestECDHEncryptedDataKeyString: errors and envelope inspect name ECDH
// keys by curve and public keys, as the keyrings name themselves.
func TestECDHEncryptedDataKeyString(t *testing.T) {
	alice, bob := ecdhKey(t, ecdh.P256()), ecdhKey(t, ecdh.P256())
	kr := mustECDH(t)(keyring.NewRawECDH(alice, bob.PublicKey()))
	edk := ecdhWrap(t, kr, suite.AES256GCMHKDFSHA512CommitKey, nil).EncryptedDataKeys[0]
	got := edk.String()
	if !strings.HasPrefix(got, "raw ECDH key P-256 sender=") || !strings.Contains(got, "recipient=") {
		t.Errorf("String() = %q", got)
	}
	fp := got[strings.Index(got, "sender=")+len("sender=") : strings.Index(got, " recipient")]
	if !strings.Contains(kr.String(), fp) {
		t.Errorf("the EDK names the sender %q, the keyring %q: they must match", fp, kr.String())
	}
	edk.ProviderID = "aws-kms-ecdh"
	if !strings.HasPrefix(edk.String(), "KMS ECDH key P-256") {
		t.Errorf("String() = %q", edk.String())
	}
	edk.ProviderInfo = edk.ProviderInfo[:7]
	if got := edk.String(); !strings.Contains(got, "malformed") {
		t.Errorf("String() of a malformed provider info = %q", got)
	}
}

// ecdhKeyFiles writes a P-256 key pair in the forms the key files take.
func ecdhKeyFiles(t testing.TB, dir string, c elliptic.Curve) (pkcs8, sec1, spki, spkiDER string, priv *ecdsa.PrivateKey) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(priv)
	s1, _ := x509.MarshalECPrivateKey(priv)
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	return writeFile(t, filepath.Join(dir, "k.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})),
		writeFile(t, filepath.Join(dir, "k.sec1.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: s1})),
		writeFile(t, filepath.Join(dir, "k.pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
		writeFile(t, filepath.Join(dir, "k.pub.der"), pub), priv
}

func TestFromSpecECDH(t *testing.T) {
	dir := t.TempDir()
	alice8, alice1, aliceP, aliceD, _ := ecdhKeyFiles(t, filepath.Join(dir, "alice"), elliptic.P256())
	bob8, _, bobP, bobD, _ := ecdhKeyFiles(t, filepath.Join(dir, "bob,with a comma"), elliptic.P256())
	_, _, carolP, _, _ := ecdhKeyFiles(t, filepath.Join(dir, "carol"), elliptic.P384())
	// alice → bob, in every form of the files; bob and alice read it.
	for _, enc := range []string{
		"ecdh:private=" + alice8 + ",recipient=" + bobP,
		"ecdh:recipient=" + bobD + ",private=" + alice1 + ",curve=P-256",
		"ecdh:private=" + alice8 + ",recipient=" + bobP + ",curve=ecc_nist_p256",
	} {
		kr := mustFromSpec(t, enc, false)
		for _, dec := range []string{
			"ecdh:private=" + bob8,
			"ecdh:private=" + bob8 + ",recipient=" + aliceP,
			"ecdh:private=" + bob8 + ",recipient=" + aliceD,
			"ecdh:private=" + alice1 + ",recipient=" + bobD,
		} {
			if err := roundTrip(t, kr, mustFromSpec(t, dec, true)); err != nil {
				t.Errorf("encrypt with %q, decrypt with %q: %v", enc, dec, err)
			}
		}
	}
	if err := roundTrip(t, mustFromSpec(t, "ecdh:recipient="+bobP, false), mustFromSpec(t, "ecdh:private="+bob8, true)); err != nil {
		t.Errorf("ephemeral: %v", err)
	}
	tests := []struct {
		spec       string
		forDecrypt bool
		want       string
		specErr    bool
	}{
		{"ecdh:recipient=" + bobP, true, "cannot decrypt", true},
		{"ecdh:private=" + bob8, false, "cannot encrypt", true},
		{"ecdh:", false, "unknown field", true},
		{"ecdh:curve=P-256", false, "give private=, recipient= or both", true},
		{"ecdh:private=", true, "empty private=", true},
		{"ecdh:private=" + bob8 + ",curve=P-224", true, "unknown curve", true},
		{"ecdh:private=" + bob8 + ",file=x", true, "file= is not a field of ecdh keys", true},
		{"ecdh:private=" + bob8 + ",private=" + bob8, true, "private= given twice", true},
		{"ecdh:private=" + bob8 + ",curve=P-384", true, "not P-384 as curve= says", false},
		{"ecdh:private=" + bob8 + ",recipient=" + carolP, true, "must share a curve", false},
		{"ecdh:private=" + bobP, true, "holds a public key", false},
		{"ecdh:private=" + bob8 + ",recipient=" + bob8, true, "holds a private key", false},
		{"ecdh:private=" + filepath.Join(dir, "nope.pem"), true, "reading key file", false},
	}
	for _, tt := range tests {
		kr, err := keyring.FromSpec(tt.spec, tt.forDecrypt)
		if err == nil {
			t.Errorf("FromSpec(%q, %v) = %v, want an error", tt.spec, tt.forDecrypt, kr)
			continue
		}
		var se *keyring.SpecError
		if !strings.Contains(err.Error(), tt.want) || errors.As(err, &se) != tt.specErr {
			t.Errorf("FromSpec(%q, %v) err = %v (spec error: %v), want %q (spec error: %v)", tt.spec, tt.forDecrypt, err, errors.As(err, &se), tt.want, tt.specErr)
		}
	}
	if !keyring.IsSpec("ecdh:private=x") {
		t.Error(`IsSpec("ecdh:...") = false`)
	}
}

func TestParseECDHKeys(t *testing.T) {
	dir := t.TempDir()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(ed)
	edPub, _ := x509.MarshalPKIXPublicKey(ed.Public())
	x := ecdhKey(t, ecdh.X25519())
	xDER, _ := x509.MarshalPKCS8PrivateKey(x)
	xPub, _ := x509.MarshalPKIXPublicKey(x.PublicKey())
	p8, s1, spki, der, priv := ecdhKeyFiles(t, dir, elliptic.P521())
	for _, path := range []string{p8, s1} {
		k, err := keyring.ParseECDHPrivateKey(readFile(t, path))
		if err != nil || k.Curve() != ecdh.P521() {
			t.Errorf("ParseECDHPrivateKey(%s) = %v, %v", path, k, err)
		}
	}
	want, _ := priv.PublicKey.ECDH()
	for _, path := range []string{spki, der} {
		k, err := keyring.ParseECDHPublicKey(readFile(t, path))
		if err != nil || !k.Equal(want) {
			t.Errorf("ParseECDHPublicKey(%s) = %v, %v", path, k, err)
		}
	}
	block := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	for name, data := range map[string][]byte{
		"Ed25519":      block("PRIVATE KEY", edDER),
		"X25519":       block("PRIVATE KEY", xDER),
		"garbage":      block("PRIVATE KEY", []byte("garbage")),
		"no PEM":       []byte("not a key"),
		"RSA label":    block("RSA PRIVATE KEY", []byte("x")),
		"public label": block("PUBLIC KEY", edPub),
	} {
		if k, err := keyring.ParseECDHPrivateKey(data); err == nil || !strings.HasPrefix(err.Error(), "keyring: ") {
			t.Errorf("ParseECDHPrivateKey(%s) = %v, %v; want an error", name, k, err)
		}
	}
	for name, data := range map[string][]byte{
		"Ed25519":         block("PUBLIC KEY", edPub),
		"X25519":          block("PUBLIC KEY", xPub),
		"garbage":         []byte("garbage"),
		"damaged PEM":     []byte("-----BEGIN PUBLIC KEY-----\nnot base64\n"),
		"private key":     readFile(t, p8),
		"certificate":     block("CERTIFICATE", []byte("x")),
		"truncated point": block("PUBLIC KEY", readFile(t, der)[:20]),
	} {
		if k, err := keyring.ParseECDHPublicKey(data); err == nil || !strings.HasPrefix(err.Error(), "keyring: ") {
			t.Errorf("ParseECDHPublicKey(%s) = %v, %v; want an error", name, k, err)
		}
	}
}

// FuzzECDHDecrypt: whatever a message's ECDH encrypted data keys hold, the
// raw keyring neither panics nor returns a data key unless the key
// authenticates (seeds: a real wrap of each mode; the fuzzer mutates
// provider info and ciphertext).
func FuzzECDHDecrypt(f *testing.F) {
	bob, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	alice, _ := ecdh.P256().GenerateKey(rand.Reader)
	s := mustSuite(f, suite.AES256GCMHKDFSHA512CommitKey)
	static, _ := keyring.NewRawECDH(alice, bob.PublicKey())
	eph, _ := keyring.NewEphemeralECDH(bob.PublicKey())
	for _, kr := range []keyring.Keyring{static, eph} {
		m := &keyring.EncryptionMaterials{Suite: s}
		if err := kr.OnEncrypt(context.Background(), m); err != nil {
			f.Fatal(err)
		}
		e := m.EncryptedDataKeys[0]
		f.Add(e.ProviderID, e.ProviderInfo, e.Ciphertext)
	}
	f.Add("aws-kms-ecdh", []byte{1, 0, 0, 0, 33}, []byte{})
	f.Add("raw-ecdh", binary.BigEndian.AppendUint32([]byte{1}, 0xffffffff), make([]byte, 112))
	disc, _ := keyring.NewDiscoveryECDH(bob)
	bobStatic, _ := keyring.NewRawECDH(bob, alice.PublicKey())
	f.Fuzz(func(t *testing.T, id string, info, ct []byte) {
		edks := []keyring.EncryptedDataKey{{ProviderID: id, ProviderInfo: info, Ciphertext: ct}}
		for _, kr := range []keyring.Keyring{disc, bobStatic} {
			dm := &keyring.DecryptionMaterials{Suite: s}
			err := kr.OnDecrypt(context.Background(), dm, edks)
			if (err == nil) != (dm.DataKey != nil) {
				t.Fatalf("OnDecrypt = %v with data key %x", err, dm.DataKey)
			}
			if dm.DataKey != nil && len(dm.DataKey) != s.KeyLength {
				t.Fatalf("a %d-byte data key", len(dm.DataKey))
			}
			_ = edks[0].String()
		}
	})
}

// BenchmarkRawECDH measures one wrap (OnEncrypt) and one unwrap
// (OnDecrypt) of a data key per curve and mode.
func BenchmarkRawECDH(b *testing.B) {
	s := mustSuite(b, suite.AES256GCMHKDFSHA512CommitKeyECDSAP384)
	ec := map[string]string{"purpose": "bench", "aws-crypto-public-key": "A3b3tV7v"}
	for _, c := range ecdhCurves {
		alice, bob := ecdhKey(b, c.curve), ecdhKey(b, c.curve)
		static := mustECDH(b)(keyring.NewRawECDH(alice, bob.PublicKey()))
		eph := mustECDH(b)(keyring.NewEphemeralECDH(bob.PublicKey()))
		disc := mustECDH(b)(keyring.NewDiscoveryECDH(bob))
		for _, w := range []struct {
			name     string
			enc, dec keyring.Keyring
		}{{"static", static, static}, {"ephemeral", eph, disc}} {
			b.Run(c.name+"/"+w.name+"/wrap", func(b *testing.B) {
				for b.Loop() {
					m := &keyring.EncryptionMaterials{Suite: s, Context: ec}
					if err := w.enc.OnEncrypt(context.Background(), m); err != nil {
						b.Fatal(err)
					}
				}
			})
			m := ecdhWrap(b, w.enc, s.ID, ec)
			b.Run(c.name+"/"+w.name+"/unwrap", func(b *testing.B) {
				for b.Loop() {
					if _, err := ecdhUnwrap(w.dec, s, ec, m.EncryptedDataKeys); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
