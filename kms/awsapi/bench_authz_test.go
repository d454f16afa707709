package awsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/envelopekms/envelope/kms"
)

// BenchmarkHandlerPrincipal measures the server's CPU per
// GenerateDataKey+Decrypt pair through the core request path, for the root
// principal; for a principal whose policy file entry names the key's alias
// (the key's default policy lets the account's identity policies decide:
// the entry, translated, is matched with kms:ResourceAliases read from the
// key cache); and for a principal that a 20-statement key policy allows by
// its last statement, with a condition on the encryption context.
func BenchmarkHandlerPrincipal(b *testing.B) {
	ctx := context.Background()
	app := aws.Credentials{AccessKeyID: "AKIDAPP0000000000001", SecretAccessKey: "appsecret"}
	kp := aws.Credentials{AccessKeyID: "AKIDAPP0000000000002", SecretAccessKey: "kpsecret"}
	p := newServerParts(b, false, func(c *Config) {
		c.Principals = []*Principal{{Name: "app", AccessKeyID: app.AccessKeyID, SecretAccessKey: app.SecretAccessKey,
			Allow: []Grant{{Actions: []string{"kms:GenerateDataKey", "kms:Decrypt"}, Keys: []string{"alias/app"}}}},
			{Name: "kp", AccessKeyID: kp.AccessKeyID, SecretAccessKey: kp.SecretAccessKey}}
	})
	ck, err := p.ks.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.ks.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: ck.KeyMetadata.KeyId, Policy: twentyStatements}); err != nil {
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
	}{{"root", rootCreds}, {"principal", app}, {"principal-keypolicy20", kp}} {
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

// twentyStatements is a key policy of 20 statements: the account's root,
// 18 statements for other users (with conditions), and last the one that
// allows user/kp to GenerateDataKey and Decrypt with purpose=bench.
var twentyStatements = func() string {
	var b strings.Builder
	b.WriteString(`{"Version":"2012-10-17","Statement":[`)
	b.WriteString(`{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}`)
	for i := range 18 {
		fmt.Fprintf(&b, `,{"Sid":"User%d","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/u%d"},`+
			`"Action":["kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*",`+
			`"Condition":{"StringEquals":{"kms:EncryptionContext:tenant":"t%d"}}}`, i, i, i)
	}
	b.WriteString(`,{"Sid":"Bench","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/kp"},` +
		`"Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"*",` +
		`"Condition":{"StringEquals":{"kms:EncryptionContext:purpose":"bench"}}}]}`)
	return b.String()
}()
