package awsapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/envelopekms/envelope/kms/awsapi/internal/httpserver"
)

// The KMS through the lean front end (Server.Serve and leanFront): what
// the adapter adds to the lean server, whose HTTP is tested in package
// httpserver. Most KMS tests run on both front ends (bothFrontEnds).

// addr is the server's host:port.
func (e *testEnv) addr() string { return strings.TrimPrefix(e.hs.URL, "http://") }

// dial opens a raw connection to the server.
func (e *testEnv) dial() (net.Conn, *bufio.Reader) {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

// rawKMS returns a signed KMS request as HTTP/1.1 bytes.
func (e *testEnv) rawKMS(op, body string) []byte {
	e.t.Helper()
	var b bytes.Buffer
	if err := e.request(op, []byte(body), signOpts{}).Write(&b); err != nil {
		e.t.Fatal(err)
	}
	return b.Bytes()
}

// readResponse reads one answer and its body; its header says
// "Connection: close" if the answer does.
func readResponse(t *testing.T, br *bufio.Reader) *response {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading an answer: %v", err)
	}
	if resp.Close {
		resp.Header.Set("Connection", "close")
	}
	return readBody(t, resp)
}

// wantClosed checks that the server closes the connection (no more bytes,
// EOF or reset) within a few seconds.
func wantClosed(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := br.ReadByte(); err == nil {
		t.Fatalf("the connection is still open: read %q", b)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server did not close the connection within 5 s")
	}
}

// TestLeanResponseHeaders: the answer's headers, the Date that SDKs use to
// correct clock skew among them.
func TestLeanResponseHeaders(t *testing.T) {
	e := newTestEnv(t)
	c, br := e.dial()
	for _, tc := range []struct {
		op, body  string
		status    int
		errorType string
	}{
		{"GenerateRandom", `{"NumberOfBytes":8}`, 200, ""},
		{"DescribeKey", `{"KeyId":"alias/none"}`, 400, "NotFoundException"},
	} {
		c.Write(e.rawKMS(tc.op, tc.body))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tc.status || resp.Proto != "HTTP/1.1" {
			t.Errorf("%s: %s %d, want HTTP/1.1 %d", tc.op, resp.Proto, resp.StatusCode, tc.status)
		}
		h := resp.Header
		if h.Get("Content-Type") != "application/x-amz-json-1.1" || resp.ContentLength != int64(len(body)) ||
			!requestIDRE.MatchString(h.Get("X-Amzn-Requestid")) || h.Get("X-Amzn-Errortype") != tc.errorType {
			t.Errorf("%s: headers %v, body %d bytes", tc.op, h, len(body))
		}
		date, err := http.ParseTime(h.Get("Date"))
		if err != nil || time.Since(date).Abs() > 5*time.Second {
			t.Errorf("%s: Date %q (%v), want now", tc.op, h.Get("Date"), err)
		}
	}
}

