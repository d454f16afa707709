package kms_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"slices"
	"testing"

	"filippo.io/mldsa"
	mldsax509 "filippo.io/mldsa/x509"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/envelopekms/envelope/kms"
)

// signingSpecs are the specs that take SIGN_VERIFY, with the signing
// algorithms AWS gives each.
var signingSpecs = []struct {
	spec string
	algs []string
}{
	{kms.SpecRSA2048, rsaSigning},
	{kms.SpecRSA3072, rsaSigning},
	{kms.SpecRSA4096, rsaSigning},
	{kms.SpecECCNISTP256, []string{kms.AlgECDSASHA256}},
	{kms.SpecECCNISTP384, []string{kms.AlgECDSASHA384}},
	{kms.SpecECCNISTP521, []string{kms.AlgECDSASHA512}},
	{kms.SpecECCSECGP256K1, []string{kms.AlgECDSASHA256}},
	{kms.SpecECCNISTEdwards25519, []string{kms.AlgEd25519SHA512, kms.AlgEd25519PHSHA512}},
	{kms.SpecMLDSA44, []string{kms.AlgMLDSASHAKE256}},
	{kms.SpecMLDSA65, []string{kms.AlgMLDSASHAKE256}},
	{kms.SpecMLDSA87, []string{kms.AlgMLDSASHAKE256}},
}

var rsaSigning = []string{kms.AlgRSAPSSSHA256, kms.AlgRSAPSSSHA384, kms.AlgRSAPSSSHA512,
	kms.AlgRSAPKCS1SHA256, kms.AlgRSAPKCS1SHA384, kms.AlgRSAPKCS1SHA512}

// messageTypes are the MessageTypes each signing algorithm takes.
func messageTypes(alg string) []string {
	switch alg {
	case kms.AlgEd25519SHA512:
		return []string{kms.MessageTypeRaw}
	case kms.AlgEd25519PHSHA512:
		return []string{kms.MessageTypeDigest}
	case kms.AlgMLDSASHAKE256:
		return []string{kms.MessageTypeRaw, kms.MessageTypeExternalMu}
	}
	return []string{kms.MessageTypeRaw, kms.MessageTypeDigest}
}

// messageAs returns message in the form messageType takes: itself, its
// digest for alg, or its ML-DSA μ for the key whose SPKI is pub.
func messageAs(t testing.TB, alg, messageType string, pub, message []byte) []byte {
	t.Helper()
	switch messageType {
	case kms.MessageTypeDigest:
		h, ok := kms.DigestHash(alg)
		if !ok {
			t.Fatalf("DigestHash(%s) = none", alg)
		}
		d := h.New()
		d.Write(message)
		return d.Sum(nil)
	case kms.MessageTypeExternalMu:
		mu, err := kms.ExternalMu(pub, bytes.NewReader(message))
		if err != nil {
			t.Fatalf("ExternalMu: %v", err)
		}
		return mu
	}
	return message
}

