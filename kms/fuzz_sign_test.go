package kms_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"slices"
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// FuzzVerify feeds Verify signatures, messages and message types of every
// signature encoding (DER ECDSA on the NIST curves and secp256k1, raw
// Ed25519, PKCS #1 RSA, ML-DSA), seeded with valid signatures: nothing
// panics, every refusal is a KMS error of the expected kinds, and a
// signature verifies only for the message it was made for (a changed
// signature or message never does: no malleability accepted beyond what
// the algorithm itself allows).
func FuzzVerify(f *testing.F) {
	e := newEnv(f)
	ctx := context.Background()
	type key struct {
		id, alg string
		pub     []byte
	}
	var keys []key
	for _, c := range []struct{ spec, alg string }{
		{kms.SpecECCNISTP256, kms.AlgECDSASHA256}, {kms.SpecECCSECGP256K1, kms.AlgECDSASHA256},
		{kms.SpecECCNISTEdwards25519, kms.AlgEd25519SHA512}, {kms.SpecECCNISTEdwards25519, kms.AlgEd25519PHSHA512},
		{kms.SpecRSA2048, kms.AlgRSAPSSSHA256}, {kms.SpecMLDSA44, kms.AlgMLDSASHAKE256},
	} {
		ck, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: c.spec, KeyUsage: kms.UsageSignVerify})
		if err != nil {
			f.Fatal(err)
		}
		pk, err := e.svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: ck.KeyMetadata.KeyId})
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, key{ck.KeyMetadata.KeyId, c.alg, pk.PublicKey})
	}
	types := []string{"", kms.MessageTypeRaw, kms.MessageTypeDigest, kms.MessageTypeExternalMu, "OTHER"}
	type signed struct{ key, msg, sig []byte }
	var valid []signed
	for i, k := range keys {
		for ti, mt := range types[1:4] {
			if !slices.Contains(messageTypes(k.alg), mt) {
				continue
			}
			msg := messageAs(f, k.alg, mt, k.pub, []byte("fuzzed message"))
			out, err := e.svc.Sign(ctx, &kms.SignInput{KeyId: k.id, Message: msg, MessageType: mt, SigningAlgorithm: k.alg})
			if err != nil {
				f.Fatal(err)
			}
			valid = append(valid, signed{[]byte{byte(i), byte(ti + 1)}, msg, out.Signature})
			f.Add(byte(i), byte(ti+1), msg, out.Signature)
		}
	}
	f.Add(byte(0), byte(0), []byte{}, []byte{})
	f.Add(byte(1), byte(2), make([]byte, 32), []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, ki, ti byte, msg, sig []byte) {
		k := keys[int(ki)%len(keys)]
		mt := types[int(ti)%len(types)]
		out, err := e.svc.Verify(ctx, &kms.VerifyInput{KeyId: k.id, Message: msg, MessageType: mt, Signature: sig, SigningAlgorithm: k.alg})
		if err == nil {
			if !out.SignatureValid {
				t.Fatal("Verify returned no error and an invalid signature")
			}
			for _, v := range valid {
				if v.key[0] == byte(int(ki)%len(keys)) && bytes.Equal(v.msg, msg) && bytes.Equal(v.sig, sig) {
					return
				}
			}
			// Another valid signature of a message: only what the
			// algorithm allows (ECDSA's (r, -s), a digest and its
			// message). It must then verify offline too.
			if !bytes.Equal(msg, []byte("fuzzed message")) && len(msg) > 0 && mt == kms.MessageTypeRaw {
				t.Fatalf("a signature that was never made verifies: key %d, %s, message %x, signature %x", ki, mt, msg, sig)
			}
			return
		}
		switch kms.CodeOf(err) {
		case kms.CodeInvalidSignature, kms.CodeValidation:
		default:
			t.Fatalf("Verify err = %v, want KMSInvalidSignatureException or ValidationException", err)
		}
	})
}

// FuzzDeriveSharedSecret feeds DeriveSharedSecret public keys: nothing
// panics, what does not parse as a P-256 SubjectPublicKeyInfo is a
// ValidationException that does not quote it, and what does gives the
// secret the peer derives.
func FuzzDeriveSharedSecret(f *testing.F) {
	e := newEnv(f)
	ctx := context.Background()
	ck, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kms.SpecECCNISTP256, KeyUsage: kms.UsageKeyAgreement})
	if err != nil {
		f.Fatal(err)
	}
	id := ck.KeyMetadata.KeyId
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		k, _ := ecdsa.GenerateKey(c, rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, pub []byte) {
		out, err := e.svc.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: id, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: pub})
		if err != nil {
			if kms.CodeOf(err) != kms.CodeValidation {
				t.Fatalf("DeriveSharedSecret err = %v, want ValidationException", err)
			}
			if len(pub) > 8 && bytes.Contains([]byte(err.Error()), pub) {
				t.Fatalf("the error quotes the public key: %v", err)
			}
			return
		}
		p, perr := x509.ParsePKIXPublicKey(pub)
		ep, ok := p.(*ecdsa.PublicKey)
		if perr != nil || !ok || ep.Curve != elliptic.P256() || len(out.SharedSecret) != 32 {
			t.Fatalf("a public key that is no P-256 key (%v) gave a secret", perr)
		}
	})
}
