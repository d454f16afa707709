package awsapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/keystore"
)

// The test server's region and root principal.
const (
	testRegion     = "us-east-1"
	testRootID     = "EVKTESTROOT000000001"
	testRootSecret = "testRootSecret/0123456789abcdefghijklmnop"
)

var rootCreds = aws.Credentials{AccessKeyID: testRootID, SecretAccessKey: testRootSecret}

// testEnv is a Server over a real keystore in a temporary directory, served
// on loopback, auditing to a log in the same directory. It is served by the
// lean server (Server.Serve), or by net/http (Server.Handler through
// httptest) in the net-http subtests of bothFrontEnds.
type testEnv struct {
	t         *testing.T
	ks        *keystore.Keystore
	srv       *Server
	hs        *testServer
	audit     *AuditLog
	auditPath string
	auditKey  []byte
}

// serverParts is a Server over a keystore of its own, auditing to a log
// beside it: what tests, benchmarks and fuzzers start from.
type serverParts struct {
	ks        *keystore.Keystore
	srv       *Server
	audit     *AuditLog
	auditPath string
	auditKey  []byte
}

// newServerParts makes a Server with the root credentials testRootID and
// testRootSecret over a keystore in a new directory, with an audit log
// there (each line synced if syncAudit); opts adjust the Config before New.
// They are closed when tb's test ends.
func newServerParts(tb testing.TB, syncAudit bool, opts ...func(*Config)) serverParts {
	tb.Helper()
	dir := tb.TempDir()
	ks, err := keystore.Open(context.Background(), dir, keystore.Options{})
	if err != nil {
		tb.Fatalf("keystore.Open(%q) err = %v", dir, err)
	}
	tb.Cleanup(func() { ks.Close() })
	key, _, err := ks.AuditKey(context.Background(), filepath.Join(dir, "audit.key"))
	if err != nil {
		tb.Fatal(err)
	}
	auditPath := filepath.Join(dir, "audit.log")
	audit, err := OpenAuditLog(auditPath, AuditOptions{Key: key, Sync: syncAudit, Marks: ks})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { audit.Close() })
	cfg := Config{Backend: ks, Region: ks.Region(), Root: RootCredentials{AccessKeyID: testRootID, SecretAccessKey: testRootSecret}, Audit: audit}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		tb.Fatalf("New err = %v", err)
	}
	return serverParts{ks: ks, srv: srv, audit: audit, auditPath: auditPath, auditKey: key}
}

// newTestEnv starts a server; opts adjust its Config before New.
func newTestEnv(t *testing.T, opts ...func(*Config)) *testEnv {
	t.Helper()
	p := newServerParts(t, true, opts...)
	hs := startTestServer(t, p.srv)
	t.Cleanup(hs.close)
	return &testEnv{t: t, ks: p.ks, srv: p.srv, hs: hs, audit: p.audit, auditPath: p.auditPath, auditKey: p.auditKey}
}

// frontEndNetHTTP names the subtests of bothFrontEnds served by net/http.
const frontEndNetHTTP = "net-http"

// bothFrontEnds runs test twice: served by the lean server ("lean") and by
// net/http through Server.Handler ("net-http"). Both must give the same
// answers, as they share one request path.
func bothFrontEnds(t *testing.T, test func(t *testing.T)) {
	t.Run("lean", test)
	t.Run(frontEndNetHTTP, test)
}

// testServer is a Server listening on loopback, and a client for it.
type testServer struct {
	URL    string
	client *http.Client
	close  func()
}

// Client returns an HTTP client for the server.
func (ts *testServer) Client() *http.Client { return ts.client }

// startTestServer serves srv on loopback: by net/http if t runs within a
// net-http subtest of bothFrontEnds, else by the lean server.
func startTestServer(t *testing.T, srv *Server) *testServer {
	t.Helper()
	if strings.Contains(t.Name()+"/", "/"+frontEndNetHTTP+"/") {
		hs := httptest.NewServer(srv.Handler())
		return &testServer{URL: hs.URL, client: hs.Client(), close: hs.Close}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tr := &http.Transport{}
	return &testServer{URL: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr}, close: func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown err = %v", err)
		}
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve err = %v, want ErrServerClosed", err)
		}
	}}
}

