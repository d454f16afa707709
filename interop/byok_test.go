//go:build interop

package interop

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBYOKBoto3Debian runs interop/python/byok.py with Debian's
// python3-boto3 (botocore 1.29, whose model has the RSAES_OAEP algorithms
// and RSA_2048 wrapping keys): material wrapped with openssl pkeyutl as
// AWS documents, import, use, deletion, re-import, the errors, and expiry
// a few seconds after import (polled with a deadline).
func TestBYOKBoto3Debian(t *testing.T) {
	s := startServer(t)
	out, _ := s.run(t, false, "/usr/bin/python3", filepath.Join(repoRoot, "interop", "python", "byok.py"), "debian", t.TempDir())
	if !strings.Contains(out, "byok ok 1.") {
		t.Fatalf("byok.py debian printed %q", out)
	}
}

// TestBYOKBoto3Pip runs interop/python/byok.py with the pip boto3 on PATH
// (botocore 1.43) for what Debian's lacks: RSA_AES_KEY_WRAP_SHA_1/256 (the
// openssl enc -id-aes256-wrap-pad recipe), RSA and ECC private keys,
// ImportType, KeyMaterialDescription, ListKeyRotations' import states and
// DeleteImportedKeyMaterial by KeyMaterialId.
func TestBYOKBoto3Pip(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil || python == "/usr/bin/python3" {
		t.Fatal("the pip python3 (with boto3 >= 1.40 and cryptography) is not first on PATH")
	}
	s := startServer(t)
	out, _ := s.run(t, false, python, filepath.Join(repoRoot, "interop", "python", "byok.py"), "modern", t.TempDir())
	if !strings.Contains(out, "byok ok") {
		t.Fatalf("byok.py modern printed %q", out)
	}
}

// TestBYOKAWSCLI imports an HMAC key's material with the pip aws-cli v1 and
// Debian's aws-cli v2 (2.9), wrapped with openssl as AWS documents
// (RSAES_OAEP_SHA_256 for v2, whose model knows no other; the AES key wrap
// recipe for v1), checks generate-mac against HMAC computed here, and the
// errors for other material and a token of another key.
func TestBYOKAWSCLI(t *testing.T) {
	awsV1, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal("aws (aws-cli v1) not on PATH: pip install awscli")
	}
	const awsV2 = "/usr/bin/aws"
	s := startServer(t)
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b64 := func(name, s string) string {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return file(name, raw)
	}
	openssl := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "openssl", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	msg := file("msg", []byte("a MAC of imported material"))
	for _, c := range []struct{ aws, alg string }{{awsV1, "RSA_AES_KEY_WRAP_SHA_256"}, {awsV2, "RSAES_OAEP_SHA_256"}} {
		material := make([]byte, 32)
		rand.Read(material)
		mat := file("material", material)
		k := s.awsJSON(t, c.aws, "kms", "create-key", "--origin", "EXTERNAL", "--key-spec", "HMAC_256", "--key-usage", "GENERATE_VERIFY_MAC")
		id := str(t, k, "KeyMetadata", "KeyId")
		if str(t, k, "KeyMetadata", "Origin") != "EXTERNAL" || str(t, k, "KeyMetadata", "KeyState") != "PendingImport" {
			t.Fatalf("%s create-key --origin EXTERNAL = %v", c.aws, k)
		}
		p := s.awsJSON(t, c.aws, "kms", "get-parameters-for-import", "--key-id", id, "--wrapping-algorithm", c.alg, "--wrapping-key-spec", "RSA_2048")
		pub := b64("WrappingPublicKey.bin", str(t, p, "PublicKey"))
		token := b64("ImportToken.bin", str(t, p, "ImportToken"))
		oaep := []string{"pkeyutl", "-encrypt", "-inkey", pub, "-keyform", "DER", "-pubin",
			"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"}
		wrap := func(in, out string) string {
			if c.alg == "RSAES_OAEP_SHA_256" {
				openssl(append(oaep, "-in", in, "-out", out)...)
				return filepath.Join(dir, out)
			}
			openssl("rand", "-out", "aes-key.bin", "32")
			aesKey, _ := os.ReadFile(filepath.Join(dir, "aes-key.bin"))
			openssl("enc", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(aesKey), "-iv", "A65959A6", "-in", in, "-out", "key-material-wrapped.bin")
			openssl(append(oaep, "-in", "aes-key.bin", "-out", "aes-key-wrapped.bin")...)
			a, _ := os.ReadFile(filepath.Join(dir, "aes-key-wrapped.bin"))
			m, _ := os.ReadFile(filepath.Join(dir, "key-material-wrapped.bin"))
			return file(out, append(a, m...))
		}
		enc := wrap(mat, "EncryptedKeyMaterial.bin")
		s.awsJSON(t, c.aws, "kms", "import-key-material", "--key-id", id, "--encrypted-key-material", "fileb://"+enc,
			"--import-token", "fileb://"+token, "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
		d := s.awsJSON(t, c.aws, "kms", "describe-key", "--key-id", id)
		if str(t, d, "KeyMetadata", "KeyState") != "Enabled" || str(t, d, "KeyMetadata", "ExpirationModel") != "KEY_MATERIAL_DOES_NOT_EXPIRE" {
			t.Fatalf("%s describe-key after import = %v", c.aws, d)
		}
		mac := s.awsJSON(t, c.aws, "kms", "generate-mac", "--key-id", id, "--message", "fileb://"+msg, "--mac-algorithm", "HMAC_SHA_256")
		h := hmac.New(sha256.New, material)
		h.Write([]byte("a MAC of imported material"))
		if got, _ := base64.StdEncoding.DecodeString(str(t, mac, "Mac")); !bytes.Equal(got, h.Sum(nil)) {
			t.Fatalf("%s generate-mac of the imported key differs from HMAC-SHA256 computed here", c.aws)
		}
		s.awsJSON(t, c.aws, "kms", "delete-imported-key-material", "--key-id", id)
		s.awsFails(t, c.aws, "KMSInvalidStateException", "kms", "generate-mac", "--key-id", id, "--message", "fileb://"+msg, "--mac-algorithm", "HMAC_SHA_256")
		other := make([]byte, 32)
		rand.Read(other)
		s.awsFails(t, c.aws, "IncorrectKeyMaterialException", "kms", "import-key-material", "--key-id", id,
			"--encrypted-key-material", "fileb://"+wrap(file("other", other), "EncryptedOther.bin"),
			"--import-token", "fileb://"+token, "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
		id2 := str(t, s.awsJSON(t, c.aws, "kms", "create-key", "--origin", "EXTERNAL"), "KeyMetadata", "KeyId")
		s.awsFails(t, c.aws, "InvalidImportTokenException", "kms", "import-key-material", "--key-id", id2,
			"--encrypted-key-material", "fileb://"+enc, "--import-token", "fileb://"+token, "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
		s.awsJSON(t, c.aws, "kms", "import-key-material", "--key-id", id, "--encrypted-key-material", "fileb://"+enc,
			"--import-token", "fileb://"+token, "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
		if mac2 := s.awsJSON(t, c.aws, "kms", "generate-mac", "--key-id", id, "--message", "fileb://"+msg, "--mac-algorithm", "HMAC_SHA_256"); str(t, mac2, "Mac") != str(t, mac, "Mac") {
			t.Fatalf("%s: the MAC after re-import differs", c.aws)
		}
	}
}
