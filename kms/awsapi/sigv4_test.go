package awsapi

import (
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestSigV4AcceptsSDKSignatures sends requests signed by aws-sdk-go-v2's
// own signer, with the canonicalization cases a client may produce.
func TestSigV4AcceptsSDKSignatures(t *testing.T) { bothFrontEnds(t, testSigV4AcceptsSDKSignatures) }

func testSigV4AcceptsSDKSignatures(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct {
		name string
		opts signOpts
	}{
		{"plain", signOpts{}},
		{"extra signed headers", signOpts{header: http.Header{
			"X-Amz-Meta-Trace": {"abc"},
			"X-Custom-Header":  {"value"},
			"Amz-Sdk-Request":  {"attempt=1; max=3"},
		}}},
		{"header value whitespace", signOpts{header: http.Header{
			"X-Custom-Header": {"  leading, trailing  and   inner   spaces  "},
		}}},
		{"header with several values", signOpts{header: http.Header{
			"X-Custom-Header": {"first", " second  value ", "third"},
		}}},
		{"upper-case header name", signOpts{header: http.Header{"X-UPPER": {"V"}}}},
		{"query string", signOpts{query: "b=2&a=1&a=0&c=x%20y&d=%2F%7E&e"}},
		{"14 minutes old", signOpts{at: time.Now().Add(-14 * time.Minute)}},
		{"14 minutes ahead", signOpts{at: time.Now().Add(14 * time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.request("ListKeys", []byte("{}"), tc.opts)
			for name := range tc.opts.header {
				if !strings.Contains(authValue(r, "SignedHeaders"), strings.ToLower(name)) {
					t.Fatalf("the SDK did not sign %s: %s", name, r.Header.Get("Authorization"))
				}
			}
			resp := e.do(r)
			if resp.status != http.StatusOK {
				t.Fatalf("ListKeys signed with %s: status %d, body %s", tc.name, resp.status, resp.body)
			}
		})
	}
	t.Run("content-length not signed", func(t *testing.T) {
		// The SDK does not sign Content-Length for an empty body.
		r := e.request("ListKeys", nil, signOpts{})
		if a := r.Header.Get("Authorization"); strings.Contains(a, "content-length") {
			t.Fatalf("the SDK signed content-length of an empty body: %s", a)
		}
		if resp := e.do(r); resp.status != http.StatusOK {
			t.Fatalf("empty-body ListKeys: status %d, body %s", resp.status, resp.body)
		}
	})
}

// TestSigV4QueryOrder signs a query whose parameter names share a prefix.
// SigV4 sorts parameters by name, then value: "a=1&a1=2". Sorting the
// joined "name=value" strings gives "a1=2&a=1" instead ('1' < '=').
func TestSigV4QueryOrder(t *testing.T) { bothFrontEnds(t, testSigV4QueryOrder) }

func testSigV4QueryOrder(t *testing.T) {
	e := newTestEnv(t)
	resp := e.call("ListKeys", "{}", signOpts{query: "a1=2&a=1&a-b=3"})
	if resp.status != http.StatusOK {
		if errorCode(t, resp) == CodeInvalidSignature {
			regression(t, "sigv4.go canonicalQuery sorts joined \"name=value\" pairs instead of names then values; a query with names a, a-b, a1 signed by aws-sdk-go-v2 is refused: %s", resp.body)
		}
		t.Fatalf("ListKeys with query a1, a, a-b: status %d, body %s", resp.status, resp.body)
	}
}

// authField replaces one field (Credential, SignedHeaders, Signature) of a
// signed request's Authorization header.
func authField(r *http.Request, field, value string) {
	re := regexp.MustCompile(field + `=[^,]*`)
	r.Header.Set("Authorization", re.ReplaceAllString(r.Header.Get("Authorization"), field+"="+value))
}

func authValue(r *http.Request, field string) string {
	m := regexp.MustCompile(field + `=([^,]*)`).FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return ""
	}
	return m[1]
}

func TestSigV4Failures(t *testing.T) { bothFrontEnds(t, testSigV4Failures) }

func testSigV4Failures(t *testing.T) {
	e := newTestEnv(t)
	other := aws.Credentials{AccessKeyID: testRootID, SecretAccessKey: "not-the-secret"}
	unknown := aws.Credentials{AccessKeyID: "AKIDUNKNOWN000000000", SecretAccessKey: testRootSecret}
	body := []byte(`{"NumberOfBytes":16}`)
	for _, tc := range []struct {
		name string
		opts signOpts
		// edit changes the signed request before it is sent.
		edit func(r *http.Request)
		// body replaces the signed body when not nil.
		body []byte
		code string
	}{
		{name: "unsigned", opts: signOpts{unsigned: true}, code: CodeMissingAuthenticationToken},
		{name: "empty Authorization", edit: func(r *http.Request) { r.Header.Set("Authorization", "") }, code: CodeMissingAuthenticationToken},
		{name: "other scheme", edit: func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, code: CodeIncompleteSignature},
		{name: "SigV2-style", edit: func(r *http.Request) { r.Header.Set("Authorization", "AWS "+testRootID+":c2lnbmF0dXJl") }, code: CodeIncompleteSignature},
		{name: "algorithm only", edit: func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256") }, code: CodeIncompleteSignature},
		{name: "no Signature", edit: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:strings.Index(a, ", Signature=")])
		}, code: CodeIncompleteSignature},
		{name: "no SignedHeaders", edit: func(r *http.Request) {
			r.Header.Set("Authorization", regexp.MustCompile(`SignedHeaders=[^,]*, `).ReplaceAllString(r.Header.Get("Authorization"), ""))
		}, code: CodeIncompleteSignature},
		{name: "short Credential", edit: func(r *http.Request) {
			authField(r, "Credential", strings.TrimSuffix(authValue(r, "Credential"), "/aws4_request"))
		}, code: CodeIncompleteSignature},
		{name: "Credential not ending in aws4_request", edit: func(r *http.Request) {
			authField(r, "Credential", strings.Replace(authValue(r, "Credential"), "aws4_request", "aws5_request", 1))
		}, code: CodeIncompleteSignature},
		{name: "unsorted SignedHeaders", edit: func(r *http.Request) {
			hs := strings.Split(authValue(r, "SignedHeaders"), ";")
			for i, j := 0, len(hs)-1; i < j; i, j = i+1, j-1 {
				hs[i], hs[j] = hs[j], hs[i]
			}
			authField(r, "SignedHeaders", strings.Join(hs, ";"))
		}, code: CodeIncompleteSignature},
		{name: "upper-case SignedHeaders", edit: func(r *http.Request) {
			authField(r, "SignedHeaders", strings.ToUpper(authValue(r, "SignedHeaders")))
		}, code: CodeIncompleteSignature},
		{name: "host not signed", edit: func(r *http.Request) {
			authField(r, "SignedHeaders", strings.Replace(authValue(r, "SignedHeaders"), "host;", "", 1))
		}, code: CodeIncompleteSignature},
		{name: "signature not hex", edit: func(r *http.Request) { authField(r, "Signature", strings.Repeat("zz", 32)) }, code: CodeIncompleteSignature},
		{name: "signature too short", edit: func(r *http.Request) { authField(r, "Signature", authValue(r, "Signature")[:62]) }, code: CodeIncompleteSignature},
		{name: "missing X-Amz-Date", edit: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, code: CodeIncompleteSignature},
		{name: "malformed X-Amz-Date", edit: func(r *http.Request) {
			r.Header.Set("X-Amz-Date", time.Now().UTC().Format(time.RFC1123))
		}, code: CodeIncompleteSignature},

		{name: "wrong secret", opts: signOpts{creds: &other}, code: CodeInvalidSignature},
		{name: "body altered after signing", body: []byte(`{"NumberOfBytes":17}`), code: CodeInvalidSignature},
		{name: "body extended after signing", body: []byte(`{"NumberOfBytes":16} `), code: CodeInvalidSignature},
		{name: "operation changed after signing", edit: func(r *http.Request) {
			r.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		}, code: CodeInvalidSignature},
		{name: "signed header changed", opts: signOpts{header: http.Header{"X-Custom": {"a"}}}, edit: func(r *http.Request) {
			r.Header.Set("X-Custom", "b")
		}, code: CodeInvalidSignature},
		{name: "signed header removed", opts: signOpts{header: http.Header{"X-Custom": {"a"}}}, edit: func(r *http.Request) {
			r.Header.Del("X-Custom")
		}, code: CodeInvalidSignature},
		{name: "query added after signing", edit: func(r *http.Request) { r.URL.RawQuery = "x=1" }, code: CodeInvalidSignature},
		{name: "X-Amz-Date changed after signing", edit: func(r *http.Request) {
			d, _ := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
			r.Header.Set("X-Amz-Date", d.Add(time.Second).Format("20060102T150405Z"))
		}, code: CodeInvalidSignature},
		{name: "wrong region", opts: signOpts{region: "eu-west-1"}, code: CodeInvalidSignature},
		{name: "wrong service", opts: signOpts{service: "s3"}, code: CodeInvalidSignature},
		{name: "wrong scope date", edit: func(r *http.Request) {
			c := strings.Split(authValue(r, "Credential"), "/")
			d, _ := time.Parse("20060102", c[1])
			c[1] = d.AddDate(0, 0, -1).Format("20060102")
			authField(r, "Credential", strings.Join(c, "/"))
		}, code: CodeInvalidSignature},
		{name: "signature of another request", edit: func(r *http.Request) {
			other := e.request("GenerateRandom", []byte(`{"NumberOfBytes":32}`), signOpts{})
			authField(r, "Signature", authValue(other, "Signature"))
		}, code: CodeInvalidSignature},

		{name: "unknown access key", opts: signOpts{creds: &unknown}, code: CodeUnrecognizedClient},
		{name: "16 minutes old", opts: signOpts{at: time.Now().Add(-16 * time.Minute)}, code: CodeRequestExpired},
		{name: "16 minutes ahead", opts: signOpts{at: time.Now().Add(16 * time.Minute)}, code: CodeRequestExpired},
		{name: "a day old", opts: signOpts{at: time.Now().Add(-24 * time.Hour)}, code: CodeRequestExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.request("GenerateRandom", body, tc.opts)
			if tc.body != nil {
				r = rebody(t, r, tc.body)
			}
			if tc.edit != nil {
				tc.edit(r)
			}
			resp := e.do(r)
			wantError(t, resp, tc.code)
		})
	}
}

