package keyring_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"hash"
	"math/big"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

var paddings = []struct {
	p    keyring.Padding
	name string
	hash func() hash.Hash // nil for PKCS #1 v1.5
}{
	{keyring.PKCS1, "pkcs1", nil},
	{keyring.OAEPSHA1, "oaep-sha1", sha1.New},
	{keyring.OAEPSHA256, "oaep-sha256", sha256.New},
	{keyring.OAEPSHA384, "oaep-sha384", sha512.New384},
	{keyring.OAEPSHA512, "oaep-sha512", sha512.New},
}

func mustRawRSA(t testing.TB, namespace, name string, p keyring.Padding, pub *rsa.PublicKey, priv *rsa.PrivateKey) *keyring.RawRSA {
	t.Helper()
	kr, err := keyring.NewRawRSA(namespace, name, p, pub, priv)
	if err != nil {
		t.Fatalf("NewRawRSA(%q, %q, %v) err = %v, want nil", namespace, name, p, err)
	}
	return kr
}

func mustGenerateRSA(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatalf("rsa.GenerateKey(%d) err = %v, want nil", bits, err)
	}
	return k
}

func TestPaddingNames(t *testing.T) {
	for _, tt := range paddings {
		if got := tt.p.String(); got != tt.name {
			t.Errorf("Padding(%d).String() = %q, want %q", int(tt.p), got, tt.name)
		}
		for _, in := range []string{tt.name, strings.ToUpper(tt.name)} {
			p, err := keyring.ParsePadding(in)
			if err != nil || p != tt.p {
				t.Errorf("ParsePadding(%q) = %v, %v; want %v, nil", in, p, err, tt.p)
			}
		}
	}
	if keyring.OAEPSHA256 != 0 {
		t.Errorf("the zero Padding is %v, want oaep-sha256", keyring.Padding(0))
	}
	if got := keyring.Padding(99).String(); got != "Padding(99)" {
		t.Errorf("Padding(99).String() = %q, want %q", got, "Padding(99)")
	}
	for _, in := range []string{"", "oaep", "sha256", "oaep-sha224", "oaep_sha256", "pkcs1v15", "oaep-sha256 ", "Padding(0)", "0"} {
		p, err := keyring.ParsePadding(in)
		if err == nil {
			t.Errorf("ParsePadding(%q) = %v, want an error", in, p)
			continue
		}
		if !strings.Contains(err.Error(), "unknown RSA padding") || !strings.Contains(err.Error(), "oaep-sha256") {
			t.Errorf("ParsePadding(%q) err = %q, want it to list the paddings", in, err)
		}
	}
}

// TestRawRSARoundTrip wraps with every padding, checks the EDK's wire form by
// unwrapping it with crypto/rsa directly, then unwraps with the keyring.
func TestRawRSARoundTrip(t *testing.T) {
	priv, _ := rsaKeys2048(t)
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKeyECDSAP384)
	for _, tt := range paddings {
		t.Run(tt.name, func(t *testing.T) {
			enc := mustRawRSA(t, "ns", "rsa-key", tt.p, &priv.PublicKey, nil)
			dec := mustRawRSA(t, "ns", "rsa-key", tt.p, nil, priv)
			m := &keyring.EncryptionMaterials{Suite: s, Context: map[string]string{"a": "b"}}
			if err := enc.OnEncrypt(context.Background(), m); err != nil {
				t.Fatalf("OnEncrypt err = %v, want nil", err)
			}
			if len(m.DataKey) != 32 || len(m.EncryptedDataKeys) != 1 {
				t.Fatalf("OnEncrypt made a %d-byte data key and %d EDKs, want 32 and 1", len(m.DataKey), len(m.EncryptedDataKeys))
			}
			edk := m.EncryptedDataKeys[0]
			if edk.ProviderID != "ns" || string(edk.ProviderInfo) != "rsa-key" {
				t.Errorf("EDK provider = %q/%q, want %q/%q", edk.ProviderID, edk.ProviderInfo, "ns", "rsa-key")
			}
			if len(edk.Ciphertext) != 256 {
				t.Errorf("len(Ciphertext) = %d, want 256 (the modulus size)", len(edk.Ciphertext))
			}

			var raw []byte
			var err error
			if tt.hash == nil {
				//lint:ignore SA1019 checking the wire form of the ESDK's pkcs1 padding, kept for interoperability.
				raw, err = rsa.DecryptPKCS1v15(nil, priv, edk.Ciphertext)
			} else {
				raw, err = rsa.DecryptOAEP(tt.hash(), nil, priv, edk.Ciphertext, nil)
			}
			if err != nil || !bytes.Equal(raw, m.DataKey) {
				t.Errorf("crypto/rsa %s decryption = %x, %v; want the data key %x", tt.name, raw, err, m.DataKey)
			}

			// The context is not bound: any context decrypts.
			dm := &keyring.DecryptionMaterials{Suite: s, Context: map[string]string{"other": "context"}}
			if err := dec.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys); err != nil {
				t.Fatalf("OnDecrypt err = %v, want nil", err)
			}
			if !bytes.Equal(dm.DataKey, m.DataKey) {
				t.Errorf("OnDecrypt data key = %x, want %x", dm.DataKey, m.DataKey)
			}
		})
	}
}

