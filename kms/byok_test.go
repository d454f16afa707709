package kms_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"filippo.io/mldsa"
	mldsax509 "filippo.io/mldsa/x509"

	"github.com/envelopekms/envelope/kms"
)

// external creates a key of Origin EXTERNAL and returns its id.
func (e *env) external(t testing.TB, spec, usage string) string {
	t.Helper()
	out, err := e.svc.CreateKey(t.Context(), &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Origin: kms.OriginExternal})
	if err != nil {
		t.Fatalf("CreateKey(%s, %s, EXTERNAL) err = %v, want nil", spec, usage, err)
	}
	return out.KeyMetadata.KeyId
}

// fast are import options with a quick wrapping key: RSA_2048 (a key
// pair is made per GetParametersForImport).
func fast(alg string) kms.ImportOptions {
	return kms.ImportOptions{WrappingAlgorithm: alg, WrappingKeySpec: kms.WrappingKeyRSA2048}
}

func (e *env) importMaterial(t testing.TB, id string, material []byte, opts kms.ImportOptions) *kms.ImportKeyMaterialOutput {
	t.Helper()
	if opts.WrappingKeySpec == "" {
		opts.WrappingKeySpec = kms.WrappingKeyRSA2048
	}
	out, err := kms.ImportMaterial(t.Context(), e.svc, id, material, opts)
	if err != nil {
		t.Fatalf("ImportMaterial(%s) err = %v, want nil", id, err)
	}
	return out
}

func (e *env) importErr(t testing.TB, id string, material []byte, opts kms.ImportOptions) error {
	t.Helper()
	if opts.WrappingKeySpec == "" {
		opts.WrappingKeySpec = kms.WrappingKeyRSA2048
	}
	_, err := kms.ImportMaterial(t.Context(), e.svc, id, material, opts)
	return err
}

// TestImportSymmetric follows a SYMMETRIC_DEFAULT key of Origin EXTERNAL
// through its life: PendingImport with no material, import with each
// wrapping algorithm, use, deletion, re-import of the same material (old
// ciphertexts decrypt again) and refusal of other material.
func TestImportSymmetric(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{kms.WrapRSAOAEPSHA1, kms.WrapRSAOAEPSHA256, kms.WrapRSAAESKeyWrapSHA1, kms.WrapRSAAESKeyWrapSHA256} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := t.Context()
			id := e.external(t, "", "")
			m := e.describe(t, id)
			if m.KeyState != kms.StatePendingImport || m.Enabled || m.Origin != kms.OriginExternal || m.ExpirationModel != "" || m.ValidTo != nil || m.CurrentKeyMaterialId != "" {
				t.Fatalf("new EXTERNAL key = %+v, want PendingImport, Origin EXTERNAL, no material", m)
			}
			_, err := e.svc.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
			wantCode(t, "Encrypt before import", err, kms.CodeInvalidState)
			if !strings.Contains(err.Error(), e.keyARN(id)+" is pending import.") {
				t.Errorf("Encrypt before import err = %v, want AWS's message", err)
			}
			_, err = e.svc.EnableKey(ctx, &kms.EnableKeyInput{KeyId: id})
			wantCode(t, "EnableKey before import", err, kms.CodeInvalidState)
			_, err = e.svc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id})
			wantCode(t, "DisableKey before import", err, kms.CodeInvalidState)

			material := randBytes(32)
			out := e.importMaterial(t, id, material, fast(alg))
			if out.KeyId != e.keyARN(id) || len(out.KeyMaterialId) != 64 {
				t.Fatalf("ImportKeyMaterial = %+v", out)
			}
			m = e.describe(t, id)
			if m.KeyState != kms.StateEnabled || !m.Enabled || m.ExpirationModel != kms.ExpirationModelDoesNotExpire || m.ValidTo != nil || m.CurrentKeyMaterialId != out.KeyMaterialId {
				t.Fatalf("after import = %+v", m)
			}
			// The key's material is the material imported.
			got, err := kms.MaterialForTest(e.svc, id, 1)
			if err != nil || !bytes.Equal(got, material) {
				t.Fatalf("material after import = %x, %v; want the imported %x", got, err, material)
			}
			blob := e.encrypt(t, id, []byte("secret"), map[string]string{"a": "b"})
			if d := e.decrypt(t, blob, map[string]string{"a": "b"}); string(d.Plaintext) != "secret" || d.KeyMaterialId != out.KeyMaterialId {
				t.Fatalf("Decrypt = %+v", d)
			}

			del, err := e.svc.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: id})
			if err != nil || del.KeyId != e.keyARN(id) || del.KeyMaterialId != out.KeyMaterialId {
				t.Fatalf("DeleteImportedKeyMaterial = %+v, %v", del, err)
			}
			m = e.describe(t, id)
			if m.KeyState != kms.StatePendingImport || m.ExpirationModel != "" || m.CurrentKeyMaterialId != out.KeyMaterialId {
				t.Fatalf("after deletion = %+v, want PendingImport with its material id and no ExpirationModel (as AWS)", m)
			}
			if _, err := kms.MaterialForTest(e.svc, id, 1); err == nil {
				t.Fatal("the material is still there after DeleteImportedKeyMaterial")
			}
			_, err = e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"a": "b"}})
			wantCode(t, "Decrypt after deletion", err, kms.CodeInvalidState)

			// Other material is refused, and leaves the key as it was.
			err = e.importErr(t, id, randBytes(32), fast(alg))
			wantCode(t, "import of other material", err, kms.CodeIncorrectKeyMaterial)
			if m := e.describe(t, id); m.KeyState != kms.StatePendingImport {
				t.Fatalf("after a refused import: %s", m.KeyState)
			}
			// The same material again, with an expiry this time.
			validTo := epoch.Add(48 * time.Hour)
			again := e.importMaterial(t, id, material, kms.ImportOptions{WrappingAlgorithm: alg, ValidTo: validTo})
			if again.KeyMaterialId != out.KeyMaterialId {
				t.Fatalf("re-import KeyMaterialId = %s, want %s", again.KeyMaterialId, out.KeyMaterialId)
			}
			m = e.describe(t, id)
			if m.KeyState != kms.StateEnabled || m.ExpirationModel != kms.ExpirationModelExpires || m.ValidTo == nil || !m.ValidTo.Equal(validTo) {
				t.Fatalf("after re-import = %+v", m)
			}
			if d := e.decrypt(t, blob, map[string]string{"a": "b"}); string(d.Plaintext) != "secret" {
				t.Fatalf("old ciphertext after re-import = %q", d.Plaintext)
			}
		})
	}
}

