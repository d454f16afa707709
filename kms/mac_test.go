package kms_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/kms"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMacRFC4231 runs the test vectors of RFC 4231 (HMAC-SHA-224/256/384/
// 512) through GenerateMac and VerifyMac, with keys holding the RFC's key
// material. Test case 5, whose output is truncated, is left out: AWS
// returns the whole MAC.
func TestMacRFC4231(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	type vector struct {
		name      string
		key, data string
		macs      [4]string // SHA-224, SHA-256, SHA-384, SHA-512
	}
	key131 := strings.Repeat("aa", 131)
	vectors := []vector{
		{"1", strings.Repeat("0b", 20), hex.EncodeToString([]byte("Hi There")), [4]string{
			"896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
			"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
			"afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
			"87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"}},
		{"2", hex.EncodeToString([]byte("Jefe")), hex.EncodeToString([]byte("what do ya want for nothing?")), [4]string{
			"a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
			"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
			"af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
			"164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"}},
		{"3", strings.Repeat("aa", 20), strings.Repeat("dd", 50), [4]string{
			"7fb3cb3588c6c1f6ffa9694d7d6ad2649365b0c1f65d69d1ec8333ea",
			"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
			"88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
			"fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"}},
		{"4", "0102030405060708090a0b0c0d0e0f10111213141516171819", strings.Repeat("cd", 50), [4]string{
			"6c11506874013cac6a2abc1bb382627cec6a90d86efc012de7afec5a",
			"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
			"3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
			"b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd"}},
		{"6", key131, hex.EncodeToString([]byte("Test Using Larger Than Block-Size Key - Hash Key First")), [4]string{
			"95e9a0db962095adaebe9b2d6f0dbce2d499f112f2d2b7273fa6870e",
			"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
			"4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
			"80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"}},
		{"7", key131, hex.EncodeToString([]byte("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.")), [4]string{
			"3a854166ac5d9f023f54d517d0b39dbd946770db9c2b95c9f6f565d1",
			"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
			"6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
			"e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"}},
	}
	specs := []struct{ spec, alg string }{
		{kms.SpecHMAC224, kms.AlgHMACSHA224}, {kms.SpecHMAC256, kms.AlgHMACSHA256},
		{kms.SpecHMAC384, kms.AlgHMACSHA384}, {kms.SpecHMAC512, kms.AlgHMACSHA512},
	}
	for _, v := range vectors {
		for i, s := range specs {
			id, err := kms.KeyWithMaterialForTest(e.svc, s.spec, kms.UsageGenerateVerifyMac, unhex(t, v.key))
			if err != nil {
				t.Fatal(err)
			}
			data, want := unhex(t, v.data), unhex(t, v.macs[i])
			out, err := e.svc.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: id, Message: data, MacAlgorithm: s.alg})
			if err != nil || !bytes.Equal(out.Mac, want) || out.MacAlgorithm != s.alg || out.KeyId != e.keyARN(id) {
				t.Errorf("RFC 4231 case %s, %s: GenerateMac = %x, %v; want %x", v.name, s.alg, out.Mac, err, want)
				continue
			}
			vo, err := e.svc.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: id, Message: data, Mac: want, MacAlgorithm: s.alg})
			if err != nil || !vo.MacValid {
				t.Errorf("RFC 4231 case %s, %s: VerifyMac = %+v, %v", v.name, s.alg, vo, err)
			}
			bad := bytes.Clone(want)
			bad[0] ^= 1
			_, err = e.svc.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: id, Message: data, Mac: bad, MacAlgorithm: s.alg})
			wantCode(t, "VerifyMac of a changed MAC", err, kms.CodeInvalidMac)
			_, err = e.svc.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: id, Message: data, Mac: want[:len(want)-1], MacAlgorithm: s.alg})
			wantCode(t, "VerifyMac of a truncated MAC", err, kms.CodeInvalidMac)
		}
	}
}

