package awsclient_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsapi"
	"github.com/envelopekms/envelope/kms/awsclient"
	"github.com/envelopekms/envelope/kms/keystore"
)

// serverClock is the clock of a test server's KMS.
type serverClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *serverClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *serverClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newClockedServer is newEnvelopeServer with a KMS whose clock the test
// moves.
func newClockedServer(t *testing.T) (*awsclient.Client, *serverClock) {
	t.Helper()
	isolate(t)
	clock := &serverClock{t: time.Now().UTC().Truncate(time.Second)}
	ks, err := keystore.Open(t.Context(), t.TempDir(), keystore.Options{Service: kms.Options{Now: clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	root := awsapi.NewRootCredentials()
	srv, err := awsapi.New(awsapi.Config{Backend: ks, Region: kms.DefaultRegion, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	c, err := awsclient.NewEndpoint(t.Context(), hs.URL, awsclient.WithCredentials(root.AccessKeyID, root.SecretAccessKey), noRetries)
	if err != nil {
		t.Fatal(err)
	}
	return c, clock
}

// TestImportThroughServer imports key material through aws-sdk-go-v2 and
// the real server with each wrapping algorithm, uses it (an HMAC computed
// here equals GenerateMac's; a signature verifies with the imported key),
// and gets AWS's exceptions back as *kms.Error: other material, a token
// of another key, an expired token, and material past its ValidTo.
func TestImportThroughServer(t *testing.T) {
	c, clock := newClockedServer(t)
	ctx := t.Context()
	create := func(spec, usage string) string {
		t.Helper()
		out, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Origin: kms.OriginExternal})
		if err != nil {
			t.Fatal(err)
		}
		if m := out.KeyMetadata; m.Origin != kms.OriginExternal || m.KeyState != kms.StatePendingImport {
			t.Fatalf("CreateKey EXTERNAL = %+v", m)
		}
		return out.KeyMetadata.KeyId
	}
	msg := []byte("authenticated through the server")
	for _, alg := range []string{kms.WrapRSAOAEPSHA1, kms.WrapRSAOAEPSHA256, kms.WrapRSAAESKeyWrapSHA1, kms.WrapRSAAESKeyWrapSHA256} {
		id := create(kms.SpecHMAC512, kms.UsageGenerateVerifyMac)
		material := make([]byte, 64)
		rand.Read(material)
		validTo := clock.Now().Add(time.Hour)
		out, err := kms.ImportMaterial(ctx, c, id, material, kms.ImportOptions{WrappingAlgorithm: alg, WrappingKeySpec: kms.WrappingKeyRSA2048, ValidTo: validTo})
		if err != nil {
			t.Fatalf("%s: ImportMaterial through the server: %v", alg, err)
		}
		if len(out.KeyMaterialId) != 64 {
			t.Fatalf("%s: ImportKeyMaterial = %+v", alg, out)
		}
		d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id})
		if err != nil {
			t.Fatal(err)
		}
		if m := d.KeyMetadata; m.KeyState != kms.StateEnabled || m.ExpirationModel != kms.ExpirationModelExpires || m.ValidTo == nil || !m.ValidTo.Equal(validTo) {
			t.Fatalf("%s: DescribeKey after import = %+v", alg, m)
		}
		mac, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: id, Message: msg, MacAlgorithm: kms.AlgHMACSHA512})
		if err != nil {
			t.Fatal(err)
		}
		h := hmac.New(sha512.New, material)
		h.Write(msg)
		if !hmac.Equal(mac.Mac, h.Sum(nil)) {
			t.Fatalf("%s: GenerateMac of the imported key differs from HMAC-SHA512 computed here", alg)
		}
		other := make([]byte, 64)
		rand.Read(other)
		_, err = kms.ImportMaterial(ctx, c, id, other, kms.ImportOptions{WrappingAlgorithm: alg, WrappingKeySpec: kms.WrappingKeyRSA2048})
		if !errors.Is(err, kms.ErrIncorrectKeyMaterial) {
			t.Fatalf("%s: other material through the server: %v, want IncorrectKeyMaterialException", alg, err)
		}
	}

	// A signing key: the signature verifies with the key imported.
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	sid := create(kms.SpecECCNISTP256, kms.UsageSignVerify)
	if _, err := kms.ImportMaterial(ctx, c, sid, der, kms.ImportOptions{WrappingAlgorithm: kms.WrapRSAOAEPSHA256, WrappingKeySpec: kms.WrappingKeyRSA2048}); err != nil {
		t.Fatal(err)
	}
	sig, err := c.Sign(ctx, &kms.SignInput{KeyId: sid, Message: msg, SigningAlgorithm: kms.AlgECDSASHA256})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig.Signature) {
		t.Fatal("a signature made through the server does not verify with the imported key")
	}

	// Tokens: of another key, expired.
	a, b := create("", ""), create("", "")
	p, err := c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{KeyId: a, WrappingAlgorithm: kms.WrapRSAOAEPSHA256, WrappingKeySpec: kms.WrappingKeyRSA2048})
	if err != nil {
		t.Fatal(err)
	}
	if p.ParametersValidTo == nil || !p.ParametersValidTo.Equal(clock.Now().Add(24*time.Hour)) {
		t.Errorf("ParametersValidTo = %v, want 24 hours ahead", p.ParametersValidTo)
	}
	material := make([]byte, 32)
	rand.Read(material)
	wrapped, err := kms.WrapKeyMaterial(p.PublicKey, kms.WrapRSAOAEPSHA256, material)
	if err != nil {
		t.Fatal(err)
	}
	imp := func(id string) error {
		_, err := c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{KeyId: id, ImportToken: p.ImportToken, EncryptedKeyMaterial: wrapped,
			ExpirationModel: kms.ExpirationModelExpires, ValidTo: &kms.Timestamp{Time: clock.Now().Add(25 * time.Hour)}})
		return err
	}
	if err := imp(b); !errors.Is(err, kms.ErrInvalidImportToken) {
		t.Fatalf("a's token for b: %v, want InvalidImportTokenException", err)
	}
	if err := imp(a); err != nil {
		t.Fatal(err)
	}
	blob, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: a, Plaintext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(24 * time.Hour)
	if err := imp(a); !errors.Is(err, kms.ErrExpiredImportToken) {
		t.Fatalf("a token after 24 hours: %v, want ExpiredImportTokenException", err)
	}
	// Past ValidTo: unusable, as AWS (KMSInvalidStateException).
	clock.advance(time.Hour)
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob.CiphertextBlob})
	if !errors.Is(err, kms.ErrInvalidState) {
		t.Fatalf("Decrypt past ValidTo: %v, want KMSInvalidStateException", err)
	}
	rot, err := c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: a, IncludeKeyMaterial: "ALL_KEY_MATERIAL"})
	if err != nil || len(rot.Rotations) != 1 || rot.Rotations[0].ImportState != "PENDING_IMPORT" || rot.Rotations[0].KeyMaterialState != "CURRENT" {
		t.Fatalf("ListKeyRotations ALL_KEY_MATERIAL past ValidTo = %+v, %v", rot, err)
	}
	del, err := c.DeleteImportedKeyMaterial(ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: b})
	if err != nil || del.KeyId == "" || del.KeyMaterialId != "" {
		t.Fatalf("DeleteImportedKeyMaterial of a key with none = %+v, %v", del, err)
	}
}