// TestImportExpiry drives the service's clock past ValidTo: the key
// becomes PendingImport and unusable at once (its cached material too),
// the material is destroyed in the store, and re-importing the same
// material restores it.
func TestImportExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	id := e.external(t, kms.SpecHMAC256, kms.UsageGenerateVerifyMac)
	material := randBytes(40)
	e.importMaterial(t, id, material, kms.ImportOptions{ValidTo: epoch.Add(10 * time.Second)})
	msg := []byte("message")
	mac, err := e.svc.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: id, Message: msg, MacAlgorithm: kms.AlgHMACSHA256})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(9 * time.Second)
	if _, err := e.svc.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: id, Message: msg, MacAlgorithm: kms.AlgHMACSHA256}); err != nil {
		t.Fatalf("GenerateMac a second before ValidTo: %v", err)
	}
	e.clock.Advance(time.Second)
	_, err = e.svc.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: id, Message: msg, MacAlgorithm: kms.AlgHMACSHA256})
	wantCode(t, "GenerateMac at ValidTo", err, kms.CodeInvalidState)
	if !strings.Contains(err.Error(), "is pending import.") {
		t.Errorf("GenerateMac at ValidTo err = %v, want \"… is pending import.\"", err)
	}
	_, err = e.svc.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: id, Message: msg, Mac: mac.Mac, MacAlgorithm: kms.AlgHMACSHA256})
	wantCode(t, "VerifyMac after ValidTo", err, kms.CodeInvalidState)
	if m := e.describe(t, id); m.KeyState != kms.StatePendingImport || m.ExpirationModel != "" || m.ValidTo != nil {
		t.Fatalf("after ValidTo = %+v", m)
	}
	// Destroyed in the store, not only hidden.
	err = e.store.View(ctx, func(tx kms.Tx) error {
		k, err := tx.GetKey(id)
		if err != nil {
			return err
		}
		if len(k.Versions) != 1 || k.Versions[0].Sealed != nil || k.State != kms.StatePendingImport {
			t.Errorf("stored record after expiry = state %s, versions %+v", k.State, k.Versions)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.importMaterial(t, id, material, kms.ImportOptions{})
	vm, err := e.svc.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: id, Message: msg, Mac: mac.Mac, MacAlgorithm: kms.AlgHMACSHA256})
	if err != nil || !vm.MacValid {
		t.Fatalf("VerifyMac after re-import = %+v, %v", vm, err)
	}
	// The MAC is the HMAC of the imported key, computed here.
	h := hmac.New(sha256.New, material)
	h.Write(msg)
	if !hmac.Equal(h.Sum(nil), mac.Mac) {
		t.Fatal("GenerateMac of the imported key differs from HMAC-SHA256 with the material")
	}
	// A sweep with nothing due changes nothing; one after expiry writes it.
	e.importMaterial(t, id, material, kms.ImportOptions{ValidTo: e.clock.Now().Add(time.Hour)})
	e.clock.Advance(2 * time.Hour)
	if err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, id); m.KeyState != kms.StatePendingImport {
		t.Fatalf("after Sweep past ValidTo: %s", m.KeyState)
	}
}

