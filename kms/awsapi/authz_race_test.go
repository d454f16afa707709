package awsapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/envelopekms/envelope/kms"
)

// raceWindow bounds how long the alias-flip race runs. On the code before
// the fix, every attack of TestAuthorizationAliasRace met its first
// violation well within it on a loaded 2-core machine.
func raceWindow() time.Duration {
	if testing.Short() {
		return time.Second
	}
	return 3 * time.Second
}

// sendAs sends op with the JSON of in, signed as the principal name, and
// returns the status and body. Unlike policyEnv.as it may run on any
// goroutine: failures are reported with t.Errorf.
func (e *policyEnv) sendAs(t *testing.T, name, op string, in any) (int, []byte, bool) {
	body, err := json.Marshal(in)
	if err != nil {
		t.Errorf("json.Marshal(%T) err = %v", in, err)
		return 0, nil, false
	}
	r, err := http.NewRequest(http.MethodPost, e.hs.URL+"/", bytes.NewReader(body))
	if err != nil {
		t.Errorf("http.NewRequest err = %v", err)
		return 0, nil, false
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService."+op)
	creds := aws.Credentials{AccessKeyID: accessKey(name), SecretAccessKey: "secret-" + name}
	signHTTP(t, r, body, signOpts{creds: &creds})
	resp, err := e.hs.Client().Do(r)
	if err != nil {
		t.Errorf("%s as %s: %v", op, name, err)
		return 0, nil, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("%s as %s: reading the answer: %v", op, name, err)
		return 0, nil, false
	}
	return resp.StatusCode, b, true
}

// TestAuthorizationAliasRace: a principal allowed only key A names alias/x
// while root flips alias/x between A and B. The key the server authorizes
// must be the key the operation uses: the principal must never decrypt B's
// ciphertext, never get a ciphertext under B, and never move a ciphertext
// out of or into B with ReEncrypt. (Before the fix the server resolved the
// alias once to authorize and the KMS again to act, and each of these
// attacks succeeded within the window.)
func TestAuthorizationAliasRace(t *testing.T) {
	e := newPolicyEnv(t, func(appKey, _ string) map[string][]Grant {
		return map[string][]Grant{"onlya": {{
			Actions: []string{"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo"},
			Keys:    []string{appKey},
		}}}
	})
	a, b := e.appKey, e.otherKey
	aARN := e.ks.KeyARN(a)
	e.root("CreateAlias", kms.CreateAliasInput{AliasName: "alias/x", TargetKeyId: a}, nil)
	secretB := "the secret of key B"
	blobB := e.encrypt(b, secretB)
	blobA := e.encrypt(a, "the secret of key A")
	n := int32(32)

	// Each attack returns a description of the violation, or "".
	attacks := []struct {
		name string
		op   string
		in   any
		bad  func(body []byte) string
	}{
		{"Decrypt B's ciphertext naming alias/x", "Decrypt",
			kms.DecryptInput{KeyId: "alias/x", CiphertextBlob: blobB},
			func(body []byte) string {
				var out kms.DecryptOutput
				if json.Unmarshal(body, &out) == nil && string(out.Plaintext) == secretB {
					return "decrypted B's secret"
				}
				return "answered 200 " + string(body)
			}},
		{"Encrypt under alias/x", "Encrypt",
			kms.EncryptInput{KeyId: "alias/x", Plaintext: []byte("x")},
			func(body []byte) string {
				var out kms.EncryptOutput
				if err := json.Unmarshal(body, &out); err != nil || out.KeyId != aARN {
					return "encrypted under " + out.KeyId
				}
				return ""
			}},
		{"GenerateDataKey under alias/x", "GenerateDataKey",
			kms.GenerateDataKeyInput{KeyId: "alias/x", NumberOfBytes: &n},
			func(body []byte) string {
				var out kms.GenerateDataKeyOutput
				if err := json.Unmarshal(body, &out); err != nil || out.KeyId != aARN {
					return "generated a data key under " + out.KeyId
				}
				return ""
			}},
		{"ReEncrypt from B naming source alias/x", "ReEncrypt",
			kms.ReEncryptInput{CiphertextBlob: blobB, SourceKeyId: "alias/x", DestinationKeyId: a},
			func(body []byte) string {
				return "moved B's ciphertext to A: " + string(body)
			}},
		{"ReEncrypt to destination alias/x", "ReEncrypt",
			kms.ReEncryptInput{CiphertextBlob: blobA, DestinationKeyId: "alias/x"},
			func(body []byte) string {
				var out kms.ReEncryptOutput
				if err := json.Unmarshal(body, &out); err != nil || out.KeyId != aARN {
					return "re-encrypted under " + out.KeyId
				}
				return ""
			}},
	}
	// All attacks run at once, against one flipper, for one window; each
	// stops at its first violation.
	type result struct {
		tries, oks atomic.Int64
		mu         sync.Mutex
		violation  string
	}
	results := make([]result, len(attacks))
	var (
		flipper, attackers sync.WaitGroup
		done               atomic.Bool
		flips              atomic.Int64
	)
	// Root flips alias/x between A and B, as fast as it can, until the
	// attackers are done.
	flipper.Go(func() {
		for i := 0; !done.Load(); i++ {
			target := a
			if i%2 == 0 {
				target = b
			}
			if _, err := e.ks.UpdateAlias(t.Context(), &kms.UpdateAliasInput{AliasName: "alias/x", TargetKeyId: target}); err != nil {
				t.Errorf("UpdateAlias err = %v", err)
				return
			}
			flips.Add(1)
		}
	})
	deadline := time.Now().Add(raceWindow())
	for i, at := range attacks {
		res := &results[i]
		for range 3 {
			attackers.Go(func() {
				for time.Now().Before(deadline) {
					res.mu.Lock()
					seen := res.violation != ""
					res.mu.Unlock()
					if seen {
						return
					}
					status, body, ok := e.sendAs(t, "onlya", at.op, at.in)
					if !ok {
						return
					}
					res.tries.Add(1)
					if status != http.StatusOK {
						continue
					}
					res.oks.Add(1)
					if v := at.bad(body); v != "" {
						res.mu.Lock()
						if res.violation == "" {
							res.violation = fmt.Sprintf("%s (after %d tries)", v, res.tries.Load())
						}
						res.mu.Unlock()
					}
				}
			})
		}
	}
	attackers.Wait()
	done.Store(true)
	flipper.Wait()
	t.Logf("%d alias flips in %v", flips.Load(), raceWindow())
	for i, at := range attacks {
		res := &results[i]
		t.Logf("%s: %d tries, %d answered 200", at.name, res.tries.Load(), res.oks.Load())
		if res.violation != "" {
			t.Errorf("REGRESSION: %s: a principal allowed only key A acted on key B through alias/x (the server resolved the alias to authorize, the KMS again to act): %s", at.name, res.violation)
		} else if res.tries.Load() < 10 {
			t.Errorf("%s: the race barely ran: %d tries", at.name, res.tries.Load())
		}
	}
	if flips.Load() < 10 {
		t.Errorf("the race barely ran: %d alias flips", flips.Load())
	}
}

// TestKeyAuthorizerAuditKey: the key ARN keyAuthorizer keeps for the audit
// log is the refused key, else the last one asked about for the first
// action (a read retried against the store after the cache missed asks
// again, and that is the key the operation used).
func TestKeyAuthorizerAuditKey(t *testing.T) {
	key := func(id string) *kms.KeyInfo {
		return &kms.KeyInfo{ID: id, ARN: "arn:aws:kms:us-east-1:111122223333:key/" + id}
	}
	root := &Principal{Name: "root", Root: true}
	fromOnly := &Principal{Name: "app", Allow: []Grant{{Actions: []string{"kms:ReEncryptFrom"}, Keys: []string{"*"}}}}
	for _, c := range []struct {
		name string
		p    *Principal
		asks []kms.AuthzRequest
		want string
	}{
		{"one key", root, []kms.AuthzRequest{{Action: "kms:Decrypt", Key: key("a")}}, "a"},
		{"asked again", root, []kms.AuthzRequest{{Action: "kms:Decrypt", Key: key("a")}, {Action: "kms:Decrypt", Key: key("b")}}, "b"},
		{"ReEncrypt", root, []kms.AuthzRequest{{Action: "kms:ReEncryptFrom", Key: key("a")}, {Action: "kms:ReEncryptTo", Key: key("c")}}, "a"},
		{"ReEncrypt asked again", root, []kms.AuthzRequest{{Action: "kms:ReEncryptFrom", Key: key("a")}, {Action: "kms:ReEncryptTo", Key: key("c")},
			{Action: "kms:ReEncryptFrom", Key: key("b")}, {Action: "kms:ReEncryptTo", Key: key("c")}}, "b"},
		{"no key", root, []kms.AuthzRequest{{Action: "kms:Decrypt"}}, ""},
		{"refused", fromOnly, []kms.AuthzRequest{{Action: "kms:ReEncryptTo", Key: key("c")}, {Action: "kms:ReEncryptFrom", Key: key("a")}}, "c"},
	} {
		a := &keyAuthorizer{p: c.p}
		for i := range c.asks {
			a.Authorize(t.Context(), &c.asks[i])
		}
		want := ""
		if c.want != "" {
			want = key(c.want).ARN
		}
		if a.keyARN != want {
			t.Errorf("%s: audit key %q, want %q", c.name, a.keyARN, want)
		}
	}
}
