package awsclient_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"slices"
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// TestServerSigning: through aws-sdk-go-v2 and envelope's real server, every
// signing spec × algorithm × message type signs and verifies (and what the
// server signs verifies in process, and the other way round); MACs,
// ECDH secrets and the errors AWS gives for wrong usage, wrong algorithm and
// too long messages come back as the same *kms.Error.
func TestServerSigning(t *testing.T) {
	local, remote := newEnvelopeServer(t)
	ctx := t.Context()
	msg := []byte("signed through the server")
	digest := func(alg string, m []byte) []byte {
		h, _ := kms.DigestHash(alg)
		d := h.New()
		d.Write(m)
		return d.Sum(nil)
	}
	for _, c := range []struct {
		spec string
		algs []string
	}{
		{kms.SpecRSA2048, []string{kms.AlgRSAPSSSHA256, kms.AlgRSAPSSSHA384, kms.AlgRSAPSSSHA512, kms.AlgRSAPKCS1SHA256, kms.AlgRSAPKCS1SHA384, kms.AlgRSAPKCS1SHA512}},
		{kms.SpecECCNISTP256, []string{kms.AlgECDSASHA256}},
		{kms.SpecECCNISTP384, []string{kms.AlgECDSASHA384}},
		{kms.SpecECCNISTP521, []string{kms.AlgECDSASHA512}},
		{kms.SpecECCSECGP256K1, []string{kms.AlgECDSASHA256}},
		{kms.SpecECCNISTEdwards25519, []string{kms.AlgEd25519SHA512, kms.AlgEd25519PHSHA512}},
		{kms.SpecMLDSA44, []string{kms.AlgMLDSASHAKE256}},
		{kms.SpecMLDSA65, []string{kms.AlgMLDSASHAKE256}},
		{kms.SpecMLDSA87, []string{kms.AlgMLDSASHAKE256}},
	} {
		ck, err := remote.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: c.spec, KeyUsage: kms.UsageSignVerify})
		if err != nil {
			t.Fatalf("CreateKey(%s) err = %v", c.spec, err)
		}
		id := ck.KeyMetadata.KeyId
		if !slices.Equal(ck.KeyMetadata.SigningAlgorithms, c.algs) {
			t.Errorf("%s: SigningAlgorithms %v, want %v", c.spec, ck.KeyMetadata.SigningAlgorithms, c.algs)
		}
		pk, err := remote.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: id})
		if err != nil || !slices.Equal(pk.SigningAlgorithms, c.algs) {
			t.Fatalf("GetPublicKey = %+v, %v", pk, err)
		}
		lpk, _ := local.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: id})
		if !bytes.Equal(pk.PublicKey, lpk.PublicKey) {
			t.Errorf("%s: the server's public key differs from the keystore's", c.spec)
		}
		for _, alg := range c.algs {
			forms := map[string][]byte{}
			switch alg {
			case kms.AlgEd25519SHA512:
				forms[kms.MessageTypeRaw] = msg
			case kms.AlgEd25519PHSHA512:
				d := sha512.Sum512(msg)
				forms[kms.MessageTypeDigest] = d[:]
			case kms.AlgMLDSASHAKE256:
				forms[kms.MessageTypeRaw] = msg
				mu, err := kms.ExternalMu(pk.PublicKey, bytes.NewReader(msg))
				if err != nil {
					t.Fatal(err)
				}
				forms[kms.MessageTypeExternalMu] = mu
			default:
				forms[kms.MessageTypeRaw] = msg
				forms[kms.MessageTypeDigest] = digest(alg, msg)
			}
			for mt, m := range forms {
				name := c.spec + " " + alg + " " + mt
				out, err := remote.Sign(ctx, &kms.SignInput{KeyId: "arn:aws:kms:us-east-1:111122223333:key/" + id, Message: m, MessageType: mt, SigningAlgorithm: alg})
				if err != nil {
					t.Errorf("%s: Sign err = %v", name, err)
					continue
				}
				if out.SigningAlgorithm != alg || out.KeyId != ck.KeyMetadata.Arn {
					t.Errorf("%s: Sign = %+v", name, out)
				}
				for vt, vm := range forms {
					if v, err := remote.Verify(ctx, &kms.VerifyInput{KeyId: id, Message: vm, MessageType: vt, Signature: out.Signature, SigningAlgorithm: alg}); err != nil || !v.SignatureValid {
						t.Errorf("%s: Verify(%s) through the server = %+v, %v", name, vt, v, err)
					}
					if _, err := local.Verify(ctx, &kms.VerifyInput{KeyId: id, Message: vm, MessageType: vt, Signature: out.Signature, SigningAlgorithm: alg}); err != nil {
						t.Errorf("%s: Verify(%s) in process of the server's signature: %v", name, vt, err)
					}
				}
				bad := bytes.Clone(out.Signature)
				bad[len(bad)-1] ^= 1
				_, err = remote.Verify(ctx, &kms.VerifyInput{KeyId: id, Message: m, MessageType: mt, Signature: bad, SigningAlgorithm: alg})
				if !errors.Is(err, kms.ErrInvalidSignature) {
					t.Errorf("%s: Verify of a changed signature err = %v, want KMSInvalidSignatureException", name, err)
				}
				if ke, ok := err.(*kms.Error); ok && ke.KeyARN != ck.KeyMetadata.Arn {
					t.Errorf("%s: the error's KeyARN %q, want %q", name, ke.KeyARN, ck.KeyMetadata.Arn)
				}
			}
		}
		_, err = remote.Sign(ctx, &kms.SignInput{KeyId: id, Message: msg, SigningAlgorithm: kms.AlgECDSASHA384})
		if c.spec != kms.SpecECCNISTP384 && kms.CodeOf(err) != kms.CodeInvalidKeyUsage {
			t.Errorf("%s: Sign with ECDSA_SHA_384 err = %v, want InvalidKeyUsageException", c.spec, err)
		}
		_, err = remote.Sign(ctx, &kms.SignInput{KeyId: id, Message: make([]byte, 4097), SigningAlgorithm: c.algs[0]})
		if kms.CodeOf(err) != kms.CodeValidation {
			t.Errorf("%s: Sign of 4097 bytes err = %v, want ValidationException", c.spec, err)
		}
	}

	// HMAC through the server.
	hk, err := remote.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kms.SpecHMAC256, KeyUsage: kms.UsageGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hk.KeyMetadata.MacAlgorithms, []string{kms.AlgHMACSHA256}) {
		t.Errorf("HMAC_256 MacAlgorithms %v", hk.KeyMetadata.MacAlgorithms)
	}
	mac, err := remote.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: hk.KeyMetadata.KeyId, Message: msg, MacAlgorithm: kms.AlgHMACSHA256})
	if err != nil || len(mac.Mac) != sha256.Size {
		t.Fatalf("GenerateMac = %+v, %v", mac, err)
	}
	lmac, _ := local.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: hk.KeyMetadata.KeyId, Message: msg, MacAlgorithm: kms.AlgHMACSHA256})
	if !bytes.Equal(mac.Mac, lmac.Mac) {
		t.Error("the server's MAC differs from the keystore's")
	}
	if v, err := remote.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: hk.KeyMetadata.KeyId, Message: msg, Mac: mac.Mac, MacAlgorithm: kms.AlgHMACSHA256}); err != nil || !v.MacValid {
		t.Errorf("VerifyMac = %+v, %v", v, err)
	}
	_, err = remote.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: hk.KeyMetadata.KeyId, Message: []byte("other"), Mac: mac.Mac, MacAlgorithm: kms.AlgHMACSHA256})
	if !errors.Is(err, kms.ErrInvalidMac) {
		t.Errorf("VerifyMac of another message err = %v, want KMSInvalidMacException", err)
	}
	_, err = remote.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: hk.KeyMetadata.KeyId, Message: msg, MacAlgorithm: kms.AlgHMACSHA512})
	if kms.CodeOf(err) != kms.CodeInvalidKeyUsage {
		t.Errorf("GenerateMac with HMAC_SHA_512 err = %v, want InvalidKeyUsageException", err)
	}
	_, err = remote.Sign(ctx, &kms.SignInput{KeyId: hk.KeyMetadata.KeyId, Message: msg, SigningAlgorithm: kms.AlgECDSASHA256})
	if kms.CodeOf(err) != kms.CodeInvalidKeyUsage {
		t.Errorf("Sign with an HMAC key err = %v, want InvalidKeyUsageException", err)
	}

	// ECDH through the server.
	ak, err := remote.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kms.SpecECCNISTP384, KeyUsage: kms.UsageKeyAgreement})
	if err != nil {
		t.Fatal(err)
	}
	apk, err := remote.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: ak.KeyMetadata.KeyId})
	if err != nil || !slices.Equal(apk.KeyAgreementAlgorithms, []string{kms.AlgECDH}) {
		t.Fatalf("GetPublicKey of a KEY_AGREEMENT key = %+v, %v", apk, err)
	}
	peer, _ := ecdh.P384().GenerateKey(rand.Reader)
	peerDER, _ := x509.MarshalPKIXPublicKey(peer.PublicKey())
	ds, err := remote.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: ak.KeyMetadata.KeyId, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: peerDER})
	if err != nil {
		t.Fatalf("DeriveSharedSecret err = %v", err)
	}
	kmsPub, _ := x509.ParsePKIXPublicKey(apk.PublicKey)
	kp, _ := kmsPub.(interface {
		ECDH() (*ecdh.PublicKey, error)
	}).ECDH()
	want, _ := peer.ECDH(kp)
	if !bytes.Equal(ds.SharedSecret, want) || ds.KeyAgreementAlgorithm != kms.AlgECDH || ds.KeyOrigin != "AWS_KMS" {
		t.Errorf("DeriveSharedSecret = %+v; want the peer's secret %x", ds, want)
	}
	other, _ := ecdh.P256().GenerateKey(rand.Reader)
	otherDER, _ := x509.MarshalPKIXPublicKey(other.PublicKey())
	_, err = remote.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: ak.KeyMetadata.KeyId, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: otherDER})
	if kms.CodeOf(err) != kms.CodeValidation {
		t.Errorf("DeriveSharedSecret with a P-256 key err = %v, want ValidationException", err)
	}
	_, err = remote.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: hk.KeyMetadata.KeyId, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: otherDER})
	if kms.CodeOf(err) != kms.CodeInvalidKeyUsage {
		t.Errorf("DeriveSharedSecret with an HMAC key err = %v, want InvalidKeyUsageException", err)
	}

	// A data key pair of every spec through the server.
	sym, err := remote.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519", "ECC_NIST_P521"} {
		out, err := remote.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: sym.KeyMetadata.KeyId, KeyPairSpec: spec})
		if err != nil || len(out.PublicKey) == 0 || len(out.PrivateKeyPlaintext) == 0 {
			t.Errorf("GenerateDataKeyPair(%s) = %v", spec, err)
		}
	}
	_, err = remote.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: sym.KeyMetadata.KeyId, KeyPairSpec: "SM2"})
	if kms.CodeOf(err) != kms.CodeUnsupportedOperation {
		t.Errorf("GenerateDataKeyPair(SM2) err = %v, want UnsupportedOperationException", err)
	}
}