// verifyOffline checks sig with the public key alone (a DER SPKI, as
// GetPublicKey returns it), with the standard library or the family's
// library, as a user of the public key would: the encodings AWS documents
// (PKCS #1 RSA, DER ECDSA, raw Ed25519, FIPS 204 ML-DSA).
func verifyOffline(t testing.TB, spec, alg string, spki, message, sig []byte) bool {
	t.Helper()
	if spec == kms.SpecECCSECGP256K1 {
		var info struct {
			Algorithm struct{ Algorithm, Curve asn1.ObjectIdentifier }
			Key       asn1.BitString
		}
		if _, err := asn1.Unmarshal(spki, &info); err != nil || !info.Algorithm.Curve.Equal(asn1.ObjectIdentifier{1, 3, 132, 0, 10}) {
			t.Fatalf("secp256k1 SPKI %x: %v, curve %v", spki, err, info.Algorithm.Curve)
		}
		pub, err := secp256k1.ParsePubKey(info.Key.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		s, err := secpecdsa.ParseDERSignature(sig)
		d := messageAs(t, alg, kms.MessageTypeDigest, nil, message)
		return err == nil && s.Verify(d, pub)
	}
	key, err := mldsax509.ParsePKIXPublicKey(spki)
	if err != nil {
		t.Fatalf("parsing the public key of a %s key: %v", spec, err)
	}
	switch pub := key.(type) {
	case *rsa.PublicKey:
		h, _ := kms.DigestHash(alg)
		d := messageAs(t, alg, kms.MessageTypeDigest, nil, message)
		if slices.Contains([]string{kms.AlgRSAPSSSHA256, kms.AlgRSAPSSSHA384, kms.AlgRSAPSSSHA512}, alg) {
			return rsa.VerifyPSS(pub, h, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(pub, h, d, sig) == nil
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(pub, messageAs(t, alg, kms.MessageTypeDigest, nil, message), sig)
	case ed25519.PublicKey:
		if alg == kms.AlgEd25519PHSHA512 {
			// HashEdDSA of the SHA-512 digest, which it hashes again.
			d := sha512.Sum512(message)
			ph := sha512.Sum512(d[:])
			return ed25519.VerifyWithOptions(pub, ph[:], sig, &ed25519.Options{Hash: crypto.SHA512}) == nil
		}
		return ed25519.Verify(pub, message, sig)
	case *mldsa.PublicKey:
		return mldsa.Verify(pub, message, sig, nil) == nil
	}
	t.Fatalf("a %s key has a %T public key", spec, key)
	return false
}

// TestSignVerifyEverySpec: every signing spec × algorithm × message type
// signs, and the signature verifies through Verify with every message type
// the algorithm takes, and offline with the public key; the refusals are
// AWS's.
func TestSignVerifyEverySpec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	message := []byte("envelope signs this message")
	other := []byte("envelope signs this message!")
	for _, ss := range signingSpecs {
		t.Run(ss.spec, func(t *testing.T) {
			ck, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: ss.spec, KeyUsage: kms.UsageSignVerify})
			if err != nil {
				t.Fatalf("CreateKey(%s, SIGN_VERIFY) err = %v", ss.spec, err)
			}
			m := ck.KeyMetadata
			if !slices.Equal(m.SigningAlgorithms, ss.algs) || m.EncryptionAlgorithms != nil || m.KeyUsage != kms.UsageSignVerify {
				t.Errorf("metadata: SigningAlgorithms %v, EncryptionAlgorithms %v, usage %s; want %v, none, SIGN_VERIFY", m.SigningAlgorithms, m.EncryptionAlgorithms, m.KeyUsage, ss.algs)
			}
			pk, err := e.svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: m.Arn})
			if err != nil {
				t.Fatalf("GetPublicKey err = %v", err)
			}
			if !slices.Equal(pk.SigningAlgorithms, ss.algs) || pk.KeyUsage != kms.UsageSignVerify || pk.KeySpec != ss.spec {
				t.Errorf("GetPublicKey = %+v", pk)
			}
			for _, alg := range ss.algs {
				for _, mt := range messageTypes(alg) {
					t.Run(alg+"/"+mt, func(t *testing.T) {
						in := messageAs(t, alg, mt, pk.PublicKey, message)
						out, err := e.svc.Sign(ctx, &kms.SignInput{KeyId: m.KeyId, Message: in, MessageType: mt, SigningAlgorithm: alg})
						if err != nil {
							t.Fatalf("Sign err = %v", err)
						}
						if out.KeyId != m.Arn || out.SigningAlgorithm != alg {
							t.Errorf("Sign = %+v", out)
						}
						if !verifyOffline(t, ss.spec, alg, pk.PublicKey, message, out.Signature) {
							t.Errorf("the signature does not verify offline with the public key")
						}
						if verifyOffline(t, ss.spec, alg, pk.PublicKey, other, out.Signature) {
							t.Errorf("the signature verifies offline for another message")
						}
						// Verify with every message type the algorithm takes:
						// a message and its digest (or μ) are the same.
						for _, vt := range messageTypes(alg) {
							_, err := e.svc.Verify(ctx, &kms.VerifyInput{KeyId: "alias/none-" + alg, Message: messageAs(t, alg, vt, pk.PublicKey, message),
								MessageType: vt, Signature: out.Signature, SigningAlgorithm: alg})
							wantCode(t, "Verify through an alias that does not exist", err, kms.CodeNotFound)
							v, err := e.svc.Verify(ctx, &kms.VerifyInput{KeyId: m.KeyId, Message: messageAs(t, alg, vt, pk.PublicKey, message),
								MessageType: vt, Signature: out.Signature, SigningAlgorithm: alg})
							if err != nil || !v.SignatureValid || v.KeyId != m.Arn || v.SigningAlgorithm != alg {
								t.Errorf("Verify(%s) = %+v, %v; want valid", vt, v, err)
							}
							_, err = e.svc.Verify(ctx, &kms.VerifyInput{KeyId: m.KeyId, Message: messageAs(t, alg, vt, pk.PublicKey, other),
								MessageType: vt, Signature: out.Signature, SigningAlgorithm: alg})
							wantCode(t, "Verify("+vt+") of another message", err, kms.CodeInvalidSignature)
						}
						bad := bytes.Clone(out.Signature)
						bad[len(bad)/2] ^= 0x10
						_, err = e.svc.Verify(ctx, &kms.VerifyInput{KeyId: m.KeyId, Message: in, MessageType: mt, Signature: bad, SigningAlgorithm: alg})
						wantCode(t, "Verify of a tampered signature", err, kms.CodeInvalidSignature)
						if ke, ok := err.(*kms.Error); !ok || ke.KeyARN != m.Arn {
							t.Errorf("Verify error %#v: want its KeyARN %s", err, m.Arn)
						}
					})
				}
			}
			// An algorithm of another spec: InvalidKeyUsageException.
			wrong := kms.AlgECDSASHA384
			if ss.spec == kms.SpecECCNISTP384 {
				wrong = kms.AlgECDSASHA256
			}
			_, err = e.svc.Sign(ctx, &kms.SignInput{KeyId: m.KeyId, Message: message, SigningAlgorithm: wrong})
			wantCode(t, "Sign with "+wrong, err, kms.CodeInvalidKeyUsage)
			_, err = e.svc.Verify(ctx, &kms.VerifyInput{KeyId: m.KeyId, Message: message, Signature: []byte{1}, SigningAlgorithm: wrong})
			wantCode(t, "Verify with "+wrong, err, kms.CodeInvalidKeyUsage)
			// 4096 bytes sign; 4097 do not.
			alg := ss.algs[0]
			if _, err := e.svc.Sign(ctx, &kms.SignInput{KeyId: m.KeyId, Message: make([]byte, 4096), SigningAlgorithm: alg, MessageType: kms.DefaultMessageType(alg)}); err != nil && alg != kms.AlgEd25519PHSHA512 {
				t.Errorf("Sign of 4096 bytes err = %v", err)
			}
			_, err = e.svc.Sign(ctx, &kms.SignInput{KeyId: m.KeyId, Message: make([]byte, 4097), SigningAlgorithm: alg})
			wantCode(t, "Sign of 4097 bytes", err, kms.CodeValidation)
			_, err = e.svc.Sign(ctx, &kms.SignInput{KeyId: m.KeyId, SigningAlgorithm: alg})
			wantCode(t, "Sign of nothing", err, kms.CodeValidation)
			// A message type the algorithm does not take, a digest of
			// the wrong length: ValidationException.
			for _, mt := range []string{kms.MessageTypeRaw, kms.MessageTypeDigest, kms.MessageTypeExternalMu} {
				if slices.Contains(messageTypes(alg), mt) {
					continue
				}
				_, err = e.svc.Sign(ctx, &kms.SignInput{KeyId: m.KeyId, Message: make([]byte, 64), MessageType: mt, SigningAlgorithm: alg})
				wantCode(t, "Sign with MessageType "+mt, err, kms.CodeValidation)
			}
			if h, ok := kms.DigestHash(alg); ok {
				_, err = e.svc.Sign(ctx, &kms.SignInput{KeyId: m.KeyId, Message: make([]byte, h.Size()+1), MessageType: kms.MessageTypeDigest, SigningAlgorithm: alg})
				wantCode(t, "Sign of a digest one byte too long", err, kms.CodeValidation)
			}
			// Not a MAC, encryption or key agreement key.
			_, err = e.svc.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: m.KeyId, Message: message, MacAlgorithm: kms.AlgHMACSHA256})
			wantCode(t, "GenerateMac", err, kms.CodeInvalidKeyUsage)
			_, err = e.svc.Encrypt(ctx, &kms.EncryptInput{KeyId: m.KeyId, Plaintext: message, EncryptionAlgorithm: kms.AlgRSAOAEPSHA256})
			wantCode(t, "Encrypt", err, kms.CodeInvalidKeyUsage)
			_, err = e.svc.Decrypt(ctx, &kms.DecryptInput{KeyId: m.KeyId, CiphertextBlob: make([]byte, 256), EncryptionAlgorithm: kms.AlgRSAOAEPSHA256})
			wantCode(t, "Decrypt", err, kms.CodeInvalidKeyUsage)
			_, err = e.svc.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: m.KeyId, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: pk.PublicKey})
			wantCode(t, "DeriveSharedSecret", err, kms.CodeInvalidKeyUsage)
		})
	}
}