func TestRawRSAWrapsExistingDataKey(t *testing.T) {
	priv, _ := rsaKeys2048(t)
	kr := mustRawRSA(t, "ns", "k", keyring.OAEPSHA256, nil, priv)
	s := mustSuite(t, suite.AES192GCMHKDFSHA384ECDSAP384)
	dataKey := randomBytes(24)
	m := &keyring.EncryptionMaterials{Suite: s, DataKey: bytes.Clone(dataKey)}
	if err := kr.OnEncrypt(context.Background(), m); err != nil {
		t.Fatalf("OnEncrypt err = %v, want nil", err)
	}
	if !bytes.Equal(m.DataKey, dataKey) {
		t.Fatalf("OnEncrypt replaced the data key")
	}
	dm := &keyring.DecryptionMaterials{Suite: s}
	if err := kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys); err != nil || !bytes.Equal(dm.DataKey, dataKey) {
		t.Errorf("OnDecrypt = %x, %v; want %x, nil", dm.DataKey, err, dataKey)
	}
}

func TestRawRSAPublicOnly(t *testing.T) {
	priv, _ := rsaKeys2048(t)
	kr := mustRawRSA(t, "ns", "k", keyring.OAEPSHA256, &priv.PublicKey, nil)
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	m := &keyring.EncryptionMaterials{Suite: s}
	if err := kr.OnEncrypt(context.Background(), m); err != nil {
		t.Fatalf("OnEncrypt with a public key err = %v, want nil", err)
	}
	dm := &keyring.DecryptionMaterials{Suite: s}
	err := kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys)
	var ue *keyring.UnwrapError
	if !errors.As(err, &ue) {
		t.Fatalf("OnDecrypt with a public key err = %v, want *UnwrapError", err)
	}
	if !errors.Is(err, keyring.ErrNoDataKey) {
		t.Errorf("OnDecrypt with a public key err = %v, want ErrNoDataKey", err)
	}
	if !strings.Contains(err.Error(), "private key") {
		t.Errorf("OnDecrypt with a public key err = %q, want it to mention the private key", err)
	}
	if dm.DataKey != nil {
		t.Errorf("DataKey = %x, want nil", dm.DataKey)
	}
}