// TestImportKeyPairs imports key pairs of every family, made here with the
// standard library (and filippo.io/mldsa), and checks the KMS uses them:
// the public key is the one imported, signatures verify with it here, and
// ECDH agrees with the local private key.
func TestImportKeyPairs(t *testing.T) {
	t.Parallel()
	msg := []byte("signed with imported material")
	digest := sha256.Sum256(msg)
	type keyPair struct {
		spec, usage string
		priv        func() (any, []byte) // the key and its PKCS #8 DER
	}
	pkcs8 := func(k any) []byte {
		b, err := mldsax509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ec := func(c elliptic.Curve) func() (any, []byte) {
		return func() (any, []byte) {
			k, _ := ecdsa.GenerateKey(c, rand.Reader)
			return k, pkcs8(k)
		}
	}
	cases := []keyPair{
		{kms.SpecECCNISTP256, kms.UsageSignVerify, ec(elliptic.P256())},
		{kms.SpecECCNISTP384, kms.UsageKeyAgreement, ec(elliptic.P384())},
		{kms.SpecECCNISTP521, kms.UsageSignVerify, ec(elliptic.P521())},
		{kms.SpecECCNISTEdwards25519, kms.UsageSignVerify, func() (any, []byte) {
			_, k, _ := ed25519.GenerateKey(rand.Reader)
			return k, pkcs8(k)
		}},
		{kms.SpecMLDSA44, kms.UsageSignVerify, func() (any, []byte) {
			k, _ := mldsa.GenerateKey(mldsa.MLDSA44())
			return k, pkcs8(k)
		}},
		{kms.SpecRSA2048, kms.UsageEncryptDecrypt, func() (any, []byte) {
			k, _ := rsa.GenerateKey(rand.Reader, 2048)
			return k, pkcs8(k)
		}},
	}
	for _, c := range cases {
		t.Run(c.spec+"/"+c.usage, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := t.Context()
			id := e.external(t, c.spec, c.usage)
			_, err := e.svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: id})
			wantCode(t, "GetPublicKey before import", err, kms.CodeInvalidState)
			key, der := c.priv()
			e.importMaterial(t, id, der, fast(kms.WrapRSAAESKeyWrapSHA256))
			pk, err := e.svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: id})
			if err != nil {
				t.Fatal(err)
			}
			want, err := mldsax509.MarshalPKIXPublicKey(key.(crypto.Signer).Public())
			if err != nil || !bytes.Equal(pk.PublicKey, want) {
				t.Fatalf("GetPublicKey after import = %x, want the imported key's %x (%v)", pk.PublicKey, want, err)
			}
			switch k := key.(type) {
			case *ecdsa.PrivateKey:
				if c.usage == kms.UsageKeyAgreement {
					peer, _ := ecdh.P384().GenerateKey(rand.Reader)
					spki, _ := x509.MarshalPKIXPublicKey(peer.PublicKey())
					out, err := e.svc.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: id, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: spki})
					if err != nil {
						t.Fatal(err)
					}
					mine, _ := k.ECDH()
					local, _ := mine.ECDH(peer.PublicKey())
					if !bytes.Equal(out.SharedSecret, local) || out.KeyOrigin != kms.OriginExternal {
						t.Fatalf("DeriveSharedSecret = %x (origin %s), want %x computed here (EXTERNAL)", out.SharedSecret, out.KeyOrigin, local)
					}
					return
				}
				alg := e.describe(t, id).SigningAlgorithms[0]
				h, _ := kms.DigestHash(alg)
				d := h.New()
				d.Write(msg)
				sig := e.sign(t, id, alg, msg)
				if !ecdsa.VerifyASN1(&k.PublicKey, d.Sum(nil), sig) {
					t.Fatal("the KMS's signature does not verify with the imported key's public key")
				}
			case ed25519.PrivateKey:
				if !ed25519.Verify(k.Public().(ed25519.PublicKey), msg, e.sign(t, id, kms.AlgEd25519SHA512, msg)) {
					t.Fatal("Ed25519 signature does not verify with the imported key")
				}
			case *mldsa.PrivateKey:
				if err := mldsa.Verify(k.PublicKey(), msg, e.sign(t, id, kms.AlgMLDSASHAKE256, msg), nil); err != nil {
					t.Fatalf("ML-DSA signature does not verify with the imported key: %v", err)
				}
			case *rsa.PrivateKey:
				ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, digest[:], nil)
				if err != nil {
					t.Fatal(err)
				}
				out, err := e.svc.Decrypt(ctx, &kms.DecryptInput{KeyId: id, CiphertextBlob: ct, EncryptionAlgorithm: kms.AlgRSAOAEPSHA256})
				if err != nil || !bytes.Equal(out.Plaintext, digest[:]) {
					t.Fatalf("Decrypt of a ciphertext made here for the imported key = %x, %v", out, err)
				}
			}
			// A key pair takes no other material, and no new material.
			_, other := c.priv()
			wantCode(t, "import of another key", e.importErr(t, id, other, fast(kms.WrapRSAAESKeyWrapSHA256)), kms.CodeIncorrectKeyMaterial)
			wantCode(t, "NEW_KEY_MATERIAL into a key pair", e.importErr(t, id, other,
				kms.ImportOptions{WrappingAlgorithm: kms.WrapRSAAESKeyWrapSHA256, ImportType: kms.ImportTypeNew}), kms.CodeUnsupportedOperation)
		})
	}
}