// TestLeanOtherRoutes: everything but POST / goes through Server.Handler,
// as net/http would serve it.
func TestLeanOtherRoutes(t *testing.T) {
	e := newTestEnv(t)
	c, br := e.dial()
	c.Write([]byte("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != 3 {
		t.Errorf("HEAD /healthz = %v, %v", resp, err)
	}
	for _, req := range []string{
		"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", // served only by Server.MetricsHandler
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /keys HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"POST /? HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
		"GET /nothing?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		c.Write([]byte(req))
		r := readResponse(t, br)
		var doc struct {
			Type string `json:"__type"`
		}
		json.Unmarshal(r.body, &doc)
		if r.status != 400 || doc.Type == "" || r.header.Get("X-Amzn-Errortype") != doc.Type {
			t.Errorf("%q = %d %s", strings.SplitN(req, "\r\n", 2)[0], r.status, r.body)
		}
	}
}

// largeRequest returns a request for UpdateKeyDescription with a body of n
// bytes, signed as opts say, as its header section and its body.
func (e *testEnv) largeRequest(n int, opts signOpts) (head, body []byte) {
	e.t.Helper()
	const pre, post = `{"KeyId":"alias/none","Description":"`, `"}`
	b := []byte(pre + strings.Repeat("d", n-len(pre)-len(post)) + post)
	r := e.request("UpdateKeyDescription", b, opts)
	var w bytes.Buffer
	if err := r.Write(&w); err != nil {
		e.t.Fatal(err)
	}
	raw := w.Bytes()
	return raw[:len(raw)-n], raw[len(raw)-n:]
}

// TestCheckBeforeLargeBody: a request announcing a large body with an
// unknown access key or a wrong scope is answered at once, without its
// body, and the connection closed; one with a known key and the right
// scope gets its body read, and its signature checked then.
func TestCheckBeforeLargeBody(t *testing.T) { bothFrontEnds(t, testCheckBeforeLargeBody) }

func testCheckBeforeLargeBody(t *testing.T) {
	e := newTestEnv(t)
	stranger := aws.Credentials{AccessKeyID: "AKIDSTRANGER00000001", SecretAccessKey: testRootSecret}
	wrongSecret := aws.Credentials{AccessKeyID: testRootID, SecretAccessKey: "not the secret"}
	const size = 256 << 10
	for _, tc := range []struct {
		name string
		opts signOpts
		code string
	}{
		{"unsigned", signOpts{unsigned: true}, CodeMissingAuthenticationToken},
		{"unknown access key", signOpts{creds: &stranger}, CodeUnrecognizedClient},
		{"wrong region", signOpts{region: "eu-west-1"}, CodeInvalidSignature},
		{"wrong service", signOpts{service: "s3"}, CodeInvalidSignature},
		{"signed 20 minutes ago", signOpts{at: time.Now().Add(-20 * time.Minute)}, CodeRequestExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head, _ := e.largeRequest(size, tc.opts)
			c, br := e.dial()
			if _, err := c.Write(head); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			resp := readResponse(t, br)
			wantError(t, resp, tc.code)
			if resp.header.Get("Connection") != "close" {
				t.Errorf("the answer does not say Connection: close")
			}
			wantClosed(t, c, br)
		})
	}
	// The refusals are audited like any other.
	n := 0
	for _, ev := range readAuditEvents(t, e.auditPath) {
		if ev.Operation == "UpdateKeyDescription" && ev.Principal == "-" {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d refusals before the body in the audit log, want 5", n)
	}

	// The right access key and scope: the body is read, then the signature
	// found wrong.
	head, body := e.largeRequest(size, signOpts{creds: &wrongSecret})
	c, br := e.dial()
	c.Write(head)
	c.Write(body)
	wantError(t, readResponse(t, br), CodeInvalidSignature)
	// A good one is served.
	head, body = e.largeRequest(size, signOpts{})
	c.Write(head)
	c.Write(body)
	wantError(t, readResponse(t, br), "ValidationException") // the Description is too long: the operation got the body
}

// metric returns the value of a metric from the server's metrics handler
// (name with its labels, if any).
func (e *testEnv) metric(name string) float64 {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				e.t.Fatalf("metric %s = %q: %v", name, v, err)
			}
			return f
		}
	}
	e.t.Fatalf("no metric %s in the metrics", name)
	return 0
}

// waitMetric polls a metric until it has the value want.
func (e *testEnv) waitMetric(name string, want float64) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := e.metric(name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("metric %s = %v after 5 s, want %v", name, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLeanMetrics: the lean server's connections, connections shed or
// refused at a cap and request memory are metrics.
func TestLeanMetrics(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Limits = Limits{MaxConnections: 2, MaxConnectionsPerSource: 2} })
	signed, br := e.dial()
	signed.Write(e.rawKMS("GenerateRandom", `{"NumberOfBytes":8}`))
	if r := readResponse(t, br); r.status != 200 {
		t.Fatalf("GenerateRandom = %d %s", r.status, r.body)
	}
	e.waitMetric("envelope_http_connections", 1)
	first, firstBR := e.dial()
	e.dial() // sheds first, which has sent nothing
	wantClosed(t, first, firstBR)
	e.waitMetric(`envelope_http_connections_shed_total{kind="fresh"}`, 1)
	e.waitMetric("envelope_http_connections", 2)
	for name, want := range map[string]float64{
		`envelope_http_connections_shed_total{kind="trusted"}`: 0,
		"envelope_http_connections_refused_total":              0,
		"envelope_http_request_memory_waiting":                 0,
	} {
		if got := e.metric(name); got != want {
			t.Errorf("metric %s = %v, want %v", name, got, want)
		}
	}
	// A header section larger than a connection's buffer holds request
	// memory (64 KiB) while it is read.
	signed.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("h", 20<<10)))
	e.waitMetric("envelope_http_request_memory_bytes", 64<<10)
	signed.Write([]byte("\r\n\r\n"))
	if r := readResponse(t, br); r.status != 200 {
		t.Fatalf("GET /healthz = %d %s", r.status, r.body)
	}
	e.waitMetric("envelope_http_request_memory_bytes", 0)
}