func TestRawRSAPaddingMismatch(t *testing.T) {
	priv, _ := rsaKeys2048(t)
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	for _, wrap := range paddings {
		m := &keyring.EncryptionMaterials{Suite: s}
		if err := mustRawRSA(t, "ns", "k", wrap.p, nil, priv).OnEncrypt(context.Background(), m); err != nil {
			t.Fatalf("OnEncrypt(%s) err = %v, want nil", wrap.name, err)
		}
		for _, unwrap := range paddings {
			if unwrap.p == wrap.p {
				continue
			}
			t.Run(wrap.name+"/"+unwrap.name, func(t *testing.T) {
				kr := mustRawRSA(t, "ns", "k", unwrap.p, nil, priv)
				dm := &keyring.DecryptionMaterials{Suite: s}
				err := kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys)
				if unwrap.p == keyring.PKCS1 {
					// PKCS #1 v1.5 has no integrity check: about one OAEP
					// ciphertext in 256 decodes to some message. The length check
					// then refuses it, and in the very rare case that it is 32
					// bytes long only the message's header tag can tell. Either
					// way the true data key does not come out.
					if bytes.Equal(dm.DataKey, m.DataKey) {
						t.Fatalf("OnDecrypt(%s EDK) with pkcs1 recovered the data key", wrap.name)
					}
					if err == nil {
						t.Logf("OnDecrypt(%s EDK) with pkcs1 decoded a 32-byte garbage key (expected about once in 50,000 runs); the header tag catches it", wrap.name)
						return
					}
					if !errors.Is(err, keyring.ErrNoDataKey) {
						t.Fatalf("OnDecrypt(%s EDK) with pkcs1 err = %v, want ErrNoDataKey", wrap.name, err)
					}
					if msg := err.Error(); !strings.Contains(msg, "does not decrypt with this key and padding") && !strings.Contains(msg, "-byte data key, suite 0x0478 needs 32") {
						t.Errorf("OnDecrypt err = %q, want it to say the key and padding do not decrypt, or give the wrong length", msg)
					}
					return
				}
				if !errors.Is(err, keyring.ErrNoDataKey) {
					t.Fatalf("OnDecrypt(%s EDK) with %s err = %v, want ErrNoDataKey", wrap.name, unwrap.name, err)
				}
				if !strings.Contains(err.Error(), "does not decrypt with this key and padding") {
					t.Errorf("OnDecrypt err = %q, want it to say the key and padding do not decrypt", err)
				}
				if dm.DataKey != nil {
					t.Errorf("DataKey = %x, want nil", dm.DataKey)
				}
			})
		}
	}
}

func TestRawRSAWrongKeyAndSkips(t *testing.T) {
	priv, other := rsaKeys2048(t)
	s := mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)
	m := &keyring.EncryptionMaterials{Suite: s}
	if err := mustRawRSA(t, "ns", "k", keyring.OAEPSHA256, nil, priv).OnEncrypt(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, namespace, keyName string
		key                      *rsa.PrivateKey
		wantErrs                 int
	}{
		{"wrong key, same name", "ns", "k", other, 1},
		{"other name", "ns", "k2", priv, 0},
		{"other namespace", "ns2", "k", priv, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr := mustRawRSA(t, tt.namespace, tt.keyName, keyring.OAEPSHA256, nil, tt.key)
			dm := &keyring.DecryptionMaterials{Suite: s}
			err := kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys)
			var ue *keyring.UnwrapError
			if !errors.As(err, &ue) {
				t.Fatalf("OnDecrypt err = %v, want *UnwrapError", err)
			}
			if len(ue.Errs) != tt.wantErrs {
				t.Errorf("UnwrapError.Errs = %v, want %d", ue.Errs, tt.wantErrs)
			}
			if len(ue.Tried) != 1 || ue.Tried[0] != kr.String() {
				t.Errorf("UnwrapError.Tried = %q, want [%q]", ue.Tried, kr.String())
			}
		})
	}
}

func TestRawRSAWrongDataKeyLength(t *testing.T) {
	priv, _ := rsaKeys2048(t)
	kr := mustRawRSA(t, "ns", "k", keyring.OAEPSHA256, nil, priv)
	m := &keyring.EncryptionMaterials{Suite: mustSuite(t, suite.AES128GCM)}
	if err := kr.OnEncrypt(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	dm := &keyring.DecryptionMaterials{Suite: mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey)}
	err := kr.OnDecrypt(context.Background(), dm, m.EncryptedDataKeys)
	if !errors.Is(err, keyring.ErrNoDataKey) || !strings.Contains(err.Error(), "16-byte") {
		t.Errorf("OnDecrypt of a 16-byte key for a 32-byte suite err = %v, want ErrNoDataKey giving the length", err)
	}
	if dm.DataKey != nil {
		t.Errorf("DataKey = %x, want nil", dm.DataKey)
	}
}

func TestRawRSADecryptNoOpWithDataKey(t *testing.T) {
	priv, _ := rsaKeys2048(t)
	for _, kr := range []*keyring.RawRSA{
		mustRawRSA(t, "ns", "k", keyring.OAEPSHA256, nil, priv),
		mustRawRSA(t, "ns", "k", keyring.OAEPSHA256, &priv.PublicKey, nil),
	} {
		have := randomBytes(32)
		dm := &keyring.DecryptionMaterials{Suite: mustSuite(t, suite.AES256GCMHKDFSHA512CommitKey), DataKey: bytes.Clone(have)}
		if err := kr.OnDecrypt(context.Background(), dm, nil); err != nil || !bytes.Equal(dm.DataKey, have) {
			t.Errorf("%v: OnDecrypt with a data key present = %x, %v; want it unchanged, nil", kr, dm.DataKey, err)
		}
	}
}

