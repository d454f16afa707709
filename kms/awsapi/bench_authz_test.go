package awsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/envelopekms/envelope/kms"
)

// BenchmarkHandlerPrincipal measures the server's CPU per
// GenerateDataKey+Decrypt pair through the core request path, for the root
// principal and for a principal whose grant names the key's alias (each
// key it is asked about is matched against the grant in the KMS's
// snapshot), both naming the key by alias.
func BenchmarkHandlerPrincipal(b *testing.B) {
	ctx := context.Background()
	app := aws.Credentials{AccessKeyID: "AKIDAPP0000000000001", SecretAccessKey: "appsecret"}
	p := newServerParts(b, false, func(c *Config) {
		c.Principals = []*Principal{{Name: "app", AccessKeyID: app.AccessKeyID, SecretAccessKey: app.SecretAccessKey,
			Allow: []Grant{{Actions: []string{"kms:GenerateDataKey", "kms:Decrypt"}, Keys: []string{"alias/app"}}}}}
	})
	ck, err := p.ks.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.ks.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/app", TargetKeyId: ck.KeyMetadata.KeyId}); err != nil {
		b.Fatal(err)
	}
	n := int32(32)
	ec := map[string]string{"purpose": "bench"}
	out, err := p.ks.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: "alias/app", NumberOfBytes: &n, EncryptionContext: ec})
	if err != nil {
		b.Fatal(err)
	}
	gdkBody, _ := json.Marshal(&kms.GenerateDataKeyInput{KeyId: "alias/app", NumberOfBytes: &n, EncryptionContext: ec})
	decBody, _ := json.Marshal(&kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec, KeyId: "alias/app"})
	signAs := func(creds aws.Credentials, op string, body []byte) signedRequest {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8500/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", "TrentService."+op)
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(ctx, creds, r, hex.EncodeToString(sum[:]), "kms", testRegion, time.Now()); err != nil {
			b.Fatal(err)
		}
		return signedRequest{header: r.Header, body: body}
	}
	for _, who := range []struct {
		name  string
		creds aws.Credentials
	}{{"root", rootCreds}, {"principal", app}} {
		b.Run("op=GenerateDataKey+Decrypt/by=alias/as="+who.name, func(b *testing.B) {
			var x exchange
			reqs := []kmsRequest{signAs(who.creds, "GenerateDataKey", gdkBody).kmsRequest(), signAs(who.creds, "Decrypt", decBody).kmsRequest()}
			b.ReportAllocs()
			reportCPU(b, func() {
				for b.Loop() {
					for i := range reqs {
						x.req = reqs[i]
						p.srv.handle(&x)
						if x.resp.status != http.StatusOK {
							b.Fatalf("status %d: %s", x.resp.status, x.resp.body)
						}
					}
				}
			})
		})
	}
}