func (e *env) sign(t testing.TB, id, alg string, msg []byte) []byte {
	t.Helper()
	out, err := e.svc.Sign(t.Context(), &kms.SignInput{KeyId: id, Message: msg, SigningAlgorithm: alg})
	if err != nil {
		t.Fatalf("Sign(%s, %s) err = %v", id, alg, err)
	}
	return out.Signature
}

// TestImportMaterialChecks: material of the wrong length or kind is
// IncorrectKeyMaterialException, and leaves the key PendingImport.
func TestImportMaterialChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalPKCS8PrivateKey(p384)
	sec1, _ := x509.MarshalECPrivateKey(p384)
	for _, c := range []struct {
		spec, usage string
		material    []byte
		why         string
	}{
		{"", "", randBytes(16), "32 bytes"},
		{"", "", randBytes(33), "32 bytes"},
		{kms.SpecHMAC224, kms.UsageGenerateVerifyMac, randBytes(27), "28 to 64 bytes"},
		{kms.SpecHMAC256, kms.UsageGenerateVerifyMac, randBytes(65), "32 to 64 bytes"},
		{kms.SpecHMAC512, kms.UsageGenerateVerifyMac, randBytes(129), "64 to 128 bytes"},
		{kms.SpecECCNISTP256, kms.UsageSignVerify, p384der, "PKCS #8"},
		{kms.SpecECCNISTP384, kms.UsageSignVerify, sec1, "PKCS #8"},
		{kms.SpecECCNISTP384, kms.UsageSignVerify, randBytes(100), "PKCS #8"},
	} {
		id := e.external(t, c.spec, c.usage)
		err := e.importErr(t, id, c.material, fast(kms.WrapRSAAESKeyWrapSHA256))
		wantCode(t, c.spec+" "+c.why, err, kms.CodeIncorrectKeyMaterial)
		if !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: err = %v, want it to say %q", c.spec, err, c.why)
		}
		if m := e.describe(t, id); m.KeyState != kms.StatePendingImport {
			t.Errorf("%s after refused material: %s", c.spec, m.KeyState)
		}
	}
	// The HMAC bounds themselves are taken.
	for spec, n := range map[string]int{kms.SpecHMAC224: 28, kms.SpecHMAC384: 128} {
		e.importMaterial(t, e.external(t, spec, kms.UsageGenerateVerifyMac), randBytes(n), fast(kms.WrapRSAOAEPSHA256))
	}
}

// TestImportTokens: a token serves only its key, only for 24 hours, only
// whole, only from this root key, and only with its wrapping key and
// algorithm.
func TestImportTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	a, b := e.external(t, "", ""), e.external(t, "", "")
	params := func(id, alg string) *kms.GetParametersForImportOutput {
		out, err := e.svc.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: id, WrappingAlgorithm: alg, WrappingKeySpec: kms.WrappingKeyRSA2048})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	material := randBytes(32)
	pa := params(a, kms.WrapRSAOAEPSHA256)
	if pa.KeyId != e.keyARN(a) || !pa.ParametersValidTo.Equal(epoch.Add(24*time.Hour)) || len(pa.ImportToken) > 6144 {
		t.Fatalf("GetParametersForImport = KeyId %s, ParametersValidTo %v, token %d bytes", pa.KeyId, pa.ParametersValidTo, len(pa.ImportToken))
	}
	wrapped, err := kms.WrapKeyMaterial(pa.PublicKey, kms.WrapRSAOAEPSHA256, material)
	if err != nil {
		t.Fatal(err)
	}
	imp := func(id string, token, wrapped []byte) error {
		_, err := e.svc.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: id, ImportToken: token, EncryptedKeyMaterial: wrapped,
			ExpirationModel: kms.ExpirationModelDoesNotExpire})
		return err
	}
	wantCode(t, "key a's token for key b", imp(b, pa.ImportToken, wrapped), kms.CodeInvalidImportToken)
	bad := bytes.Clone(pa.ImportToken)
	bad[len(bad)/2] ^= 1
	wantCode(t, "a changed token", imp(a, bad, wrapped), kms.CodeInvalidImportToken)
	wantCode(t, "a truncated token", imp(a, pa.ImportToken[:len(pa.ImportToken)-1], wrapped), kms.CodeInvalidImportToken)
	wantCode(t, "no token version", imp(a, []byte{9, 9, 9}, wrapped), kms.CodeInvalidImportToken)
	// Another keystore's token for a key of the same id cannot exist
	// (ids are random); another root key's token is refused all the same.
	other := newEnv(t)
	po, err := other.svc.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: other.external(t, "", ""), WrappingAlgorithm: kms.WrapRSAOAEPSHA256, WrappingKeySpec: kms.WrappingKeyRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "another keystore's token", imp(a, po.ImportToken, wrapped), kms.CodeInvalidImportToken)
	// Material wrapped for another wrapping key, or with another
	// algorithm, does not decrypt.
	pb := params(b, kms.WrapRSAOAEPSHA1)
	wantCode(t, "material wrapped with another key", imp(b, pb.ImportToken, wrapped), kms.CodeInvalidCiphertext)
	sha256wrapped, _ := kms.WrapKeyMaterial(pb.PublicKey, kms.WrapRSAOAEPSHA256, material)
	wantCode(t, "material wrapped with OAEP-SHA-256 for an OAEP-SHA-1 token", imp(b, pb.ImportToken, sha256wrapped), kms.CodeInvalidCiphertext)
	aesWrapped, _ := kms.WrapKeyMaterial(pb.PublicKey, kms.WrapRSAAESKeyWrapSHA1, material)
	wantCode(t, "RSA_AES_KEY_WRAP material for an RSAES_OAEP token", imp(b, pb.ImportToken, aesWrapped), kms.CodeInvalidCiphertext)
	pc := params(b, kms.WrapRSAAESKeyWrapSHA256)
	cw, _ := kms.WrapKeyMaterial(pc.PublicKey, kms.WrapRSAAESKeyWrapSHA256, material)
	for name, w := range map[string][]byte{"truncated": cw[:len(cw)-8], "only the RSA part": cw[:256], "tail changed": append(bytes.Clone(cw[:len(cw)-1]), cw[len(cw)-1]^1)} {
		wantCode(t, "RSA_AES_KEY_WRAP material "+name, imp(b, pc.ImportToken, w), kms.CodeInvalidCiphertext)
	}
	if m := e.describe(t, b); m.KeyState != kms.StatePendingImport {
		t.Fatalf("key b after refused imports: %s", m.KeyState)
	}

	// The token works, and again for the same key (a re-import) while
	// it is valid; not after its 24 hours.
	if err := imp(a, pa.ImportToken, wrapped); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: a}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(24*time.Hour - time.Second)
	if err := imp(a, pa.ImportToken, wrapped); err != nil {
		t.Fatalf("the token a second before its end: %v", err)
	}
	e.clock.Advance(time.Second)
	err = imp(a, pa.ImportToken, wrapped)
	wantCode(t, "a token after 24 hours", err, kms.CodeExpiredImportToken)
}