// signOpts says how to sign a request; zero fields take the defaults (root
// credentials, the server's region, service kms, now).
type signOpts struct {
	creds   *aws.Credentials
	region  string
	service string
	at      time.Time
	// query is appended to the URL before signing.
	query string
	// header is set before signing (and so signed); each value is added.
	header http.Header
	// unsigned leaves the request without Authorization.
	unsigned bool
}

// request builds a KMS request for op with body, signed as opts say.
func (e *testEnv) request(op string, body []byte, opts signOpts) *http.Request {
	e.t.Helper()
	u := e.hs.URL + "/"
	if opts.query != "" {
		u += "?" + opts.query
	}
	r, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if op != "" {
		r.Header.Set("X-Amz-Target", "TrentService."+op)
	}
	for k, vs := range opts.header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	if opts.unsigned {
		return r
	}
	signHTTP(e.t, r, body, opts)
	return r
}

// signHTTP signs r with aws-sdk-go-v2's own SigV4 signer.
func signHTTP(t *testing.T, r *http.Request, body []byte, opts signOpts) {
	t.Helper()
	creds := rootCreds
	if opts.creds != nil {
		creds = *opts.creds
	}
	region, service, at := opts.region, opts.service, opts.at
	if region == "" {
		region = testRegion
	}
	if service == "" {
		service = "kms"
	}
	if at.IsZero() {
		at = time.Now()
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		t.Fatalf("SignHTTP err = %v", err)
	}
}

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (e *testEnv) do(r *http.Request) *response {
	e.t.Helper()
	resp, err := e.hs.Client().Do(r)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	return readBody(e.t, resp)
}

// readBody reads resp's body and closes it.
func readBody(t *testing.T, resp *http.Response) *response {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// call sends op with a JSON body, signed as opts say.
func (e *testEnv) call(op string, body string, opts signOpts) *response {
	e.t.Helper()
	return e.do(e.request(op, []byte(body), opts))
}

// root calls op as root and fails the test unless it succeeds; it decodes
// the answer into out (if not nil).
func (e *testEnv) root(op string, in any, out any) {
	e.t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		e.t.Fatal(err)
	}
	resp := e.call(op, string(b), signOpts{})
	if resp.status != http.StatusOK {
		e.t.Fatalf("%s as root: status %d, body %s", op, resp.status, resp.body)
	}
	if out != nil {
		if err := json.Unmarshal(resp.body, out); err != nil {
			e.t.Fatalf("%s answer %s: %v", op, resp.body, err)
		}
	}
}

// createKey makes a symmetric key (and alias, if not "") as root and
// returns its id.
func (e *testEnv) createKey(alias string) string {
	e.t.Helper()
	var out kms.CreateKeyOutput
	e.root("CreateKey", kms.CreateKeyInput{Description: "test"}, &out)
	if alias != "" {
		e.root("CreateAlias", kms.CreateAliasInput{AliasName: alias, TargetKeyId: out.KeyMetadata.KeyId}, nil)
	}
	return out.KeyMetadata.KeyId
}

// encrypt encrypts plaintext under key as root and returns the blob.
func (e *testEnv) encrypt(key string, plaintext string) []byte {
	e.t.Helper()
	var out kms.EncryptOutput
	e.root("Encrypt", kms.EncryptInput{KeyId: key, Plaintext: []byte(plaintext)}, &out)
	return out.CiphertextBlob
}

// sdk returns an aws-sdk-go-v2 KMS client for the test server.
func (e *testEnv) sdk(creds aws.Credentials) *awskms.Client {
	return awskms.New(awskms.Options{
		BaseEndpoint: aws.String(e.hs.URL),
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   e.hs.Client(),
	})
}

var requestIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// errorCode checks that resp is a well-formed AWS JSON error and returns its
// name.
func errorCode(t *testing.T, resp *response) string {
	t.Helper()
	if resp.status == http.StatusOK {
		t.Fatalf("status 200 (body %s), want an error", resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Errorf("error Content-Type = %q, want application/x-amz-json-1.1", ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(resp.body, &doc); err != nil {
		t.Fatalf("error body %q is not JSON: %v", resp.body, err)
	}
	typ, _ := doc["__type"].(string)
	msg, _ := doc["message"].(string)
	if typ == "" || msg == "" || len(doc) != 2 {
		t.Errorf("error body %s, want exactly {\"__type\": NAME, \"message\": TEXT}", resp.body)
	}
	if h := resp.header.Get("x-amzn-ErrorType"); h != typ {
		t.Errorf("x-amzn-ErrorType = %q, want the body's __type %q", h, typ)
	}
	if id := resp.header.Get("x-amzn-RequestId"); !requestIDRE.MatchString(id) {
		t.Errorf("x-amzn-RequestId = %q, want a UUID", id)
	}
	return typ
}

// wantError checks that resp is the AWS error code.
func wantError(t *testing.T, resp *response, code string) {
	t.Helper()
	if got := errorCode(t, resp); got != code {
		t.Errorf("error %s (%s), want %s", got, resp.body, code)
	}
}

// regression fails a test whose assertion shows a bug that was reported
// and fixed: the message says what used to go wrong.
func regression(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Fatalf("REGRESSION: "+format, args...)
}

func TestRequestIDOnEveryResponse(t *testing.T) { bothFrontEnds(t, testRequestIDOnEveryResponse) }

func testRequestIDOnEveryResponse(t *testing.T) {
	e := newTestEnv(t)
	seen := map[string]bool{}
	for _, tc := range []struct {
		name string
		resp func() *response
	}{
		{"success", func() *response { return e.call("ListKeys", "{}", signOpts{}) }},
		{"kms error", func() *response { return e.call("DescribeKey", `{"KeyId":"alias/none"}`, signOpts{}) }},
		{"auth error", func() *response { return e.call("ListKeys", "{}", signOpts{unsigned: true}) }},
		{"unknown operation", func() *response { return e.call("Frobnicate", "{}", signOpts{}) }},
		{"GET /", func() *response {
			r, _ := http.NewRequest(http.MethodGet, e.hs.URL+"/", nil)
			return e.do(r)
		}},
	} {
		resp := tc.resp()
		id := resp.header.Get("x-amzn-RequestId")
		if !requestIDRE.MatchString(id) {
			t.Errorf("%s: x-amzn-RequestId = %q, want a UUID", tc.name, id)
		}
		if seen[id] {
			t.Errorf("%s: request id %s repeated", tc.name, id)
		}
		seen[id] = true
	}
}

func TestSuccessResponse(t *testing.T) { bothFrontEnds(t, testSuccessResponse) }

func testSuccessResponse(t *testing.T) {
	e := newTestEnv(t)
	resp := e.call("GenerateRandom", `{"NumberOfBytes":32}`, signOpts{})
	if resp.status != http.StatusOK {
		t.Fatalf("GenerateRandom status %d, body %s", resp.status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Errorf("Content-Type = %q, want application/x-amz-json-1.1", ct)
	}
	if h := resp.header.Get("x-amzn-ErrorType"); h != "" {
		t.Errorf("x-amzn-ErrorType = %q on a success", h)
	}
	var out struct{ Plaintext []byte }
	if err := json.Unmarshal(resp.body, &out); err != nil || len(out.Plaintext) != 32 {
		t.Errorf("GenerateRandom answer %s: %d bytes, err %v; want 32 base64 bytes", resp.body, len(out.Plaintext), err)
	}
}

func TestErrorShapes(t *testing.T) { bothFrontEnds(t, testErrorShapes) }

func testErrorShapes(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct {
		name, op, body, code string
		status               int
	}{
		{"not found", "DescribeKey", `{"KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab"}`, "NotFoundException", 400},
		{"alias not found", "Encrypt", `{"KeyId":"alias/none","Plaintext":"aGk="}`, "NotFoundException", 400},
		{"validation", "GenerateRandom", `{"NumberOfBytes":0}`, "ValidationException", 400},
		{"bad arn", "DescribeKey", `{"KeyId":"arn:aws:s3:::bucket/x"}`, "InvalidArnException", 400},
		{"unsupported", "CreateKey", `{"KeySpec":"SM2","KeyUsage":"SIGN_VERIFY"}`, "UnsupportedOperationException", 400},
		{"invalid ciphertext", "Decrypt", `{"CiphertextBlob":"AAECAwQFBgcICQ=="}`, "InvalidCiphertextException", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.call(tc.op, tc.body, signOpts{})
			wantError(t, resp, tc.code)
			if resp.status != tc.status {
				t.Errorf("status %d, want %d", resp.status, tc.status)
			}
		})
	}
}

func TestUnknownOperation(t *testing.T) { bothFrontEnds(t, testUnknownOperation) }

func testUnknownOperation(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct{ name, target string }{
		{"unknown name", "TrentService.Frobnicate"},
		{"wrong case", "TrentService.listKeys"},
		{"other service", "DynamoDB_20120810.ListTables"},
		{"no prefix", "ListKeys"},
		{"empty", ""},
		{"method name", "TrentService.Handler"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.request("", []byte("{}"), signOpts{header: http.Header{"X-Amz-Target": {tc.target}}})
			resp := e.do(r)
			wantError(t, resp, "UnknownOperationException")
			if resp.status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.status)
			}
		})
	}
}