func TestNewRawRSARejects(t *testing.T) {
	priv, other := rsaKeys2048(t)
	// Go refuses to generate keys under 1024 bits; 1024 is enough to test
	// the 2048-bit minimum.
	small := mustGenerateRSA(t, 1024)
	// A 2047-bit modulus, built by hand: only its size is looked at.
	short := &rsa.PublicKey{N: new(big.Int).Rsh(priv.N, 1), E: 65537}
	if short.N.BitLen() != 2047 {
		t.Fatalf("short modulus has %d bits", short.N.BitLen())
	}
	tests := []struct {
		name           string
		namespace, key string
		p              keyring.Padding
		pub            *rsa.PublicKey
		priv           *rsa.PrivateKey
		errHas         string
	}{
		{"1024-bit private", "ns", "k", keyring.OAEPSHA256, nil, small, "1024 bits is too small"},
		{"1024-bit public", "ns", "k", keyring.OAEPSHA256, &small.PublicKey, nil, "1024 bits"},
		{"2047-bit public", "ns", "k", keyring.OAEPSHA256, short, nil, "2047 bits"},
		{"mismatched pair", "ns", "k", keyring.OAEPSHA256, &other.PublicKey, priv, "do not match"},
		{"no key", "ns", "k", keyring.OAEPSHA256, nil, nil, "public or a private key"},
		{"unknown padding", "ns", "k", keyring.Padding(5), nil, priv, "unknown RSA padding"},
		{"negative padding", "ns", "k", keyring.Padding(-1), nil, priv, "unknown RSA padding"},
		{"empty namespace", "", "k", keyring.OAEPSHA256, nil, priv, "non-empty"},
		{"empty name", "ns", "", keyring.OAEPSHA256, nil, priv, "non-empty"},
		{"aws-kms namespace", "aws-kms", "k", keyring.OAEPSHA256, nil, priv, "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := keyring.NewRawRSA(tt.namespace, tt.key, tt.p, tt.pub, tt.priv)
			if err == nil {
				t.Fatalf("NewRawRSA = %v, want an error", kr)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("NewRawRSA err = %q, want it to contain %q", err, tt.errHas)
			}
		})
	}
	// The matching pair, given both ways, is accepted.
	for _, pub := range []*rsa.PublicKey{nil, &priv.PublicKey, {N: new(big.Int).Set(priv.N), E: priv.E}} {
		if _, err := keyring.NewRawRSA("ns", "k", keyring.OAEPSHA256, pub, priv); err != nil {
			t.Errorf("NewRawRSA(matching pair) err = %v, want nil", err)
		}
	}
}