// TestImportRefusals: the input errors and the state and origin rules, with
// AWS's exception names (and messages where AWS's are known).
func TestImportRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	sym := e.symKey(t)
	ext := e.external(t, "", "")
	rsaExt := e.external(t, kms.SpecRSA2048, kms.UsageSignVerify)
	p521 := e.external(t, kms.SpecECCNISTP521, kms.UsageSignVerify)
	gp := func(id, alg, spec string) error {
		_, err := e.svc.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: id, WrappingAlgorithm: alg, WrappingKeySpec: spec})
		return err
	}
	_, err := e.svc.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: sym, WrappingAlgorithm: kms.WrapRSAOAEPSHA256, WrappingKeySpec: kms.WrappingKeyRSA2048})
	wantCode(t, "GetParametersForImport of an AWS_KMS key", err, kms.CodeUnsupportedOperation)
	if want := e.keyARN(sym) + " origin is AWS_KMS which is not valid for this operation."; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want AWS's message %q", err, want)
	}
	wantCode(t, "RSAES_PKCS1_V1_5", gp(ext, "RSAES_PKCS1_V1_5", kms.WrappingKeyRSA2048), kms.CodeUnsupportedOperation)
	wantCode(t, "SM2PKE", gp(ext, "SM2PKE", "SM2"), kms.CodeUnsupportedOperation)
	wantCode(t, "unknown algorithm", gp(ext, "RSAES_OAEP_SHA_512", kms.WrappingKeyRSA2048), kms.CodeValidation)
	wantCode(t, "unknown key spec", gp(ext, kms.WrapRSAOAEPSHA256, "RSA_1024"), kms.CodeValidation)
	wantCode(t, "no algorithm", gp(ext, "", kms.WrappingKeyRSA2048), kms.CodeValidation)
	wantCode(t, "RSA material with RSAES_OAEP", gp(rsaExt, kms.WrapRSAOAEPSHA256, kms.WrappingKeyRSA4096), kms.CodeUnsupportedOperation)
	wantCode(t, "P-521 material with RSAES_OAEP and RSA_2048", gp(p521, kms.WrapRSAOAEPSHA1, kms.WrappingKeyRSA2048), kms.CodeUnsupportedOperation)
	wantCode(t, "P-521 material with RSAES_OAEP and RSA_3072", gp(p521, kms.WrapRSAOAEPSHA256, kms.WrappingKeyRSA3072), "")
	wantCode(t, "an alias", gp("alias/x", kms.WrapRSAOAEPSHA256, kms.WrappingKeyRSA2048), kms.CodeNotFound)

	pa, err := e.svc.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: ext, WrappingAlgorithm: kms.WrapRSAOAEPSHA256, WrappingKeySpec: kms.WrappingKeyRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	wrapped, _ := kms.WrapKeyMaterial(pa.PublicKey, kms.WrapRSAOAEPSHA256, randBytes(32))
	at := func(d time.Duration) *kms.Timestamp { return &kms.Timestamp{Time: epoch.Add(d)} }
	for _, c := range []struct {
		name string
		in   kms.ImportKeyMaterialInput
		code string
		msg  string
	}{
		{"ExpirationModel defaults to KEY_MATERIAL_EXPIRES, which needs ValidTo", kms.ImportKeyMaterialInput{}, kms.CodeValidation,
			"A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"},
		{"ValidTo with KEY_MATERIAL_DOES_NOT_EXPIRE", kms.ImportKeyMaterialInput{ExpirationModel: kms.ExpirationModelDoesNotExpire, ValidTo: at(time.Hour)}, kms.CodeValidation, "ValidTo"},
		{"ValidTo in the past", kms.ImportKeyMaterialInput{ValidTo: at(-time.Second)}, kms.CodeValidation, "not in the future"},
		{"ValidTo now", kms.ImportKeyMaterialInput{ValidTo: at(0)}, kms.CodeValidation, "not in the future"},
		{"ValidTo past 365 days", kms.ImportKeyMaterialInput{ValidTo: at(366 * 24 * time.Hour)}, kms.CodeValidation, "365 days"},
		{"unknown ExpirationModel", kms.ImportKeyMaterialInput{ExpirationModel: "NEVER"}, kms.CodeValidation, "ExpirationModel"},
		{"unknown ImportType", kms.ImportKeyMaterialInput{ExpirationModel: kms.ExpirationModelDoesNotExpire, ImportType: "OTHER"}, kms.CodeValidation, "ImportType"},
		{"KeyMaterialId with NEW_KEY_MATERIAL", kms.ImportKeyMaterialInput{ExpirationModel: kms.ExpirationModelDoesNotExpire, ImportType: kms.ImportTypeNew,
			KeyMaterialId: strings.Repeat("a", 64)}, kms.CodeValidation, "KeyMaterialId"},
		{"malformed KeyMaterialId", kms.ImportKeyMaterialInput{ExpirationModel: kms.ExpirationModelDoesNotExpire, KeyMaterialId: "ABC"}, kms.CodeValidation, "KeyMaterialId"},
		{"description with a quote", kms.ImportKeyMaterialInput{ExpirationModel: kms.ExpirationModelDoesNotExpire, KeyMaterialDescription: `"x"`}, kms.CodeValidation, "KeyMaterialDescription"},
		{"EXISTING_KEY_MATERIAL into a key with none", kms.ImportKeyMaterialInput{ExpirationModel: kms.ExpirationModelDoesNotExpire, ImportType: kms.ImportTypeExisting},
			kms.CodeIncorrectKeyMaterial, "NEW_KEY_MATERIAL"},
	} {
		in := c.in
		in.KeyId, in.ImportToken, in.EncryptedKeyMaterial = ext, pa.ImportToken, wrapped
		_, err := e.svc.ImportKeyMaterial(ctx, &in)
		wantCode(t, c.name, err, c.code)
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want it to say %q", c.name, err, c.msg)
		}
	}
	_, err = e.svc.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: ext, EncryptedKeyMaterial: wrapped, ExpirationModel: kms.ExpirationModelDoesNotExpire})
	wantCode(t, "no ImportToken", err, kms.CodeValidation)
	_, err = e.svc.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: sym, ImportToken: pa.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: kms.ExpirationModelDoesNotExpire})
	wantCode(t, "ImportKeyMaterial into an AWS_KMS key", err, kms.CodeUnsupportedOperation)
	_, err = e.svc.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: sym})
	wantCode(t, "DeleteImportedKeyMaterial of an AWS_KMS key", err, kms.CodeUnsupportedOperation)
	// On a key with no material, DeleteImportedKeyMaterial does nothing.
	if out, err := e.svc.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: ext}); err != nil || out.KeyMaterialId != "" {
		t.Fatalf("DeleteImportedKeyMaterial of a key with no material = %+v, %v", out, err)
	}
	// Automatic rotation: never for EXTERNAL keys, whatever their state.
	_, err = e.svc.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: ext})
	wantCode(t, "EnableKeyRotation of an EXTERNAL key", err, kms.CodeUnsupportedOperation)
	_, err = e.svc.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: ext})
	wantCode(t, "DisableKeyRotation of an EXTERNAL key", err, kms.CodeUnsupportedOperation)
	_, err = e.svc.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: ext})
	wantCode(t, "RotateKeyOnDemand of a key pending import", err, kms.CodeInvalidState)

	// Pending deletion: no import; cancelling brings a key with no
	// material back PendingImport, one with its material Disabled.
	if _, err := e.svc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: ext, PendingWindowInDays: i32(7)}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "GetParametersForImport pending deletion", gp(ext, kms.WrapRSAOAEPSHA256, kms.WrappingKeyRSA2048), kms.CodeInvalidState)
	_, err = e.svc.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: ext, ImportToken: pa.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: kms.ExpirationModelDoesNotExpire})
	wantCode(t, "ImportKeyMaterial pending deletion", err, kms.CodeInvalidState)
	if _, err := e.svc.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: ext}); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, ext); m.KeyState != kms.StatePendingImport {
		t.Fatalf("cancelled deletion of a key with no material: %s, want PendingImport", m.KeyState)
	}
	material := randBytes(32)
	e.importMaterial(t, ext, material, fast(kms.WrapRSAOAEPSHA256))
	if _, err := e.svc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: ext, PendingWindowInDays: i32(7)}); err != nil {
		t.Fatal(err)
	}
	// Deleting the material of a key pending deletion leaves it so.
	if _, err := e.svc.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: ext}); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, ext); m.KeyState != kms.StatePendingDeletion {
		t.Fatalf("material deleted while pending deletion: %s", m.KeyState)
	}
	if _, err := e.svc.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: ext}); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, ext); m.KeyState != kms.StatePendingImport {
		t.Fatalf("cancelled deletion after the material went: %s", m.KeyState)
	}
	e.importMaterial(t, ext, material, fast(kms.WrapRSAOAEPSHA256))
	if _, err := e.svc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: ext}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: ext, PendingWindowInDays: i32(7)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: ext}); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, ext); m.KeyState != kms.StateDisabled {
		t.Fatalf("cancelled deletion of a key with its material: %s, want Disabled", m.KeyState)
	}
	// Re-importing into a disabled key keeps it disabled.
	e.importMaterial(t, ext, material, fast(kms.WrapRSAOAEPSHA256))
	if m := e.describe(t, ext); m.KeyState != kms.StateDisabled {
		t.Fatalf("re-import into a disabled key: %s", m.KeyState)
	}
}

