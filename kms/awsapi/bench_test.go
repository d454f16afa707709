package awsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
)

// signedRequest is a request signed once and replayed (the server has no
// replay protection within the clock-skew window, so this measures the
// handler's full work: SigV4, JSON, authorization, the KMS, the audit).
type signedRequest struct {
	header http.Header
	body   []byte
}

func (s signedRequest) request() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8500/", bytes.NewReader(s.body))
	r.Header = s.header.Clone()
	return r
}

func sign(b *testing.B, op string, body []byte) signedRequest {
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8500/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService."+op)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), rootCreds, r, hex.EncodeToString(sum[:]), "kms", testRegion, time.Now()); err != nil {
		b.Fatal(err)
	}
	return signedRequest{header: r.Header, body: body}
}

// BenchmarkHandler measures the server's CPU per GenerateDataKey+Decrypt
// pair inside the handler (no network), with SigV4 and the default audit
// mode on, as the server runs.
func BenchmarkHandler(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	ks, err := keystore.Open(ctx, dir, keystore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ks.Close()
	key, _ := LoadOrCreateAuditKey(filepath.Join(dir, "audit.key"))
	audit, err := OpenAuditLog(filepath.Join(dir, "audit.log"), key, false)
	if err != nil {
		b.Fatal(err)
	}
	defer audit.Close()
	srv, err := New(Config{Backend: ks, Region: ks.Region(), Root: RootCredentials{AccessKeyID: testRootID, SecretAccessKey: testRootSecret}, Audit: audit})
	if err != nil {
		b.Fatal(err)
	}
	ck, err := ks.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	n := int32(32)
	gdkBody, _ := json.Marshal(&kms.GenerateDataKeyInput{KeyId: ck.KeyMetadata.Arn, NumberOfBytes: &n, EncryptionContext: map[string]string{"purpose": "bench"}})
	gdk := sign(b, "GenerateDataKey", gdkBody)
	out, err := ks.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: ck.KeyMetadata.Arn, NumberOfBytes: &n, EncryptionContext: map[string]string{"purpose": "bench"}})
	if err != nil {
		b.Fatal(err)
	}
	decBody, _ := json.Marshal(&kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "bench"}})
	dec := sign(b, "Decrypt", decBody)
	h := srv.Handler()
	b.Run("op=GenerateDataKey+Decrypt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, sr := range []signedRequest{gdk, dec} {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, sr.request())
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		}
	})
}

func TestTopLevelKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`{}`, nil},
		{`{"KeyId":"a","EncryptionContext":{"k":"v","x":{"y":1}},"NumberOfBytes":32}`, []string{"KeyId", "EncryptionContext", "NumberOfBytes"}},
		{`{"a\"b":"c,\"d\":1","Tags":[{"TagKey":"k"}],"z":[1,{"q":2}]}`, []string{`a\"b`, "Tags", "z"}},
		{` { "keyid" : "x" } `, []string{"keyid"}},
	} {
		got := topLevelKeys([]byte(tc.in))
		if len(got) != len(tc.want) {
			t.Errorf("topLevelKeys(%s) = %q, want %q", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("topLevelKeys(%s) = %q, want %q", tc.in, got, tc.want)
			}
		}
	}
}