// rebody returns r with another body (and Content-Length), keeping its
// headers, signature included.
func rebody(t *testing.T, r *http.Request, body []byte) *http.Request {
	t.Helper()
	n, err := http.NewRequest(r.Method, r.URL.String(), strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	n.Header = r.Header.Clone()
	return n
}

// TestSigV4ServerClock moves the server's clock (Config.Now) rather than
// the signer's.
func TestSigV4ServerClock(t *testing.T) { bothFrontEnds(t, testSigV4ServerClock) }

func testSigV4ServerClock(t *testing.T) {
	for _, tc := range []struct {
		name string
		skew time.Duration
		code string
	}{
		{"server 16 minutes ahead", 16 * time.Minute, CodeRequestExpired},
		{"server 16 minutes behind", -16 * time.Minute, CodeRequestExpired},
		{"server 15 minutes ahead", 15*time.Minute - time.Second, ""},
		{"server 15 minutes behind", -15*time.Minute + time.Second, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			e := newTestEnv(t, func(c *Config) { c.Now = func() time.Time { return at.Add(tc.skew) } })
			resp := e.call("ListKeys", "{}", signOpts{at: at})
			if tc.code == "" {
				if resp.status != http.StatusOK {
					t.Fatalf("signed %v from the server's clock: status %d, body %s", -tc.skew, resp.status, resp.body)
				}
				return
			}
			wantError(t, resp, tc.code)
		})
	}
}