// TestImportOnDemandRotation: a symmetric EXTERNAL key takes new material
// (NEW_KEY_MATERIAL), which waits PENDING_ROTATION for RotateKeyOnDemand;
// ciphertexts of every material decrypt once all are imported; deleting a
// non-current material makes the key PendingImport until it is back.
func TestImportOnDemandRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	id := e.external(t, "", "")
	m1, m2, m3 := randBytes(32), randBytes(32), randBytes(32)
	first := e.importMaterial(t, id, m1, kms.ImportOptions{Description: "first"})
	_, err := e.svc.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id})
	wantCode(t, "RotateKeyOnDemand with nothing pending", err, kms.CodeInvalidState)
	if !strings.Contains(err.Error(), "No available key material pending rotation for the key: "+e.keyARN(id)+".") {
		t.Errorf("err = %v, want AWS's message", err)
	}
	blob1 := e.encrypt(t, id, []byte("one"), nil)
	second := e.importMaterial(t, id, m2, kms.ImportOptions{ImportType: kms.ImportTypeNew, ValidTo: epoch.Add(time.Hour)})
	if m := e.describe(t, id); m.CurrentKeyMaterialId != first.KeyMaterialId || m.ValidTo != nil || m.ExpirationModel != kms.ExpirationModelDoesNotExpire {
		t.Fatalf("with material pending rotation = %+v: current, ValidTo and ExpirationModel are the first's", m)
	}
	err = e.importErr(t, id, m3, kms.ImportOptions{ImportType: kms.ImportTypeNew})
	wantCode(t, "a second pending material", err, kms.CodeInvalidState)
	if !strings.Contains(err.Error(), "because another key material (id: "+second.KeyMaterialId+") is pending rotation.") {
		t.Errorf("err = %v, want AWS's message", err)
	}
	wantCode(t, "NEW_KEY_MATERIAL that is the first", e.importErr(t, id, m1, kms.ImportOptions{ImportType: kms.ImportTypeNew}), kms.CodeIncorrectKeyMaterial)
	rot := func(include string) []kms.RotationsListEntry {
		out, err := e.svc.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: id, IncludeKeyMaterial: include})
		if err != nil {
			t.Fatal(err)
		}
		return out.Rotations
	}
	if all := rot("ALL_KEY_MATERIAL"); len(all) != 2 || all[0].KeyMaterialState != "CURRENT" || all[0].ImportState != "IMPORTED" || all[0].KeyMaterialDescription != "first" ||
		all[0].RotationType != "" || all[1].KeyMaterialState != "PENDING_ROTATION" || all[1].ExpirationModel != kms.ExpirationModelExpires || all[1].ValidTo == nil || all[1].RotationDate != nil {
		t.Fatalf("ALL_KEY_MATERIAL before rotation = %+v", all)
	}
	if r := rot(""); len(r) != 0 {
		t.Fatalf("ROTATIONS_ONLY before rotation = %+v", r)
	}
	// Pending material can be deleted (and goes), then imported again.
	if _, err := e.svc.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: id, KeyMaterialId: second.KeyMaterialId}); err != nil {
		t.Fatal(err)
	}
	if all := rot("ALL_KEY_MATERIAL"); len(all) != 1 || e.describe(t, id).KeyState != kms.StateEnabled {
		t.Fatalf("after deleting the pending material: %+v", all)
	}
	e.importMaterial(t, id, m2, kms.ImportOptions{ImportType: kms.ImportTypeNew})
	if _, err := e.svc.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, id); m.CurrentKeyMaterialId != second.KeyMaterialId {
		t.Fatalf("after RotateKeyOnDemand current = %s, want %s", m.CurrentKeyMaterialId, second.KeyMaterialId)
	}
	blob2 := e.encrypt(t, id, []byte("two"), nil)
	if d := e.decrypt(t, blob2, nil); d.KeyMaterialId != second.KeyMaterialId {
		t.Fatalf("new ciphertexts use %s", d.KeyMaterialId)
	}
	if d := e.decrypt(t, blob1, nil); string(d.Plaintext) != "one" || d.KeyMaterialId != first.KeyMaterialId {
		t.Fatalf("the first material's ciphertext = %+v", d)
	}
	if r := rot(""); len(r) != 1 || r[0].RotationType != "ON_DEMAND" || r[0].KeyMaterialState != "CURRENT" || r[0].RotationDate == nil {
		t.Fatalf("ROTATIONS_ONLY after rotation = %+v", r)
	}
	// Deleting the old material makes the key PendingImport: every
	// material must be there for it to be used.
	if _, err := e.svc.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: id, KeyMaterialId: first.KeyMaterialId}); err != nil {
		t.Fatal(err)
	}
	if m := e.describe(t, id); m.KeyState != kms.StatePendingImport {
		t.Fatalf("after deleting non-current material: %s", m.KeyState)
	}
	if all := rot("ALL_KEY_MATERIAL"); all[0].ImportState != "PENDING_IMPORT" || all[0].KeyMaterialState != "NON_CURRENT" {
		t.Fatalf("ALL_KEY_MATERIAL = %+v", all)
	}
	wantCode(t, "re-import naming the other material", e.importErr(t, id, m1, kms.ImportOptions{KeyMaterialId: second.KeyMaterialId}), kms.CodeIncorrectKeyMaterial)
	e.importMaterial(t, id, m1, kms.ImportOptions{KeyMaterialId: first.KeyMaterialId})
	if d := e.decrypt(t, blob1, nil); string(d.Plaintext) != "one" {
		t.Fatal("old ciphertext after re-import")
	}
	_, err = e.svc.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: id, KeyMaterialId: strings.Repeat("0", 64)})
	wantCode(t, "deleting material the key does not have", err, kms.CodeNotFound)
}