// TestSignRefusals: what Sign and Verify refuse before any key is read,
// and the keys they refuse.
func TestSignRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	sym := e.symKey(t)
	ka, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kms.SpecECCNISTP256, KeyUsage: kms.UsageKeyAgreement})
	if err != nil {
		t.Fatal(err)
	}
	sv, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kms.SpecECCNISTP256, KeyUsage: kms.UsageSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	id := sv.KeyMetadata.KeyId
	for _, tc := range []struct {
		name string
		in   kms.SignInput
		want string
	}{
		{"no algorithm", kms.SignInput{KeyId: id, Message: []byte("m")}, kms.CodeValidation},
		{"algorithm not in the enum", kms.SignInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: "ECDSA_SHA_1"}, kms.CodeValidation},
		{"SM2DSA (in the enum)", kms.SignInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: "SM2DSA"}, kms.CodeInvalidKeyUsage},
		{"message type not in the enum", kms.SignInput{KeyId: id, Message: []byte("m"), MessageType: "HASH", SigningAlgorithm: kms.AlgECDSASHA256}, kms.CodeValidation},
		{"too many grant tokens", kms.SignInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: kms.AlgECDSASHA256, GrantTokens: make([]string, 11)}, kms.CodeValidation},
		{"symmetric key", kms.SignInput{KeyId: sym, Message: []byte("m"), SigningAlgorithm: kms.AlgECDSASHA256}, kms.CodeInvalidKeyUsage},
		{"key agreement key", kms.SignInput{KeyId: ka.KeyMetadata.KeyId, Message: []byte("m"), SigningAlgorithm: kms.AlgECDSASHA256}, kms.CodeInvalidKeyUsage},
		{"dry run", kms.SignInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: kms.AlgECDSASHA256, DryRun: true}, kms.CodeDryRun},
		{"no such key", kms.SignInput{KeyId: "alias/none", Message: []byte("m"), SigningAlgorithm: kms.AlgECDSASHA256}, kms.CodeNotFound},
	} {
		_, err := e.svc.Sign(ctx, &tc.in)
		wantCode(t, "Sign: "+tc.name, err, tc.want)
		_, err = e.svc.Verify(ctx, &kms.VerifyInput{KeyId: tc.in.KeyId, Message: tc.in.Message, MessageType: tc.in.MessageType,
			SigningAlgorithm: tc.in.SigningAlgorithm, GrantTokens: tc.in.GrantTokens, DryRun: tc.in.DryRun, Signature: []byte{0x30, 0}})
		if tc.name == "dry run" {
			// A dry run reports success before verifying anything.
			wantCode(t, "Verify: "+tc.name, err, kms.CodeDryRun)
			continue
		}
		wantCode(t, "Verify: "+tc.name, err, tc.want)
	}
	_, err = e.svc.Verify(ctx, &kms.VerifyInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: kms.AlgECDSASHA256})
	wantCode(t, "Verify with no signature", err, kms.CodeValidation)
	_, err = e.svc.Verify(ctx, &kms.VerifyInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: kms.AlgECDSASHA256, Signature: make([]byte, 6145)})
	wantCode(t, "Verify with a 6145-byte signature", err, kms.CodeValidation)
	if _, err := e.svc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Sign(ctx, &kms.SignInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: kms.AlgECDSASHA256})
	wantCode(t, "Sign with a disabled key", err, kms.CodeDisabled)
}