// TestSigV4Principals checks that each principal's own secret signs, and no
// other's.
func TestSigV4Principals(t *testing.T) { bothFrontEnds(t, testSigV4Principals) }

func testSigV4Principals(t *testing.T) {
	app := &Principal{Name: "app", AccessKeyID: "AKIDAPP0000000000001", SecretAccessKey: "app-secret",
		Allow: []Grant{{Actions: []string{"kms:ListKeys"}, Keys: []string{"*"}}}}
	e := newTestEnv(t, func(c *Config) { c.Principals = []*Principal{app} })
	good := aws.Credentials{AccessKeyID: app.AccessKeyID, SecretAccessKey: app.SecretAccessKey}
	if resp := e.call("ListKeys", "{}", signOpts{creds: &good}); resp.status != http.StatusOK {
		t.Fatalf("ListKeys as app: %d %s", resp.status, resp.body)
	}
	rootSecret := aws.Credentials{AccessKeyID: app.AccessKeyID, SecretAccessKey: testRootSecret}
	wantError(t, e.call("ListKeys", "{}", signOpts{creds: &rootSecret}), CodeInvalidSignature)
	appSecret := aws.Credentials{AccessKeyID: testRootID, SecretAccessKey: app.SecretAccessKey}
	wantError(t, e.call("ListKeys", "{}", signOpts{creds: &appSecret}), CodeInvalidSignature)
}