// TestImportAuthorized: the import operations ask the Authorizer about the
// key, with its actions, and tell it the key's origin (kms:KeyOrigin).
func TestImportAuthorized(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.external(t, "", "")
	var asked []string
	ctx := kms.WithAuthorizer(t.Context(), kms.AuthorizerFunc(func(_ context.Context, req *kms.AuthzRequest) error {
		if req.Key == nil || req.Key.Origin != kms.OriginExternal {
			t.Errorf("%s asked about %+v, want the EXTERNAL key", req.Action, req.Key)
		}
		asked = append(asked, req.Action)
		if req.Action == "kms:DeleteImportedKeyMaterial" {
			return &kms.Error{Code: kms.CodeAccessDenied, Message: "no"}
		}
		return nil
	}))
	if _, err := kms.ImportMaterial(ctx, e.svc, id, randBytes(32), fast(kms.WrapRSAOAEPSHA1)); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: id})
	wantCode(t, "refused DeleteImportedKeyMaterial", err, kms.CodeAccessDenied)
	if m := e.describe(t, id); m.KeyState != kms.StateEnabled {
		t.Fatalf("after a refused deletion: %s", m.KeyState)
	}
	want := "kms:GetParametersForImport kms:ImportKeyMaterial kms:ImportKeyMaterial kms:DeleteImportedKeyMaterial"
	if got := strings.Join(asked, " "); got != want {
		t.Errorf("asked %q, want %q", got, want)
	}
}

