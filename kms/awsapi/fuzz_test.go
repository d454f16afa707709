package awsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsapi/internal/httpserver"
)

// FuzzHandler sends arbitrary bodies to every operation (unsigned, through
// InsecureDev, so that they reach the decoder and the KMS): the server must
// never panic, and must always answer 200 with a JSON object or an AWS
// error with a name and a message.
func FuzzHandler(f *testing.F) {
	ctx := context.Background()
	p := newServerParts(f, false, func(c *Config) { c.InsecureDev = true })
	ks, srv := p.ks, p.srv
	ck, err := ks.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		f.Fatal(err)
	}
	n := int32(32)
	dk, _ := ks.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: ck.KeyMetadata.KeyId, NumberOfBytes: &n})
	blob, _ := json.Marshal(dk.CiphertextBlob)
	id := ck.KeyMetadata.KeyId
	var names []string
	for name := range operations {
		names = append(names, name)
	}
	for i, body := range []string{
		`{}`, `{"KeyId":"` + id + `"}`, `{"KeyId":"alias/x","NumberOfBytes":32}`,
		`{"CiphertextBlob":` + string(blob) + `}`, `{"KeyId":"` + id + `","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}`,
		`{"AliasName":"alias/f","TargetKeyId":"` + id + `"}`, `{"KeyId":"` + id + `","Tags":[{"TagKey":"a","TagValue":"b"}]}`,
		`{"Limit":0}`, `[]`, `null`, `{"keyid":1}`, `{"KeyId":"` + id + `","PendingWindowInDays":7}`,
	} {
		f.Add(names[i%len(names)], []byte(body))
	}
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		if _, ok := operations[op]; !ok {
			op = names[len(op)%len(names)]
		}
		if strings.Contains(op, "Delete") || op == "ScheduleKeyDeletion" {
			return // keep the seeded key usable for the rest of the run
		}
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8500/", bytes.NewReader(body)) // InsecureDev wants a loopback Host
		r.Header.Set("X-Amz-Target", "TrentService."+op)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s(%q): answer %d is not a JSON object: %q", op, body, w.Code, w.Body.Bytes())
		}
		switch w.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusInternalServerError:
			if out["__type"] == "" || out["message"] == nil || w.Header().Get("x-amzn-ErrorType") == "" {
				t.Fatalf("%s(%q): error answer without a type or message: %q", op, body, w.Body.Bytes())
			}
			if out["__type"] == CodeMissingAuthenticationToken {
				t.Fatalf("%s(%q): %q: the fuzzer's requests do not reach the KMS", op, body, w.Body.Bytes())
			}
			if w.Code == http.StatusInternalServerError {
				t.Fatalf("%s(%q): internal error: %q", op, body, w.Body.Bytes())
			}
		default:
			t.Fatalf("%s(%q): status %d", op, body, w.Code)
		}
	})
}

// FuzzAuthorization feeds arbitrary Authorization and X-Amz-Date headers
// to the SigV4 parser and verifier: never a panic, never acceptance.
func FuzzAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261128/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature="+strings.Repeat("ab", 32), "20261128T000000Z")
	f.Add("AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;, Signature=zz", "x")
	f.Add("Basic dXNlcjpwYXNz", "")
	f.Fuzz(func(t *testing.T, auth, date string) {
		r := &kmsRequest{method: "POST", path: "/", rawPath: "/", host: "127.0.0.1:8500", body: []byte("{}"), contentLength: 2,
			header: httpserver.Header{{Name: "Authorization", Value: auth}, {Name: "X-Amz-Date", Value: date}, {Name: "X-Amz-Target", Value: "TrentService.ListKeys"}}}
		sr, err := parseAuthorization(r)
		if err != nil {
			return
		}
		if sr.checkScope(sr.region, sr.amzDate) != nil {
			return
		}
		key := newSigKey(signingKey("secret", sr.date, sr.region, sr.service))
		if _, err := sr.checkSignature(r, key, nil); err == nil {
			t.Fatalf("a fuzzed signature verified: %q", auth)
		}
	})
}