// TestSigningKeyVector checks the key derivation against the example in
// AWS's SigV4 documentation.
func TestSigningKeyVector(t *testing.T) {
	k := signingKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
	const want = "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
	if got := hex.EncodeToString(k); got != want {
		t.Errorf("signingKey = %s, want %s", got, want)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	e := newTestEnv(t)
	root := RootCredentials{AccessKeyID: testRootID, SecretAccessKey: testRootSecret}
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no backend", Config{Region: testRegion, Root: root}},
		{"no region", Config{Backend: e.ks, Root: root}},
		{"no root secret", Config{Backend: e.ks, Region: testRegion, Root: RootCredentials{AccessKeyID: testRootID}}},
		{"principal with root's key", Config{Backend: e.ks, Region: testRegion, Root: root,
			Principals: []*Principal{{Name: "x", AccessKeyID: testRootID, SecretAccessKey: "s"}}}},
	} {
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("New with %s: err = nil, want an error", tc.name)
		}
	}
}

// TestSigV4TargetMustBeSigned: X-Amz-Target chooses the operation, so a
// signature that does not cover it could be replayed, within the 15
// minutes, as another operation with the same body. AWS's SDKs always sign
// it; a server can require it at no cost to them.
func TestSigV4TargetMustBeSigned(t *testing.T) { bothFrontEnds(t, testSigV4TargetMustBeSigned) }

func testSigV4TargetMustBeSigned(t *testing.T) {
	e := newTestEnv(t)
	id := e.createKey("")
	// A body made for DescribeKey, signed without X-Amz-Target...
	body := []byte(`{"KeyId":"` + id + `"}`)
	r := e.request("", body, signOpts{})
	if strings.Contains(authValue(r, "SignedHeaders"), "x-amz-target") {
		t.Fatal("the target was signed")
	}
	// ... and sent as DisableKey.
	r.Header.Set("X-Amz-Target", "TrentService.DisableKey")
	resp := e.do(r)
	if resp.status == http.StatusOK {
		t.Fatalf("hardening gap in sigv4.go parseAuthorization: SignedHeaders need not include x-amz-target, so a request signed over host;x-amz-date (and the body) can be replayed as any operation taking that body; here a DescribeKey body ran as DisableKey")
	}
	wantError(t, resp, CodeIncompleteSignature)
}