// TestMacKeys: HMAC keys made by CreateKey have key material of their
// spec's length (the MAC is that of a key the length of the hash), and
// the refusals are AWS's.
func TestMacKeys(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	ck, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kms.SpecHMAC384, KeyUsage: kms.UsageGenerateVerifyMac})
	if err != nil {
		t.Fatal(err)
	}
	id := ck.KeyMetadata.KeyId
	if m, err := kms.MaterialForTest(e.svc, id, 1); err != nil || len(m) != 48 {
		t.Errorf("HMAC_384 material: %d bytes, %v; want 48", len(m), err)
	}
	_, err = e.svc.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: "alias/none", Message: []byte("m"), MacAlgorithm: kms.AlgHMACSHA384})
	wantCode(t, "GenerateMac through an alias that does not exist", err, kms.CodeNotFound)
	out, err := e.svc.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: id, Message: make([]byte, 4096), MacAlgorithm: kms.AlgHMACSHA384})
	if err != nil || len(out.Mac) != 48 {
		t.Fatalf("GenerateMac of 4096 bytes = %v, %v", out, err)
	}
	for _, tc := range []struct {
		name string
		in   kms.GenerateMacInput
		want string
	}{
		{"4097 bytes", kms.GenerateMacInput{KeyId: id, Message: make([]byte, 4097), MacAlgorithm: kms.AlgHMACSHA384}, kms.CodeValidation},
		{"no message", kms.GenerateMacInput{KeyId: id, MacAlgorithm: kms.AlgHMACSHA384}, kms.CodeValidation},
		{"no algorithm", kms.GenerateMacInput{KeyId: id, Message: []byte("m")}, kms.CodeValidation},
		{"algorithm not in the enum", kms.GenerateMacInput{KeyId: id, Message: []byte("m"), MacAlgorithm: "HMAC_SHA_1"}, kms.CodeValidation},
		{"another spec's algorithm", kms.GenerateMacInput{KeyId: id, Message: []byte("m"), MacAlgorithm: kms.AlgHMACSHA256}, kms.CodeInvalidKeyUsage},
		{"a symmetric key", kms.GenerateMacInput{KeyId: e.symKey(t), Message: []byte("m"), MacAlgorithm: kms.AlgHMACSHA256}, kms.CodeInvalidKeyUsage},
		{"dry run", kms.GenerateMacInput{KeyId: id, Message: []byte("m"), MacAlgorithm: kms.AlgHMACSHA384, DryRun: true}, kms.CodeDryRun},
	} {
		_, err := e.svc.GenerateMac(ctx, &tc.in)
		wantCode(t, "GenerateMac: "+tc.name, err, tc.want)
		_, err = e.svc.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: tc.in.KeyId, Message: tc.in.Message, MacAlgorithm: tc.in.MacAlgorithm, Mac: []byte{1}, DryRun: tc.in.DryRun})
		wantCode(t, "VerifyMac: "+tc.name, err, tc.want)
	}
	_, err = e.svc.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: id, Message: []byte("m"), MacAlgorithm: kms.AlgHMACSHA384})
	wantCode(t, "VerifyMac without a MAC", err, kms.CodeValidation)
	for _, op := range []func() error{
		func() error {
			_, err := e.svc.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("m")})
			return err
		},
		func() error {
			_, err := e.svc.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: id, KeySpec: "AES_256"})
			return err
		},
		func() error {
			_, err := e.svc.Sign(ctx, &kms.SignInput{KeyId: id, Message: []byte("m"), SigningAlgorithm: kms.AlgECDSASHA256})
			return err
		},
	} {
		wantCode(t, "an encryption or signing operation with an HMAC key", op(), kms.CodeInvalidKeyUsage)
	}
	_, err = e.svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: id})
	wantCode(t, "GetPublicKey of an HMAC key", err, kms.CodeUnsupportedOperation)
	_, err = e.svc.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id})
	wantCode(t, "RotateKeyOnDemand of an HMAC key", err, kms.CodeUnsupportedOperation)
}