func TestNotTheAPI(t *testing.T) { bothFrontEnds(t, testNotTheAPI) }

func testNotTheAPI(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/"},
		{http.MethodPut, "/"},
		{http.MethodPost, "/keys"},
		{http.MethodGet, "/nothing"},
	} {
		r, err := http.NewRequest(tc.method, e.hs.URL+tc.path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		wantError(t, e.do(r), "UnknownOperationException")
	}
}

func TestBodyLimit(t *testing.T) { bothFrontEnds(t, testBodyLimit) }

func testBodyLimit(t *testing.T) {
	e := newTestEnv(t)
	// A body just over the limit is refused before authentication.
	big := append([]byte(`{"Description":"`), bytes.Repeat([]byte("a"), MaxBodyBytes)...)
	big = append(big, `"}`...)
	for _, signed := range []bool{false, true} {
		resp := e.do(e.request("UpdateKeyDescription", big, signOpts{unsigned: !signed}))
		wantError(t, resp, "ValidationException")
		if !strings.Contains(string(resp.body), "larger than") {
			t.Errorf("body-limit message %s does not say the body is too large", resp.body)
		}
	}
	// One byte under the limit reaches the operation.
	body := []byte(`{"Description":"` + strings.Repeat("a", MaxBodyBytes-len(`{"Description":""}`)) + `"}`)
	if len(body) != MaxBodyBytes {
		t.Fatalf("test body is %d bytes", len(body))
	}
	resp := e.do(e.request("UpdateKeyDescription", body, signOpts{}))
	// No KeyId: the operation itself refuses it, not the body limit.
	if code := errorCode(t, resp); code == "ValidationException" && strings.Contains(string(resp.body), "larger than") {
		t.Errorf("a %d-byte body was refused by the body limit: %s", len(body), resp.body)
	}
}

func TestMalformedJSON(t *testing.T) { bothFrontEnds(t, testMalformedJSON) }