// TestCreateKeySpecUsage: every KeySpec × KeyUsage of AWS's enums is
// created with the algorithms of its usage, or refused as AWS refuses it:
// ValidationException for a pair AWS does not allow (an omitted usage is
// ENCRYPT_DECRYPT), UnsupportedOperationException for the specs this KMS
// does not have (SM2, China Regions only; ML-KEM).
func TestCreateKeySpecUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	allowed := map[string][]string{
		"SYMMETRIC_DEFAULT":     {"", "ENCRYPT_DECRYPT"},
		"RSA_2048":              {"", "ENCRYPT_DECRYPT", "SIGN_VERIFY"},
		"RSA_3072":              {"", "ENCRYPT_DECRYPT", "SIGN_VERIFY"},
		"RSA_4096":              {"", "ENCRYPT_DECRYPT", "SIGN_VERIFY"},
		"ECC_NIST_P256":         {"SIGN_VERIFY", "KEY_AGREEMENT"},
		"ECC_NIST_P384":         {"SIGN_VERIFY", "KEY_AGREEMENT"},
		"ECC_NIST_P521":         {"SIGN_VERIFY", "KEY_AGREEMENT"},
		"ECC_SECG_P256K1":       {"SIGN_VERIFY"},
		"ECC_NIST_EDWARDS25519": {"SIGN_VERIFY"},
		"ML_DSA_44":             {"SIGN_VERIFY"},
		"ML_DSA_65":             {"SIGN_VERIFY"},
		"ML_DSA_87":             {"SIGN_VERIFY"},
		"HMAC_224":              {"GENERATE_VERIFY_MAC"},
		"HMAC_256":              {"GENERATE_VERIFY_MAC"},
		"HMAC_384":              {"GENERATE_VERIFY_MAC"},
		"HMAC_512":              {"GENERATE_VERIFY_MAC"},
	}
	unsupported := []string{"SM2", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"}
	usages := []string{"", "ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT", "ENCAPSULATE_DECAPSULATE"}
	specs := append(slices.Sorted(func(yield func(string) bool) {
		for s := range allowed {
			if !yield(s) {
				return
			}
		}
	}), unsupported...)
	for _, spec := range specs {
		for _, usage := range usages {
			name := spec + "/" + usage
			ck, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage})
			switch {
			case slices.Contains(unsupported, spec):
				wantCode(t, name, err, kms.CodeUnsupportedOperation)
			case !slices.Contains(allowed[spec], usage):
				wantCode(t, name, err, kms.CodeValidation)
			case err != nil:
				t.Errorf("CreateKey(%s) err = %v, want nil", name, err)
			default:
				m := ck.KeyMetadata
				want := usage
				if want == "" {
					want = kms.UsageEncryptDecrypt
				}
				lists := map[string][]string{kms.UsageEncryptDecrypt: m.EncryptionAlgorithms, kms.UsageSignVerify: m.SigningAlgorithms,
					kms.UsageGenerateVerifyMac: m.MacAlgorithms, kms.UsageKeyAgreement: m.KeyAgreementAlgorithms}
				for u, l := range lists {
					if (u == want) != (len(l) > 0) {
						t.Errorf("CreateKey(%s): %s algorithms %v", name, u, l)
					}
				}
				if m.KeyUsage != want || m.KeySpec != spec || m.Origin != "AWS_KMS" {
					t.Errorf("CreateKey(%s) = %+v", name, m)
				}
			}
		}
	}
}