// TestLeanFront: the lean server's requests reach the request core with
// their body, or the reason it was not read, and the answer comes back
// into the connection's buffer, with the KMS's headers; a failure answers
// the AWS error the reason calls for.
func TestLeanFront(t *testing.T) {
	e := newTestEnv(t)
	f := (*leanFront)(e.srv)
	exchange := func(op, body string, opts signOpts, bodyErr error) (*httpserver.Exchange, error) {
		r := e.request(op, []byte(body), opts)
		x := &httpserver.Exchange{Request: httpserver.Request{Context: t.Context(), Method: r.Method, Path: r.URL.Path,
			Host: r.Host, ContentLength: int64(len(body)), Source: "127.0.0.1"}}
		for name, vs := range r.Header {
			for _, v := range vs {
				x.Request.Header = append(x.Request.Header, httpserver.Field{Name: name, Value: v})
			}
		}
		precheckErr := f.Precheck(&x.Request)
		x.Request.Body, x.Request.BodyErr = []byte(body), bodyErr
		x.Response.Body = make([]byte, 0, 4096)
		f.ServeExchange(x)
		return x, precheckErr
	}
	answer := func(x *httpserver.Exchange) *response {
		h := http.Header{}
		for _, f := range x.Response.Header {
			h.Add(f.Name, f.Value)
		}
		return &response{status: x.Response.Status, header: h, body: x.Response.Body}
	}

	x, err := exchange("GenerateRandom", `{"NumberOfBytes":24}`, signOpts{}, nil)
	var out struct{ Plaintext []byte }
	if err != nil || x.Response.Status != 200 || json.Unmarshal(x.Response.Body, &out) != nil || len(out.Plaintext) != 24 || !x.Response.Authenticated {
		t.Fatalf("GenerateRandom: Precheck %v, answer %d %s (authenticated %v)", err, x.Response.Status, x.Response.Body, x.Response.Authenticated)
	}
	h := answer(x).header
	if h.Get("Content-Type") != "application/x-amz-json-1.1" || !requestIDRE.MatchString(h.Get("X-Amzn-Requestid")) || len(h) != 2 {
		t.Errorf("GenerateRandom: header fields %v", x.Response.Header)
	}
	if cap(x.Response.Body) != 4096 {
		t.Errorf("the answer was not built in the connection's buffer (capacity %d, want 4096)", cap(x.Response.Body))
	}

	for _, tc := range []struct {
		name    string
		opts    signOpts
		bodyErr error
		code    string
	}{
		{"body too large", signOpts{}, httpserver.ErrBodyTooLarge, "ValidationException"},
		{"no request memory", signOpts{}, httpserver.ErrNoMemory, CodeThrottling},
		{"body cut short", signOpts{}, io.ErrUnexpectedEOF, "SerializationException"},
		{"unsigned", signOpts{unsigned: true}, nil, CodeMissingAuthenticationToken},
		{"wrong region", signOpts{region: "eu-west-1"}, nil, CodeInvalidSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, precheckErr := exchange("ListKeys", "{}", tc.opts, tc.bodyErr)
			if tc.bodyErr == nil {
				// Refused by Precheck: the front end passes its error as
				// the body's.
				var ae *authError
				if !errors.As(precheckErr, &ae) || ae.code != tc.code {
					t.Fatalf("Precheck = %v, want %s", precheckErr, tc.code)
				}
				x, _ = exchange("ListKeys", "{}", tc.opts, precheckErr)
			} else if precheckErr != nil {
				t.Fatalf("Precheck = %v, want nil", precheckErr)
			}
			resp := answer(x)
			wantError(t, resp, tc.code)
			if x.Response.Authenticated {
				t.Errorf("a refused request is said authenticated")
			}
			if tc.bodyErr == httpserver.ErrBodyTooLarge && !strings.Contains(string(resp.body), fmt.Sprint(MaxBodyBytes)) {
				t.Errorf("the refusal %s does not say the limit", resp.body)
			}
		})
	}
}