func testMalformedJSON(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct{ name, body string }{
		{"syntax", `{"NumberOfBytes":`},
		{"not an object", `[1,2,3]`},
		{"wrong type", `{"NumberOfBytes":"thirty-two"}`},
		{"blob not base64", `{"CiphertextBlob":"***"}`},
		{"trailing garbage", `{} {}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := "GenerateRandom"
			if strings.Contains(tc.body, "CiphertextBlob") {
				op = "Decrypt"
			}
			resp := e.call(op, tc.body, signOpts{})
			wantError(t, resp, "SerializationException")
			if strings.Contains(string(resp.body), "thirty-two") || strings.Contains(string(resp.body), "***") {
				t.Errorf("the error echoes the request: %s", resp.body)
			}
		})
	}
	// Unsigned malformed requests are refused for the missing signature:
	// nobody learns how the server parses bodies without credentials.
	wantError(t, e.call("GenerateRandom", `{"NumberOfBytes":`, signOpts{unsigned: true}), "MissingAuthenticationToken")
}

func TestHealthz(t *testing.T) { bothFrontEnds(t, testHealthz) }

func testHealthz(t *testing.T) {
	e := newTestEnv(t)
	resp, err := e.hs.Client().Get(e.hs.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\\n\"", resp.StatusCode, b)
	}
}

func TestMetrics(t *testing.T) { bothFrontEnds(t, testMetrics) }

func testMetrics(t *testing.T) {
	e := newTestEnv(t)
	for range 3 {
		e.call("ListKeys", "{}", signOpts{})
	}
	e.call("ListKeys", "{}", signOpts{unsigned: true})
	e.call("DescribeKey", `{"KeyId":"alias/none"}`, signOpts{})
	e.call("Frobnicate", "{}", signOpts{})

	ms := httptest.NewServer(e.srv.MetricsHandler())
	defer ms.Close()
	resp, err := ms.Client().Get(ms.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	text := string(b)
	for _, want := range []string{
		`envelope_kms_requests_total{operation="ListKeys",result="Success"} 3`,
		`envelope_kms_requests_total{operation="ListKeys",result="MissingAuthenticationToken"} 1`,
		`envelope_kms_requests_total{operation="DescribeKey",result="NotFoundException"} 1`,
		`envelope_kms_requests_total{operation="Unknown",result="UnknownOperationException"} 1`,
		`envelope_kms_request_duration_seconds_count{operation="ListKeys"} 4`,
		"go_goroutines",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The unknown target is not a label value (that would let anyone grow
	// the metrics without bound).
	if strings.Contains(text, "Frobnicate") {
		t.Errorf("/metrics holds the unknown target name")
	}
	// Not beside the API: anyone who reaches the API would see them.
	resp, err = e.hs.Client().Get(e.hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || strings.Contains(string(b), "envelope_kms_requests_total") {
		regression(t, "server.go Handler serves /metrics, unauthenticated, on the API's address")
	}
}

// failingBackend answers one operation with an internal error.
type failingBackend struct {
	Backend
}

func (failingBackend) ListKeys(context.Context, *kms.ListKeysInput) (*kms.ListKeysOutput, error) {
	return nil, errors.New("disk on fire at /var/lib/secret-path")
}

func TestInternalError(t *testing.T) { bothFrontEnds(t, testInternalError) }

func testInternalError(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Backend = failingBackend{c.Backend} })
	resp := e.call("ListKeys", "{}", signOpts{})
	wantError(t, resp, "KMSInternalException")
	if resp.status != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.status)
	}
	if strings.Contains(string(resp.body), "secret-path") {
		t.Errorf("the internal error leaks its cause: %s", resp.body)
	}
	if id := resp.header.Get("x-amzn-RequestId"); !strings.Contains(string(resp.body), id) {
		t.Errorf("the internal error %s does not name the request id %s", resp.body, id)
	}
}

func TestInsecureDev(t *testing.T) { bothFrontEnds(t, testInsecureDev) }

func testInsecureDev(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.InsecureDev = true })
	resp := e.call("ListKeys", "{}", signOpts{unsigned: true})
	if resp.status != http.StatusOK {
		t.Fatalf("unsigned ListKeys with InsecureDev: %d %s", resp.status, resp.body)
	}
	// A signature that is present is still checked.
	bad := aws.Credentials{AccessKeyID: testRootID, SecretAccessKey: "wrong"}
	wantError(t, e.call("ListKeys", "{}", signOpts{creds: &bad}), "InvalidSignatureException")

	// Without InsecureDev, unsigned requests are refused.
	e2 := newTestEnv(t)
	wantError(t, e2.call("ListKeys", "{}", signOpts{unsigned: true}), "MissingAuthenticationToken")
}

// TestSDKInProcess runs the official SDK client against the handler: its
// serializer, signer and error deserializer meet ours.
func TestSDKInProcess(t *testing.T) { bothFrontEnds(t, testSDKInProcess) }

func testSDKInProcess(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.sdk(rootCreds)
	ck, err := c.CreateKey(ctx, &awskms.CreateKeyInput{Description: aws.String("sdk")})
	if err != nil {
		t.Fatalf("CreateKey err = %v", err)
	}
	if ck.KeyMetadata.KeyState != types.KeyStateEnabled || ck.KeyMetadata.KeySpec != types.KeySpecSymmetricDefault {
		t.Errorf("CreateKey metadata = %+v", ck.KeyMetadata)
	}
	if d := time.Since(aws.ToTime(ck.KeyMetadata.CreationDate)); d < -time.Minute || d > time.Minute {
		t.Errorf("CreationDate %v is not now", ck.KeyMetadata.CreationDate)
	}
	ec := map[string]string{"purpose": "test", "tenant": "t1"}
	enc, err := c.Encrypt(ctx, &awskms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte("hello"), EncryptionContext: ec})
	if err != nil {
		t.Fatalf("Encrypt err = %v", err)
	}
	dec, err := c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
	if err != nil || string(dec.Plaintext) != "hello" {
		t.Fatalf("Decrypt = %q, %v; want \"hello\"", dec.Plaintext, err)
	}
	_, err = c.Decrypt(ctx, &awskms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "test"}})
	var ic *types.InvalidCiphertextException
	if !errors.As(err, &ic) {
		t.Errorf("Decrypt with another context err = %v, want InvalidCiphertextException", err)
	}
	_, err = e.sdk(aws.Credentials{AccessKeyID: "AKIDNOBODY0000000000", SecretAccessKey: "x"}).ListKeys(ctx, &awskms.ListKeysInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnrecognizedClientException" {
		t.Errorf("ListKeys with an unknown access key err = %v, want UnrecognizedClientException", err)
	}

	// Every event is in the audit log, which verifies.
	f, err := os.Open(e.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := VerifyAudit(f, e.auditKey)
	if err != nil || n != 6 {
		t.Errorf("VerifyAudit = %d, %v; want 6 lines (a start record and 5 requests), nil", n, err)
	}
}

// TestAuditEventsFromServer checks what the server records for a request:
// who, what, which key, the context keys (not values) and the outcome.
func TestAuditEventsFromServer(t *testing.T) { bothFrontEnds(t, testAuditEventsFromServer) }

func testAuditEventsFromServer(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.Principals = []*Principal{{Name: "app", AccessKeyID: "AKIDAPP0000000000001", SecretAccessKey: "appsecret",
			Allow: []Grant{{Actions: []string{"kms:Encrypt"}, Keys: []string{"alias/app"}}}}}
	})
	id := e.createKey("alias/app")
	app := aws.Credentials{AccessKeyID: "AKIDAPP0000000000001", SecretAccessKey: "appsecret"}
	ok := e.call("Encrypt", `{"KeyId":"alias/app","Plaintext":"c2VjcmV0LXBsYWludGV4dA==","EncryptionContext":{"tenant":"secret-tenant-value","a":"b"}}`, signOpts{creds: &app})
	if ok.status != http.StatusOK {
		t.Fatalf("Encrypt as app: %d %s", ok.status, ok.body)
	}
	denied := e.call("GenerateRandom", `{"NumberOfBytes":8}`, signOpts{creds: &app})
	wantError(t, denied, "AccessDeniedException")
	unsigned := e.call("ListKeys", `{}`, signOpts{unsigned: true})
	wantError(t, unsigned, "MissingAuthenticationToken")

	events := readAuditEvents(t, e.auditPath)
	byID := map[string]AuditEvent{}
	for _, ev := range events {
		byID[ev.RequestID] = ev
	}
	enc := byID[ok.header.Get("x-amzn-RequestId")]
	want := AuditEvent{Principal: "app", SourceAddress: "127.0.0.1", Operation: "Encrypt",
		KeyARN: e.ks.KeyARN(id), EncryptionContextKeys: []string{"a", "tenant"}, Result: "Success"}
	if enc.Principal != want.Principal || enc.SourceAddress != want.SourceAddress || enc.Operation != want.Operation ||
		enc.KeyARN != want.KeyARN || strings.Join(enc.EncryptionContextKeys, ",") != "a,tenant" || enc.Result != want.Result {
		t.Errorf("Encrypt audit event = %+v, want %+v", enc, want)
	}
	if _, err := time.Parse(time.RFC3339Nano, enc.Time); err != nil {
		t.Errorf("audit time %q: %v", enc.Time, err)
	}
	if ev := byID[denied.header.Get("x-amzn-RequestId")]; ev.Principal != "app" || ev.Operation != "GenerateRandom" || ev.Result != "AccessDeniedException" {
		t.Errorf("denied GenerateRandom audit event = %+v", ev)
	}
	if ev := byID[unsigned.header.Get("x-amzn-RequestId")]; ev.Principal != "-" || ev.Operation != "ListKeys" || ev.Result != "MissingAuthenticationToken" {
		t.Errorf("unsigned ListKeys audit event = %+v", ev)
	}
	raw, err := os.ReadFile(e.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"secret-tenant-value", "c2VjcmV0LXBsYWludGV4dA", "secret-plaintext", "appsecret", testRootSecret} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the audit log holds %q", secret)
		}
	}
	if st, err := os.Stat(e.auditPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
}

// readAuditEvents decodes every line of an audit log.
func readAuditEvents(t *testing.T, path string) []AuditEvent {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []AuditEvent
	for i, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		if line == "" {
			continue
		}
		var ev AuditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %d %q: %v", i+1, line, err)
		}
		events = append(events, ev)
	}
	return events
}

// TestAuditKeyARN: the audit log's keyArn names the key a request acted on
// as its ARN, however the caller named the key, so that an auditor can find
// every event of a key.
func TestAuditKeyARN(t *testing.T) { bothFrontEnds(t, testAuditKeyARN) }

func testAuditKeyARN(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.Principals = []*Principal{{Name: "app", AccessKeyID: "AKIDAPP0000000000001", SecretAccessKey: "appsecret"}}
	})
	id := e.createKey("alias/app")
	blob := e.encrypt(id, "x")
	arn := e.ks.KeyARN(id)
	app := aws.Credentials{AccessKeyID: "AKIDAPP0000000000001", SecretAccessKey: "appsecret"}
	for _, tc := range []struct {
		name, op, body string
		creds          *aws.Credentials
	}{
		{"Encrypt by alias", "Encrypt", `{"KeyId":"alias/app","Plaintext":"eA=="}`, nil},
		{"DescribeKey by alias", "DescribeKey", `{"KeyId":"alias/app"}`, nil},
		{"DisableKey by alias", "DisableKey", `{"KeyId":"alias/app"}`, nil},
		{"EnableKey by id", "EnableKey", `{"KeyId":"` + id + `"}`, nil},
		{"TagResource by id", "TagResource", `{"KeyId":"` + id + `","Tags":[{"TagKey":"a","TagValue":"b"}]}`, nil},
		{"denied Encrypt by alias", "Encrypt", `{"KeyId":"alias/app","Plaintext":"eA=="}`, &app},
		{"denied Decrypt naming no key", "Decrypt", `{"CiphertextBlob":"` + base64.StdEncoding.EncodeToString(blob) + `"}`, &app},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.call(tc.op, tc.body, signOpts{creds: tc.creds})
			reqID := resp.header.Get("x-amzn-RequestId")
			var ev *AuditEvent
			for _, x := range readAuditEvents(t, e.auditPath) {
				if x.RequestID == reqID {
					ev = &x
				}
			}
			if ev == nil {
				t.Fatalf("request %s is not in the audit log", reqID)
			}
			if ev.KeyARN != arn {
				regression(t, "server.go/ops.go record the key as the caller named it (or not at all) when the operation has no key ARN in its output or fails: %s audit keyArn = %q, want %q", tc.name, ev.KeyARN, arn)
			}
		})
	}
}

// TestJSONMemberNames: AWS JSON member names are case-sensitive; Go's
// encoding/json matches them case-insensitively and lets the last of
// several spellings win.
func TestJSONMemberNames(t *testing.T) { bothFrontEnds(t, testJSONMemberNames) }

func testJSONMemberNames(t *testing.T) {
	e := newTestEnv(t)
	id := e.createKey("")
	resp := e.call("DescribeKey", `{"keyid":"`+id+`"}`, signOpts{})
	if resp.status == http.StatusOK {
		t.Fatalf("ops.go decodes request members case-insensitively (encoding/json): {\"keyid\": ...} is taken as KeyId; AWS would answer ValidationException (KeyId missing)")
	}
	wantError(t, resp, "ValidationException")
}

// TestJSONMemberNamesEscaped: a member name spelled with escapes is the
// name it decodes to, so "\u006beyId" is keyId, a miscased KeyId, and is
// refused like it; an escaped but exact KeyId is KeyId.
func TestJSONMemberNamesEscaped(t *testing.T) {
	e := newTestEnv(t)
	id := e.createKey("")
	resp := e.call("DescribeKey", `{"KeyId":"`+id+`","\u006beyId":"alias/other"}`, signOpts{})
	wantError(t, resp, "ValidationException")
	if !strings.Contains(string(resp.body), "case-sensitive") {
		t.Errorf("escaped miscased member: %s, want the case-sensitivity refusal", resp.body)
	}
	resp = e.call("DescribeKey", `{"\u004beyId":"`+id+`"}`, signOpts{})
	if resp.status != http.StatusOK {
		t.Errorf("escaped exact member name: %d %s, want 200", resp.status, resp.body)
	}
}