// TestDataKeyPairEverySpec: GenerateDataKeyPair makes a pair of every
// KeyPairSpec this KMS offers: a PKCS #8 private key whose public key is
// the SPKI returned, and which the ciphertext decrypts to; SM2 and ML-KEM
// are refused clearly.
func TestDataKeyPairEverySpec(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	sym := e.symKey(t)
	ec := map[string]string{"purpose": "pair"}
	for _, spec := range []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
		"ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519"} {
		t.Run(spec, func(t *testing.T) {
			out, err := e.svc.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: sym, KeyPairSpec: spec, EncryptionContext: ec})
			if err != nil {
				t.Fatalf("GenerateDataKeyPair(%s) err = %v", spec, err)
			}
			if out.KeyPairSpec != spec {
				t.Errorf("KeyPairSpec = %s", out.KeyPairSpec)
			}
			dec, err := e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: ec})
			if err != nil || !bytes.Equal(dec.Plaintext, out.PrivateKeyPlaintext) {
				t.Fatalf("Decrypt of the private key = %v; want the plaintext private key", err)
			}
			// The pair works as a key of the same spec would: the
			// service takes it as one and signs with it, and the
			// signature verifies with the public key returned.
			id, err := kms.KeyWithMaterialForTest(e.svc, spec, kms.UsageSignVerify, out.PrivateKeyPlaintext)
			if err != nil {
				t.Fatalf("the private key of the pair is not a %s key: %v", spec, err)
			}
			pk, err := e.svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: id})
			if err != nil || !bytes.Equal(pk.PublicKey, out.PublicKey) {
				t.Fatalf("the pair's public key %x is not its private key's %x (%v)", out.PublicKey, pk.PublicKey, err)
			}
			if spec != kms.SpecECCSECGP256K1 {
				if _, err := x509.ParsePKCS8PrivateKey(out.PrivateKeyPlaintext); err != nil {
					t.Errorf("crypto/x509 does not parse the PKCS #8 private key: %v", err)
				}
			}
			alg := pk.SigningAlgorithms[0]
			mt := kms.DefaultMessageType(alg)
			msg := messageAs(t, alg, mt, out.PublicKey, []byte("pair"))
			sig, err := e.svc.Sign(ctx, &kms.SignInput{KeyId: id, Message: msg, MessageType: mt, SigningAlgorithm: alg})
			if err != nil || !verifyOffline(t, spec, alg, out.PublicKey, []byte("pair"), sig.Signature) {
				t.Errorf("a signature with the pair's private key does not verify with its public key (%v)", err)
			}
			wo, err := e.svc.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: sym, KeyPairSpec: spec})
			if err != nil || len(wo.PublicKey) == 0 || wo.KeyPairSpec != spec {
				t.Errorf("GenerateDataKeyPairWithoutPlaintext(%s) = %+v, %v", spec, wo, err)
			}
		})
	}
	for _, spec := range []string{"SM2", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"} {
		_, err := e.svc.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: sym, KeyPairSpec: spec})
		wantCode(t, "GenerateDataKeyPair "+spec, err, kms.CodeUnsupportedOperation)
	}
	_, err := e.svc.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: sym})
	wantCode(t, "GenerateDataKeyPair without KeyPairSpec", err, kms.CodeValidation)
}

