package awsclient_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKMS is a small AWS-KMS-API server: it checks the AWS JSON 1.1
// framing and the SigV4 signature of every request, records it, and answers
// with what the test's reply function returns ({} by default).
type fakeKMS struct {
	*httptest.Server
	secrets map[string]string // access key id → secret

	mu    sync.Mutex
	reqs  []fakeRequest
	reply func(op string, body map[string]any) fakeReply
}

// fakeRequest is a request as the fake received it.
type fakeRequest struct {
	Op     string
	Header http.Header
	Body   map[string]any // the decoded JSON body
	Region string         // of the signature's credential scope
}

// fakeReply is an HTTP response of the fake.
type fakeReply struct {
	Status int
	Header map[string]string
	Body   string
}

// ok returns a 200 response with v encoded as JSON.
func ok(v any) fakeReply {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return fakeReply{Status: 200, Body: string(b)}
}

// awsError returns an AWS JSON 1.1 error response, with the error type in
// the body and the x-amzn-ErrorType header.
func awsError(status int, code, message string) fakeReply {
	body, _ := json.Marshal(map[string]string{"__type": code, "message": message})
	return fakeReply{Status: status, Header: map[string]string{"x-amzn-ErrorType": code}, Body: string(body)}
}

func newFakeKMS(t *testing.T) *fakeKMS {
	t.Helper()
	f := &fakeKMS{secrets: map[string]string{"AKID": "SECRET"}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// newFakeKMSTLS is newFakeKMS over HTTPS, with a certificate of its own.
func newFakeKMSTLS(t *testing.T) *fakeKMS {
	t.Helper()
	f := &fakeKMS{secrets: map[string]string{"AKID": "SECRET"}}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// setReply sets how the fake answers.
func (f *fakeKMS) setReply(fn func(op string, body map[string]any) fakeReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply = fn
}

// last returns the last request received, failing the test if none was.
func (f *fakeKMS) last(t *testing.T) fakeRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("the fake KMS received no request")
	}
	return f.reqs[len(f.reqs)-1]
}

// count returns the number of requests received.
func (f *fakeKMS) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func (f *fakeKMS) serve(w http.ResponseWriter, r *http.Request) {
	write := func(rep fakeReply) {
		for k, v := range rep.Header {
			w.Header().Set(k, v)
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		}
		w.WriteHeader(rep.Status)
		io.WriteString(w, rep.Body)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		write(awsError(400, "ValidationException", "cannot read the body"))
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, found := strings.CutPrefix(target, "TrentService.")
	switch {
	case r.Method != http.MethodPost:
		write(awsError(400, "ValidationException", "method "+r.Method))
		return
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		write(awsError(400, "ValidationException", "content type "+r.Header.Get("Content-Type")))
		return
	case !found:
		write(awsError(400, "UnknownOperationException", "target "+target))
		return
	}
	region, err := verifySigV4(r, body, f.secrets)
	if err != nil {
		write(awsError(400, "InvalidSignatureException", err.Error()))
		return
	}
	var decoded map[string]any
	if err := json.Unmarshal(body, &decoded); err != nil {
		write(awsError(400, "SerializationException", "body is not JSON"))
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, fakeRequest{Op: op, Header: r.Header.Clone(), Body: decoded, Region: region})
	reply := f.reply
	f.mu.Unlock()
	if reply == nil {
		write(fakeReply{Status: 200, Body: "{}"})
		return
	}
	write(reply(op, decoded))
}

// verifySigV4 checks a request's AWS Signature Version 4 for the service
// kms, written from the specification (independently of the SDK's signer),
// and returns the region of its credential scope.
func verifySigV4(r *http.Request, body []byte, secrets map[string]string) (region string, err error) {
	auth, found := strings.CutPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")
	if !found {
		return "", errors.New("no AWS4-HMAC-SHA256 Authorization header")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(auth, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[3] != "kms" || scope[4] != "aws4_request" {
		return "", fmt.Errorf("bad credential scope %q", fields["Credential"])
	}
	akid, date, region := scope[0], scope[1], scope[2]
	secret, known := secrets[akid]
	if !known {
		return "", fmt.Errorf("unknown access key %q", akid)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, date) {
		return "", fmt.Errorf("bad X-Amz-Date %q for scope date %q", amzDate, date)
	}
	if skew := time.Since(signedAt); skew > 15*time.Minute || skew < -15*time.Minute {
		return "", fmt.Errorf("clock skew %v", skew)
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !slices.Contains(signed, "host") || !slices.Contains(signed, "x-amz-date") {
		return "", fmt.Errorf("SignedHeaders %q lack host or x-amz-date", fields["SignedHeaders"])
	}
	var canon strings.Builder
	canon.WriteString(r.Method + "\n" + r.URL.EscapedPath() + "\n" + r.URL.RawQuery + "\n")
	for _, h := range signed {
		var v string
		switch h {
		case "host":
			v = r.Host
		case "content-length":
			v = strconv.FormatInt(r.ContentLength, 10)
		default:
			v = strings.Join(strings.Fields(strings.Join(r.Header.Values(h), ",")), " ")
		}
		canon.WriteString(h + ":" + v + "\n")
	}
	payload := sha256.Sum256(body)
	canon.WriteString("\n" + fields["SignedHeaders"] + "\n" + hex.EncodeToString(payload[:]))
	canonHash := sha256.Sum256([]byte(canon.String()))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + date + "/" + region + "/kms/aws4_request\n" + hex.EncodeToString(canonHash[:])

	key := []byte("AWS4" + secret)
	for _, s := range []string{date, region, "kms", "aws4_request"} {
		key = hmacSHA256(key, s)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return "", errors.New("the signature does not match")
	}
	return region, nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