func TestRawRSAString(t *testing.T) {
	priv, _ := rsaKeys2048(t)
	kr := mustRawRSA(t, "myapp", "rsa1", keyring.OAEPSHA384, nil, priv)
	if got, want := kr.String(), `raw RSA key namespace="myapp" name="rsa1" padding=oaep-sha384`; got != want {
		t.Errorf("RawRSA.String() = %q, want %q", got, want)
	}
}

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParseRSAKey(t *testing.T) {
	priv, _ := rsaKeys2048(t)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		pem      []byte
		wantPriv bool
	}{
		{"PKCS #8 private", pemEncode("PRIVATE KEY", pkcs8), true},
		{"PKCS #1 private", pemEncode("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(priv)), true},
		{"SPKI public", pemEncode("PUBLIC KEY", spki), false},
		{"PKCS #1 public", pemEncode("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&priv.PublicKey)), false},
		{"leading text", append([]byte("a comment\n"), pemEncode("PUBLIC KEY", spki)...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, got, err := keyring.ParseRSAKey(tt.pem)
			if err != nil {
				t.Fatalf("ParseRSAKey err = %v, want nil", err)
			}
			if (pub == nil) == (got == nil) {
				t.Fatalf("ParseRSAKey = %v, %v; want exactly one non-nil", pub, got)
			}
			if tt.wantPriv {
				if got == nil || !got.Equal(priv) {
					t.Errorf("ParseRSAKey private key does not equal the original")
				}
			} else if pub == nil || !pub.Equal(&priv.PublicKey) {
				t.Errorf("ParseRSAKey public key does not equal the original")
			}
		})
	}
}

func TestParseRSAKeyRejects(t *testing.T) {
	rsaPriv, _ := rsaKeys2048(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecSPKI, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	ecSEC1, _ := x509.MarshalECPrivateKey(ecKey)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	edSPKI, _ := x509.MarshalPKIXPublicKey(edPub)
	secret := "SECRET-KEY-BYTES-0123456789"
	tests := []struct {
		name   string
		in     []byte
		errHas []string
	}{
		{"EC PKCS #8", pemEncode("PRIVATE KEY", ecPKCS8), []string{"PRIVATE KEY", "*ecdsa.PrivateKey", "not an RSA key"}},
		{"EC SPKI", pemEncode("PUBLIC KEY", ecSPKI), []string{"PUBLIC KEY", "*ecdsa.PublicKey", "not an RSA key"}},
		{"Ed25519 SPKI", pemEncode("PUBLIC KEY", edSPKI), []string{"not an RSA key"}},
		{"EC SEC 1", pemEncode("EC PRIVATE KEY", ecSEC1), []string{`"EC PRIVATE KEY"`, "not an RSA key"}},
		{"certificate", pemEncode("CERTIFICATE", []byte("x")), []string{`"CERTIFICATE"`, "not an RSA key"}},
		{"empty", nil, []string{"no PEM block"}},
		{"garbage", []byte(secret), []string{"no PEM block"}},
		{"DER without PEM", x509.MarshalPKCS1PrivateKey(rsaPriv), []string{"no PEM block"}},
		{"garbage in PEM", pemEncode("PRIVATE KEY", []byte(secret)), []string{"parsing PRIVATE KEY"}},
		{"SPKI public labelled private", pemEncode("RSA PRIVATE KEY", rsaSPKI(t, rsaPriv)), []string{"parsing RSA PRIVATE KEY", "private key"}},
		{"PKCS #1 private labelled public", pemEncode("RSA PUBLIC KEY", x509.MarshalPKCS1PrivateKey(rsaPriv)), []string{"parsing RSA PUBLIC KEY", "public key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, priv, err := keyring.ParseRSAKey(tt.in)
			if err == nil {
				t.Fatalf("ParseRSAKey = %v, %v; want an error", pub, priv)
			}
			if pub != nil || priv != nil {
				t.Errorf("ParseRSAKey returned a key with its error")
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("ParseRSAKey err = %q, want it to contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("ParseRSAKey err = %q echoes the input", err)
			}
		})
	}
}

func rsaSPKI(t *testing.T, priv *rsa.PrivateKey) []byte {
	t.Helper()
	b, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseRSAKeyByContent: the other ESDKs' examples write RSA keys under
// labels that do not match their DER form (SPKI as "RSA PUBLIC KEY",
// PKCS #8 as "RSA PRIVATE KEY"), and those SDKs read them by content: so
// must envelope, for every form under either label of its class.
func TestParseRSAKeyByContent(t *testing.T) {
	priv, _ := rsaKeys2048(t)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, label string
		der         []byte
		private     bool
	}{
		{"SPKI as RSA PUBLIC KEY", "RSA PUBLIC KEY", rsaSPKI(t, priv), false},
		{"PKCS #1 public as PUBLIC KEY", "PUBLIC KEY", x509.MarshalPKCS1PublicKey(&priv.PublicKey), false},
		{"PKCS #8 as RSA PRIVATE KEY", "RSA PRIVATE KEY", pkcs8, true},
		{"PKCS #1 private as PRIVATE KEY", "PRIVATE KEY", x509.MarshalPKCS1PrivateKey(priv), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, got, err := keyring.ParseRSAKey(pemEncode(tt.label, tt.der))
			if err != nil {
				t.Fatalf("ParseRSAKey err = %v, want nil", err)
			}
			if tt.private {
				if got == nil || !got.Equal(priv) || pub != nil {
					t.Fatalf("ParseRSAKey = %v, %v; want the private key alone", pub, got)
				}
			} else if pub == nil || !pub.Equal(&priv.PublicKey) || got != nil {
				t.Fatalf("ParseRSAKey = %v, %v; want the public key alone", pub, got)
			}
		})
	}
}