// TestExternalMuIsTheRawSignature: ML-DSA signs deterministically, so that
// a message and its μ give the same signature, and Verify of a μ
// recognizes what Sign made.
func TestExternalMuIsTheRawSignature(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ck, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kms.SpecMLDSA65, KeyUsage: kms.UsageSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	id := ck.KeyMetadata.KeyId
	pk, err := e.svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: id})
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("long message "), 1000) // over 4096 bytes: μ only
	mu := messageAs(t, kms.AlgMLDSASHAKE256, kms.MessageTypeExternalMu, pk.PublicKey, msg)
	a, err := e.svc.Sign(ctx, &kms.SignInput{KeyId: id, Message: mu, MessageType: kms.MessageTypeExternalMu, SigningAlgorithm: kms.AlgMLDSASHAKE256})
	if err != nil {
		t.Fatal(err)
	}
	if !verifyOffline(t, kms.SpecMLDSA65, kms.AlgMLDSASHAKE256, pk.PublicKey, msg, a.Signature) {
		t.Fatal("the signature of μ does not verify offline as a signature of the message")
	}
	short := []byte("short message")
	raw, err := e.svc.Sign(ctx, &kms.SignInput{KeyId: id, Message: short, SigningAlgorithm: kms.AlgMLDSASHAKE256})
	if err != nil {
		t.Fatal(err)
	}
	viaMu, err := e.svc.Sign(ctx, &kms.SignInput{KeyId: id, Message: messageAs(t, kms.AlgMLDSASHAKE256, kms.MessageTypeExternalMu, pk.PublicKey, short),
		MessageType: kms.MessageTypeExternalMu, SigningAlgorithm: kms.AlgMLDSASHAKE256})
	if err != nil || !bytes.Equal(raw.Signature, viaMu.Signature) {
		t.Errorf("the signature of a message and of its μ differ (%v)", err)
	}
	_, err = e.svc.Verify(ctx, &kms.VerifyInput{KeyId: id, Message: make([]byte, 63), MessageType: kms.MessageTypeExternalMu, Signature: a.Signature, SigningAlgorithm: kms.AlgMLDSASHAKE256})
	wantCode(t, "Verify of a 63-byte μ", err, kms.CodeValidation)
	if _, err := kms.ExternalMu(make([]byte, 10), bytes.NewReader(msg)); err == nil {
		t.Error("ExternalMu of a public key that does not parse err = nil")
	}
}
