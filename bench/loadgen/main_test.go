package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/envelopekms/envelope/bench/internal/proc"
)

const (
	testAKID   = "AKIDEXAMPLE0000000001"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"
)

// sdkAuthorization signs the request our signer describes with the AWS
// SDK's v4 signer.
func sdkAuthorization(t testing.TB, host, target string, body []byte, at time.Time) string {
	req, _ := http.NewRequest("POST", "http://"+host+"/", nil)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Amz-Target", target)
	sum := sha256.Sum256(body)
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret},
		req, hex.EncodeToString(sum[:]), "kms", testRegion, at)
	if err != nil {
		t.Fatal(err)
	}
	return req.Header.Get("Authorization")
}

func TestSignerMatchesSDK(t *testing.T) {
	s := newSigner(testAKID, testSecret, testRegion, "127.0.0.1:8500")
	at := time.Date(2026, 2, 28, 23, 59, 59, 0, time.UTC)
	for i, body := range [][]byte{[]byte(`{"KeyId":"alias/bench","NumberOfBytes":32}`), nil, []byte(`{"CiphertextBlob":"AAAA"}`)} {
		// Twice, and across a day boundary, to exercise the key cache.
		for _, when := range []time.Time{at, at, at.Add(2 * time.Second)} {
			got := s.authorization(when.Format(amzDateLayout), "TrentService.Decrypt", body)
			if want := sdkAuthorization(t, "127.0.0.1:8500", "TrentService.Decrypt", body, when); got != want {
				t.Fatalf("case %d at %v:\n got %s\nwant %s", i, when, got, want)
			}
		}
	}
}

func TestRequestBytes(t *testing.T) {
	s := newSigner(testAKID, testSecret, testRegion, "example.test:80")
	body := []byte(`{"a":1}`)
	raw := s.request(nil, time.Now(), "TrentService.GenerateDataKey", body)
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(req.Body)
	if req.Method != "POST" || req.Host != "example.test:80" || !bytes.Equal(got, body) ||
		req.Header.Get("X-Amz-Target") != "TrentService.GenerateDataKey" || !strings.HasPrefix(req.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		t.Fatalf("bad request: %q", raw)
	}
}

func TestJSONString(t *testing.T) {
	b := []byte(`{"CiphertextBlob": "QUJD+/==", "KeyId":"arn:aws:kms:us-east-1:1:key/x","Plaintext":"a\/b"}`)
	for name, want := range map[string]string{"CiphertextBlob": "QUJD+/==", "KeyId": "arn:aws:kms:us-east-1:1:key/x", "Plaintext": "a/b"} {
		if got, ok := jsonString(b, name); !ok || string(got) != want {
			t.Errorf("%s: got %q %v, want %q", name, got, ok, want)
		}
	}
	if _, ok := jsonString(b, "Missing"); ok {
		t.Error("found a missing member")
	}
}

// fakeKMS is a tiny KMS: GenerateDataKey and Decrypt, SigV4 checked against
// the SDK's signer.
type fakeKMS struct {
	t        testing.TB
	mu       sync.Mutex
	keys     map[string][]byte
	failEach int64 // fail every failEach-th request (0: never)
	n        atomic.Int64
}

func (f *fakeKMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	target := r.Header.Get("X-Amz-Target")
	at, err := time.Parse(amzDateLayout, r.Header.Get("X-Amz-Date"))
	if err != nil || time.Since(at) > 15*time.Minute {
		http.Error(w, `{"__type":"RequestExpired"}`, 400)
		return
	}
	if r.Header.Get("Authorization") != sdkAuthorization(f.t, r.Host, target, body, at) {
		http.Error(w, `{"__type":"InvalidSignatureException"}`, 400)
		return
	}
	if n := f.n.Add(1); f.failEach > 0 && n%f.failEach == 0 {
		http.Error(w, `{"__type":"KMSInternalException"}`, 500)
		return
	}
	var in struct {
		KeyId             string
		NumberOfBytes     int
		CiphertextBlob    []byte
		EncryptionContext map[string]string
	}
	if err := json.Unmarshal(body, &in); err != nil || in.EncryptionContext["purpose"] != "bench" {
		http.Error(w, `{"__type":"ValidationException"}`, 400)
		return
	}
	w.Header().Set("Content-Type", contentType)
	const arn = "arn:aws:kms:us-east-1:111122223333:key/0000"
	switch target {
	case "TrentService.GenerateDataKey":
		pt, id := make([]byte, in.NumberOfBytes), make([]byte, 16)
		rand.Read(pt)
		rand.Read(id)
		f.mu.Lock()
		f.keys[string(id)] = pt
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"CiphertextBlob": id, "KeyId": arn, "Plaintext": pt})
	case "TrentService.Decrypt":
		f.mu.Lock()
		pt, ok := f.keys[string(in.CiphertextBlob)]
		f.mu.Unlock()
		if !ok || in.KeyId != arn {
			http.Error(w, `{"__type":"InvalidCiphertextException"}`, 400)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"KeyId": arn, "Plaintext": base64.StdEncoding.EncodeToString(pt), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
	default:
		http.Error(w, `{"__type":"UnknownOperationException"}`, 400)
	}
}

func testConfig(url string) Config {
	return Config{URL: url, KeyID: "alias/bench", Clients: 4, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond,
		Resign: 100 * time.Millisecond, Region: testRegion, AccessKeyID: testAKID, Secret: testSecret, Context: `{"purpose":"bench"}`,
		ServerPID: os.Getpid()}
}

func TestRun(t *testing.T) {
	f := &fakeKMS{t: t, keys: map[string][]byte{}}
	srv := httptest.NewUnstartedServer(f)
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := testConfig(srv.URL)
	r, err := Run(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r.Summary())
	if r.Errors != 0 || r.Pairs == 0 {
		t.Fatalf("errors %d (%s), pairs %d", r.Errors, r.FirstError, r.Pairs)
	}
	if !(r.PairP50 > 0 && r.PairP50 <= r.PairP90 && r.PairP90 <= r.PairP99 && r.PairP99 <= r.PairP999) {
		t.Errorf("percentiles out of order: %+v", r)
	}
	if r.ServerRSSKB == 0 || r.ClientCPUS <= 0 {
		t.Errorf("no server RSS or client CPU: %+v", r)
	}
	// Keep-alive: one connection per client (and one for the first pair),
	// not one per request.
	if got := conns.Load(); got != int64(c.Clients)+1 {
		t.Errorf("%d connections for %d clients", got, c.Clients)
	}
}

func TestRunCountsErrors(t *testing.T) {
	f := &fakeKMS{t: t, keys: map[string][]byte{}, failEach: 7}
	srv := httptest.NewServer(f)
	defer srv.Close()
	r, err := Run(testConfig(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors == 0 || !strings.Contains(r.FirstError, "HTTP 500") {
		t.Fatalf("errors %d, first %q", r.Errors, r.FirstError)
	}
}

func TestRunRefusesBadSignature(t *testing.T) {
	f := &fakeKMS{t: t, keys: map[string][]byte{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := testConfig(srv.URL)
	c.Secret = "wrong"
	if _, err := Run(c); err == nil || !strings.Contains(err.Error(), "InvalidSignature") {
		t.Fatalf("got %v, want a first-request signature failure", err)
	}
}

func TestProcCPU(t *testing.T) {
	// Burn a little CPU so the counter moves.
	end := time.Now().Add(30 * time.Millisecond)
	for time.Now().Before(end) {
	}
	d, err := proc.CPU(os.Getpid())
	if err != nil || d <= 0 {
		t.Fatalf("procCPU: %v %v", d, err)
	}
}