// BenchmarkGetParametersForImport: one wrapping key pair per call, as AWS
// makes them; its cost is RSA key generation.
func BenchmarkGetParametersForImport(b *testing.B) {
	e := newEnv(b)
	id := e.external(b, "", "")
	for _, spec := range []string{kms.WrappingKeyRSA2048, kms.WrappingKeyRSA3072} {
		b.Run(spec, func(b *testing.B) {
			for b.Loop() {
				if _, err := e.svc.GetParametersForImport(b.Context(), &kms.GetParametersForImportInput{KeyId: id,
					WrappingAlgorithm: kms.WrapRSAAESKeyWrapSHA256, WrappingKeySpec: spec}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkImportKeyMaterial: a re-import of a symmetric key's material
// with one RSA_2048 token (the token opened, RSA-OAEP, the AES key wrap
// undone, the material checked and sealed, the record written).
func BenchmarkImportKeyMaterial(b *testing.B) {
	e := newEnv(b)
	id := e.external(b, "", "")
	p, err := e.svc.GetParametersForImport(b.Context(), &kms.GetParametersForImportInput{KeyId: id,
		WrappingAlgorithm: kms.WrapRSAAESKeyWrapSHA256, WrappingKeySpec: kms.WrappingKeyRSA2048})
	if err != nil {
		b.Fatal(err)
	}
	wrapped, err := kms.WrapKeyMaterial(p.PublicKey, kms.WrapRSAAESKeyWrapSHA256, randBytes(32))
	if err != nil {
		b.Fatal(err)
	}
	in := &kms.ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: kms.ExpirationModelDoesNotExpire}
	for b.Loop() {
		if _, err := e.svc.ImportKeyMaterial(b.Context(), in); err != nil {
			b.Fatal(err)
		}
	}
}
