package kms_test

import (
	"bytes"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// OpenSSL is the outside peer for ECDSA (DER), Ed25519 (raw 64 bytes),
// RSA PSS and PKCS #1 v1.5, and ECDH: Debian's openssl (3.0) is on every
// machine the tests run on. It has no Ed25519ph nor ML-DSA (3.5): those
// are checked against the standard library and filippo.io/mldsa
// (sign_test.go) and FIPS 204's vectors (mldsa_test.go).

// openssl runs openssl with args in dir and returns its output; it fails
// the test if openssl fails and fail is set.
func openssl(t *testing.T, dir string, fail bool, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is not on PATH (Debian: apt-get install openssl)")
	}
	cmd := exec.CommandContext(t.Context(), path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil && fail {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), err
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// opensslCase is a spec and algorithm, and how openssl verifies and makes
// its signatures: dgst with these options, or pkeyutl -rawin (Ed25519).
type opensslCase struct {
	spec, alg string
	genpkey   []string // how openssl makes a key of the spec
	digest    string   // openssl's name of the hash, "" for Ed25519
	sigopts   []string
}

var opensslCases = []opensslCase{
	{kms.SpecECCNISTP256, kms.AlgECDSASHA256, []string{"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, "sha256", nil},
	{kms.SpecECCNISTP384, kms.AlgECDSASHA384, []string{"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"}, "sha384", nil},
	{kms.SpecECCNISTP521, kms.AlgECDSASHA512, []string{"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"}, "sha512", nil},
	{kms.SpecECCSECGP256K1, kms.AlgECDSASHA256, []string{"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"}, "sha256", nil},
	{kms.SpecECCNISTEdwards25519, kms.AlgEd25519SHA512, []string{"-algorithm", "ED25519"}, "", nil},
	{kms.SpecRSA2048, kms.AlgRSAPSSSHA256, []string{"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"}, "sha256",
		[]string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest", "-sigopt", "rsa_mgf1_md:sha256"}},
	{kms.SpecRSA2048, kms.AlgRSAPSSSHA512, nil, "sha512",
		[]string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest", "-sigopt", "rsa_mgf1_md:sha512"}},
	{kms.SpecRSA2048, kms.AlgRSAPKCS1SHA384, nil, "sha384", nil},
}

// TestOpenSSLVerifiesEnvelope: signatures envelope makes, of a message
// (RAW) and of its digest (DIGEST), verify with openssl dgst or pkeyutl
// and the public key GetPublicKey returns (PEM); a changed message does not.
func TestOpenSSLVerifiesEnvelope(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	dir := t.TempDir()
	msg := writeFile(t, dir, "msg", bytes.Repeat([]byte("signed by envelope\n"), 50))
	writeFile(t, dir, "other", []byte("not the message"))
	message, _ := os.ReadFile(msg)
	keys := map[string]string{}
	for _, c := range opensslCases {
		t.Run(c.spec+"/"+c.alg, func(t *testing.T) {
			id, ok := keys[c.spec]
			if !ok {
				ck, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: c.spec, KeyUsage: kms.UsageSignVerify})
				if err != nil {
					t.Fatal(err)
				}
				id = ck.KeyMetadata.KeyId
				keys[c.spec] = id
			}
			pk, err := e.svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: id})
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, "pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk.PublicKey}))
			for _, mt := range messageTypes(c.alg) {
				out, err := e.svc.Sign(ctx, &kms.SignInput{KeyId: id, Message: messageAs(t, c.alg, mt, pk.PublicKey, message), MessageType: mt, SigningAlgorithm: c.alg})
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, dir, "sig", out.Signature)
				for _, m := range []struct {
					file string
					ok   bool
				}{{"msg", true}, {"other", false}} {
					var args []string
					if c.digest == "" {
						args = []string{"pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", m.file, "-sigfile", "sig"}
					} else {
						args = append(append([]string{"dgst", "-" + c.digest, "-verify", "pub.pem"}, c.sigopts...), "-signature", "sig", m.file)
					}
					got, err := openssl(t, dir, false, args...)
					if ok := err == nil && strings.Contains(got, "Verified") && !strings.Contains(got, "Failure"); ok != m.ok {
						t.Errorf("%s (%s): openssl %s: %v %q, want verified %v", mt, m.file, strings.Join(args, " "), err, got, m.ok)
					}
				}
			}
		})
	}
}

// TestEnvelopeVerifiesOpenSSL: keys openssl makes (PKCS #8, as AWS imports
// them) put into the KMS; signatures openssl makes with them verify
// through Verify, and ECDH secrets openssl derives are DeriveSharedSecret's.
func TestEnvelopeVerifiesOpenSSL(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	dir := t.TempDir()
	msg := writeFile(t, dir, "msg", []byte("signed by openssl"))
	message, _ := os.ReadFile(msg)
	for i, c := range opensslCases {
		if c.genpkey == nil {
			continue // the RSA key of the case before
		}
		t.Run(c.spec, func(t *testing.T) {
			openssl(t, dir, true, append([]string{"genpkey", "-out", "key.pem"}, c.genpkey...)...)
			openssl(t, dir, true, "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out", "key.der")
			der, err := os.ReadFile(filepath.Join(dir, "key.der"))
			if err != nil {
				t.Fatal(err)
			}
			id, err := kms.KeyWithMaterialForTest(e.svc, c.spec, kms.UsageSignVerify, der)
			if err != nil {
				t.Fatalf("the key openssl made is not taken as a %s key: %v", c.spec, err)
			}
			openssl(t, dir, true, "pkey", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "pub.der")
			pub, _ := os.ReadFile(filepath.Join(dir, "pub.der"))
			pk, err := e.svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: id})
			if err != nil || !bytes.Equal(pk.PublicKey, pub) {
				t.Errorf("GetPublicKey = %x (%v); openssl's public key is %x", pk.PublicKey, err, pub)
			}
			for _, cc := range opensslCases[i:] {
				if cc.spec != c.spec {
					break
				}
				var args []string
				if cc.digest == "" {
					args = []string{"pkeyutl", "-sign", "-inkey", "key.pem", "-rawin", "-in", "msg", "-out", "sig"}
				} else {
					args = append(append([]string{"dgst", "-" + cc.digest, "-sign", "key.pem"}, cc.sigopts...), "-out", "sig", "msg")
				}
				openssl(t, dir, true, args...)
				sig, _ := os.ReadFile(filepath.Join(dir, "sig"))
				for _, mt := range messageTypes(cc.alg) {
					v, err := e.svc.Verify(ctx, &kms.VerifyInput{KeyId: id, Message: messageAs(t, cc.alg, mt, pk.PublicKey, message), MessageType: mt,
						Signature: sig, SigningAlgorithm: cc.alg})
					if err != nil || !v.SignatureValid {
						t.Errorf("%s %s: Verify of openssl's signature = %v", cc.alg, mt, err)
					}
				}
			}
		})
	}
	// ECDH: openssl derives with its key and the KMS key's public key what
	// the KMS derives with its key and openssl's public key.
	for _, c := range opensslCases[:3] {
		t.Run("ECDH "+c.spec, func(t *testing.T) {
			ck, err := e.svc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: c.spec, KeyUsage: kms.UsageKeyAgreement})
			if err != nil {
				t.Fatal(err)
			}
			pk, err := e.svc.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: ck.KeyMetadata.KeyId})
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, "kms.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk.PublicKey}))
			openssl(t, dir, true, append([]string{"genpkey", "-out", "peer.pem"}, c.genpkey...)...)
			openssl(t, dir, true, "pkey", "-in", "peer.pem", "-pubout", "-outform", "DER", "-out", "peer.der")
			openssl(t, dir, true, "pkeyutl", "-derive", "-inkey", "peer.pem", "-peerkey", "kms.pem", "-out", "secret")
			peer, _ := os.ReadFile(filepath.Join(dir, "peer.der"))
			want, _ := os.ReadFile(filepath.Join(dir, "secret"))
			out, err := e.svc.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: ck.KeyMetadata.KeyId, KeyAgreementAlgorithm: kms.AlgECDH, PublicKey: peer})
			if err != nil || !bytes.Equal(out.SharedSecret, want) || len(want) == 0 {
				t.Errorf("DeriveSharedSecret = %x, %v; openssl derived %x", out.SharedSecret, err, want)
			}
		})
	}
}
