//go:build interop

package interop

import (
	"crypto/sha256"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSigningBoto3Debian runs interop/python/signing.py with Debian's
// python3-boto3 (1.26, botocore 1.29) against the server: Sign and Verify
// with RSA, the NIST curves and secp256k1 (RAW and DIGEST), GenerateMac and
// VerifyMac, checked offline with python3-pycryptodome, and the errors
// AWS gives. That botocore predates Ed25519, ML-DSA, EXTERNAL_MU and
// DeriveSharedSecret: TestSigningBoto3Pip covers them.
func TestSigningBoto3Debian(t *testing.T) {
	s := startServer(t)
	out, _ := s.run(t, false, "/usr/bin/python3", filepath.Join(repoRoot, "interop", "python", "signing.py"), "debian")
	if !strings.Contains(out, "signing ok 1.26") {
		t.Fatalf("signing.py debian printed %q", out)
	}
}

// TestSigningBoto3Pip runs interop/python/signing.py with the pip boto3 of
// the python3 on PATH (botocore 1.43) for what Debian's lacks: Ed25519 and
// Ed25519ph, ML-DSA with RAW and EXTERNAL_MU, DeriveSharedSecret on every
// NIST curve (against `cryptography`'s ECDH), secp256k1 checked with
// `cryptography`.
func TestSigningBoto3Pip(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil || python == "/usr/bin/python3" {
		t.Fatal("the pip python3 (with boto3 >= 1.40 and cryptography) is not first on PATH")
	}
	s := startServer(t)
	out, _ := s.run(t, false, python, filepath.Join(repoRoot, "interop", "python", "signing.py"), "modern")
	if !strings.Contains(out, "signing ok") {
		t.Fatalf("signing.py modern printed %q", out)
	}
}

// TestSigningAWSCLI drives the pip aws-cli v1 (botocore 1.43) and Debian's
// aws-cli v2 (2.9): create-key with each spec, sign, verify,
// get-public-key, generate-mac, verify-mac, derive-shared-secret (v1; v2.9
// predates it), and the errors for wrong usage, wrong algorithm and too
// long messages.
func TestSigningAWSCLI(t *testing.T) {
	awsV1, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("aws (aws-cli v1) not on PATH: pip install awscli")
	}
	s := startServer(t)
	dir := t.TempDir()
	msg := filepath.Join(dir, "msg")
	os.WriteFile(msg, []byte("signed by the aws cli"), 0o600)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 4097), 0o600)
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("not the message signed"), 0o600)
	write := func(name, b64 string) string {
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, raw, 0o600)
		return p
	}
	specs := []struct{ spec, alg string }{
		{"ECC_NIST_P256", "ECDSA_SHA_256"}, {"ECC_NIST_P384", "ECDSA_SHA_384"}, {"ECC_NIST_P521", "ECDSA_SHA_512"},
		{"ECC_SECG_P256K1", "ECDSA_SHA_256"}, {"ECC_NIST_EDWARDS25519", "ED25519_SHA_512"},
		{"RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256"}, {"ML_DSA_65", "ML_DSA_SHAKE_256"},
	}
	for _, c := range specs {
		k := s.awsJSON(t, awsV1, "kms", "create-key", "--key-spec", c.spec, "--key-usage", "SIGN_VERIFY")
		id := str(t, k, "KeyMetadata", "KeyId")
		pk := s.awsJSON(t, awsV1, "kms", "get-public-key", "--key-id", id)
		if str(t, pk, "KeySpec") != c.spec || !strings.Contains(strings.Join(strs(pk["SigningAlgorithms"]), ","), c.alg) {
			t.Errorf("get-public-key %s = %v", c.spec, pk)
		}
		sg := s.awsJSON(t, awsV1, "kms", "sign", "--key-id", id, "--message", "fileb://"+msg, "--message-type", "RAW", "--signing-algorithm", c.alg)
		sig := write("sig-"+c.spec, str(t, sg, "Signature"))
		v := s.awsJSON(t, awsV1, "kms", "verify", "--key-id", id, "--message", "fileb://"+msg, "--signature", "fileb://"+sig, "--signing-algorithm", c.alg)
		if v["SignatureValid"] != true {
			t.Errorf("verify %s = %v", c.spec, v)
		}
		s.awsFails(t, awsV1, "KMSInvalidSignatureException", "kms", "verify", "--key-id", id, "--message", "fileb://"+other,
			"--signature", "fileb://"+sig, "--signing-algorithm", c.alg)
		s.awsFails(t, awsV1, "ValidationException", "kms", "sign", "--key-id", id, "--message", "fileb://"+big, "--signing-algorithm", c.alg)
		if c.alg != "ECDSA_SHA_384" {
			s.awsFails(t, awsV1, "InvalidKeyUsageException", "kms", "sign", "--key-id", id, "--message", "fileb://"+msg, "--signing-algorithm", "ECDSA_SHA_384")
		}
	}
	// DIGEST with aws-cli v1 (ECDSA over a SHA-256 digest).
	k := s.awsJSON(t, awsV1, "kms", "create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY")
	id := str(t, k, "KeyMetadata", "KeyId")
	d := sha256.Sum256([]byte("signed by the aws cli"))
	digest := filepath.Join(dir, "digest")
	os.WriteFile(digest, d[:], 0o600)
	sg := s.awsJSON(t, awsV1, "kms", "sign", "--key-id", id, "--message", "fileb://"+digest, "--message-type", "DIGEST", "--signing-algorithm", "ECDSA_SHA_256")
	sig := write("digest-sig", str(t, sg, "Signature"))
	s.awsJSON(t, awsV1, "kms", "verify", "--key-id", id, "--message", "fileb://"+msg, "--signature", "fileb://"+sig, "--signing-algorithm", "ECDSA_SHA_256")

	// HMAC.
	h := s.awsJSON(t, awsV1, "kms", "create-key", "--key-spec", "HMAC_384", "--key-usage", "GENERATE_VERIFY_MAC")
	hid := str(t, h, "KeyMetadata", "KeyId")
	mac := s.awsJSON(t, awsV1, "kms", "generate-mac", "--key-id", hid, "--message", "fileb://"+msg, "--mac-algorithm", "HMAC_SHA_384")
	macFile := write("mac", str(t, mac, "Mac"))
	vm := s.awsJSON(t, awsV1, "kms", "verify-mac", "--key-id", hid, "--message", "fileb://"+msg, "--mac", "fileb://"+macFile, "--mac-algorithm", "HMAC_SHA_384")
	if vm["MacValid"] != true {
		t.Errorf("verify-mac = %v", vm)
	}
	s.awsFails(t, awsV1, "KMSInvalidMacException", "kms", "verify-mac", "--key-id", hid, "--message", "fileb://"+digest, "--mac", "fileb://"+macFile, "--mac-algorithm", "HMAC_SHA_384")
	s.awsFails(t, awsV1, "InvalidKeyUsageException", "kms", "generate-mac", "--key-id", hid, "--message", "fileb://"+msg, "--mac-algorithm", "HMAC_SHA_256")
	s.awsFails(t, awsV1, "ValidationException", "kms", "generate-mac", "--key-id", hid, "--message", "fileb://"+big, "--mac-algorithm", "HMAC_SHA_384")
	s.awsFails(t, awsV1, "InvalidKeyUsageException", "kms", "sign", "--key-id", hid, "--message", "fileb://"+msg, "--signing-algorithm", "ECDSA_SHA_256")
	s.awsFails(t, awsV1, "ValidationException", "kms", "create-key", "--key-spec", "HMAC_256", "--key-usage", "SIGN_VERIFY")

	// ECDH: two KMS key-agreement keys derive the same secret from each
	// other's public key (the DER SPKI given as a file, as AWS documents
	// for v1).
	a := str(t, s.awsJSON(t, awsV1, "kms", "create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "KEY_AGREEMENT"), "KeyMetadata", "KeyId")
	b := str(t, s.awsJSON(t, awsV1, "kms", "create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "KEY_AGREEMENT"), "KeyMetadata", "KeyId")
	apub := write("a.der", str(t, s.awsJSON(t, awsV1, "kms", "get-public-key", "--key-id", a), "PublicKey"))
	bpub := write("b.der", str(t, s.awsJSON(t, awsV1, "kms", "get-public-key", "--key-id", b), "PublicKey"))
	ab := s.awsJSON(t, awsV1, "kms", "derive-shared-secret", "--key-id", a, "--key-agreement-algorithm", "ECDH", "--public-key", "fileb://"+bpub)
	ba := s.awsJSON(t, awsV1, "kms", "derive-shared-secret", "--key-id", b, "--key-agreement-algorithm", "ECDH", "--public-key", "fileb://"+apub)
	if str(t, ab, "SharedSecret") != str(t, ba, "SharedSecret") || str(t, ab, "KeyAgreementAlgorithm") != "ECDH" {
		t.Errorf("derive-shared-secret: %v and %v differ", ab, ba)
	}
	s.awsFails(t, awsV1, "ValidationException", "kms", "derive-shared-secret", "--key-id", a, "--key-agreement-algorithm", "ECDH", "--public-key", "fileb://"+msg)
	s.awsFails(t, awsV1, "InvalidKeyUsageException", "kms", "derive-shared-secret", "--key-id", id, "--key-agreement-algorithm", "ECDH", "--public-key", "fileb://"+bpub)

	// Debian's aws-cli v2 (2.9): sign, verify, generate-mac and verify-mac.
	const awsV2 = "/usr/bin/aws"
	if _, err := os.Stat(awsV2); err != nil {
		t.Fatal("/usr/bin/aws (Debian awscli 2) missing: apt-get install awscli")
	}
	sg = s.awsJSON(t, awsV2, "kms", "sign", "--key-id", id, "--message", "fileb://"+msg, "--signing-algorithm", "ECDSA_SHA_256")
	sig = write("v2-sig", str(t, sg, "Signature"))
	if v := s.awsJSON(t, awsV2, "kms", "verify", "--key-id", id, "--message", "fileb://"+msg, "--signature", "fileb://"+sig, "--signing-algorithm", "ECDSA_SHA_256"); v["SignatureValid"] != true {
		t.Errorf("aws v2 verify = %v", v)
	}
	mac = s.awsJSON(t, awsV2, "kms", "generate-mac", "--key-id", hid, "--message", "fileb://"+msg, "--mac-algorithm", "HMAC_SHA_384")
	if str(t, mac, "Mac") != base64.StdEncoding.EncodeToString(mustRead(t, macFile)) {
		t.Errorf("aws v2 generate-mac = %v, v1 gave %x", mac, mustRead(t, macFile))
	}
	s.awsFails(t, awsV2, "InvalidKeyUsageException", "kms", "sign", "--key-id", hid, "--message", "fileb://"+msg, "--signing-algorithm", "ECDSA_SHA_256")
}

func strs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