// TestDeriveSharedSecret: on every NIST curve, the KMS and a peer holding
// its own key (crypto/ecdh) derive the same raw secret; a peer public key
// on another curve, of another kind or that does not parse is a
// ValidationException.
func TestDeriveSharedSecret(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	curves := map[string]ecdh.Curve{kms.SpecECCNISTP256: ecdh.P256(), kms.SpecECCNISTP384: ecdh.P384(), kms.SpecECCNISTP521: ecdh.P521()}
	ids := map[string]string{}
	for spec, curve := range curves {
		ck, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: kms.UsageKeyAgreement})
		if err != nil {
			t.Fatal(err)
		}
		id := ck.KeyMetadata.KeyId
		ids[spec] = id
		if got := ck.KeyMetadata.KeyAgreementAlgorithms; len(got) != 1 || got[0] != kms.AlgECDH || ck.KeyMetadata.SigningAlgorithms != nil {
			t.Errorf("%s KEY_AGREEMENT metadata: %+v", spec, ck.KeyMetadata)
		}
		pk, err := e.svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: id})
		if err != nil || len(pk.KeyAgreementAlgorithms) != 1 || pk.KeyUsage != kms.UsageKeyAgreement {
			t.Fatalf("GetPublicKey = %+v, %v", pk, err)
		}
		peer, err := curve.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		peerSPKI, err := x509.MarshalPKIXPublicKey(peer.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.svc.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: id, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: peerSPKI})
		if err != nil {
			t.Fatalf("%s: DeriveSharedSecret err = %v", spec, err)
		}
		kmsPub, err := x509.ParsePKIXPublicKey(pk.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := kmsPub.(*ecdsa.PublicKey).ECDH()
		if err != nil {
			t.Fatal(err)
		}
		want, err := peer.ECDH(kp)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.SharedSecret, want) || out.KeyAgreementAlgorithm != kms.AlgECDH || out.KeyId != e.keyARN(id) || out.KeyOrigin != "AWS_KMS" {
			t.Errorf("%s: DeriveSharedSecret = %+v; want the secret %x the peer derives", spec, out, want)
		}
	}
	otherCurve, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384, _ := x509.MarshalPKIXPublicKey(&otherCurve.PublicKey)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ed, _ := x509.MarshalPKIXPublicKey(edPub)
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	x25519, _ := x509.MarshalPKIXPublicKey(x.PublicKey())
	p256 := ids[kms.SpecECCNISTP256]
	for _, tc := range []struct {
		name string
		in   kms.DeriveSharedSecretInput
		want string
	}{
		{"a P-384 key for a P-256 one", kms.DeriveSharedSecretInput{KeyId: p256, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: p384}, kms.CodeValidation},
		{"an Ed25519 key", kms.DeriveSharedSecretInput{KeyId: p256, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: ed}, kms.CodeValidation},
		{"an X25519 key", kms.DeriveSharedSecretInput{KeyId: p256, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: x25519}, kms.CodeValidation},
		{"bytes that do not parse", kms.DeriveSharedSecretInput{KeyId: p256, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: []byte("not a key")}, kms.CodeValidation},
		{"no public key", kms.DeriveSharedSecretInput{KeyId: p256, KeyAgreementAlgorithm: kms.AlgECDH}, kms.CodeValidation},
		{"8193 bytes", kms.DeriveSharedSecretInput{KeyId: p256, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: make([]byte, 8193)}, kms.CodeValidation},
		{"no algorithm", kms.DeriveSharedSecretInput{KeyId: p256, PublicKey: p384}, kms.CodeValidation},
		{"algorithm not in the enum", kms.DeriveSharedSecretInput{KeyId: p256, KeyAgreementAlgorithm: "ECMQV", PublicKey: p384}, kms.CodeValidation},
		{"a symmetric key", kms.DeriveSharedSecretInput{KeyId: e.symKey(t), KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: p384}, kms.CodeInvalidKeyUsage},
		{"dry run", kms.DeriveSharedSecretInput{KeyId: ids[kms.SpecECCNISTP384], KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: p384, DryRun: true}, kms.CodeDryRun},
	} {
		_, err := e.svc.DeriveSharedSecret(ctx, &tc.in)
		wantCode(t, "DeriveSharedSecret with "+tc.name, err, tc.want)
		if ke, ok := err.(*kms.Error); ok && tc.want == kms.CodeValidation && strings.Contains(ke.Message, hex.EncodeToString(tc.in.PublicKey)) && len(tc.in.PublicKey) > 0 {
			t.Errorf("the error quotes the public key: %v", err)
		}
	}
}
