package awsapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/kms/awsapi/internal/httpserver"
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

// benchEnv is a server (SigV4 and the default audit mode on, as envelope
// serve runs) with a key, and a signed GenerateDataKey and Decrypt pair.
type benchEnv struct {
	srv      *Server
	gdk, dec signedRequest
}

func newBenchEnv(b *testing.B, syncAudit bool) *benchEnv {
	ctx := context.Background()
	p := newServerParts(b, syncAudit)
	ks, srv := p.ks, p.srv
	ck, err := ks.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	n := int32(32)
	gdkBody, _ := json.Marshal(&kms.GenerateDataKeyInput{KeyId: ck.KeyMetadata.Arn, NumberOfBytes: &n, EncryptionContext: map[string]string{"purpose": "bench"}})
	out, err := ks.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: ck.KeyMetadata.Arn, NumberOfBytes: &n, EncryptionContext: map[string]string{"purpose": "bench"}})
	if err != nil {
		b.Fatal(err)
	}
	decBody, _ := json.Marshal(&kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "bench"}, KeyId: ck.KeyMetadata.Arn})
	return &benchEnv{srv: srv, gdk: sign(b, "GenerateDataKey", gdkBody), dec: sign(b, "Decrypt", decBody)}
}

// reportCPU reports the process's CPU time (user+system, every thread:
// the server's and the client's) per operation: wall time is noisy on a
// shared machine, CPU time much less.
func reportCPU(b *testing.B, run func()) {
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	run()
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano()
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkHandler measures the server's CPU per GenerateDataKey+Decrypt
// pair inside the handler (no network), with SigV4 and the default audit
// mode on, as the server runs: through net/http's Handler (with httptest's
// request and recorder), and through the core request path alone.
func BenchmarkHandler(b *testing.B) {
	env := newBenchEnv(b, false)
	h := env.srv.Handler()
	b.Run("op=GenerateDataKey+Decrypt", func(b *testing.B) {
		b.ReportAllocs()
		reportCPU(b, func() {
			for b.Loop() {
				for _, sr := range []signedRequest{env.gdk, env.dec} {
					w := httptest.NewRecorder()
					h.ServeHTTP(w, sr.request())
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			}
		})
	})
	b.Run("op=GenerateDataKey+Decrypt/core", func(b *testing.B) {
		var x exchange
		reqs := []kmsRequest{env.gdk.kmsRequest(), env.dec.kmsRequest()}
		b.ReportAllocs()
		reportCPU(b, func() {
			for b.Loop() {
				for i := range reqs {
					x.req = reqs[i]
					env.srv.handle(&x)
					if x.resp.status != http.StatusOK {
						b.Fatalf("status %d: %s", x.resp.status, x.resp.body)
					}
				}
			}
		})
	})
}

// BenchmarkAuditModes compares the two audit modes under concurrent load
// (32 goroutines each running GenerateDataKey+Decrypt pairs through the
// core request path): batched (the default; each answer waits until its
// line is written to the operating system, writes shared by the requests
// waiting together, synced every AuditSyncInterval) and sync
// (--audit-sync; each answer waits until its line is on disk, fsyncs
// shared likewise).
func BenchmarkAuditModes(b *testing.B) {
	for _, mode := range []struct {
		name string
		sync bool
	}{{"batched", false}, {"sync", true}} {
		b.Run("audit="+mode.name, func(b *testing.B) {
			env := newBenchEnv(b, mode.sync)
			b.SetParallelism(16) // 32 goroutines on 2 CPUs
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var x exchange
				reqs := []kmsRequest{env.gdk.kmsRequest(), env.dec.kmsRequest()}
				for pb.Next() {
					for i := range reqs {
						x.req = reqs[i]
						env.srv.handle(&x)
						if x.resp.status != http.StatusOK {
							b.Errorf("status %d: %s", x.resp.status, x.resp.body)
							return
						}
					}
				}
			})
		})
	}
}

// kmsRequest returns the request as the lean server hands it to handle.
func (s signedRequest) kmsRequest() kmsRequest {
	r := kmsRequest{ctx: context.Background(), method: "POST", path: "/", rawPath: "/", host: "127.0.0.1:8500",
		contentLength: int64(len(s.body)), source: "127.0.0.1", body: s.body}
	for name, vs := range s.header {
		for _, v := range vs {
			r.header = append(r.header, httpserver.Field{Name: name, Value: v})
		}
	}
	return r
}

// raw returns the request as HTTP/1.1 bytes.
func (s signedRequest) raw() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST / HTTP/1.1\r\nHost: 127.0.0.1:8500\r\nContent-Length: %d\r\n", len(s.body))
	s.header.Write(&b)
	b.WriteString("\r\n")
	b.Write(s.body)
	return b.Bytes()
}

// readAnswer reads one HTTP/1.1 answer from br, without allocating, and
// returns its status.
func readAnswer(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status := int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	n := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n = 0
			for _, c := range bytes.TrimSpace(v) {
				n = n*10 + int(c-'0')
			}
		}
	}
	if n < 0 {
		return 0, errors.New("no Content-Length")
	}
	_, err = br.Discard(n)
	return status, err
}

// BenchmarkServe measures GenerateDataKey+Decrypt pairs through the lean
// HTTP/1.1 server over loopback TCP, on one keep-alive connection and on
// eight concurrent ones. The client is a raw connection with the requests
// pre-signed and allocates nothing, so allocs/op are the server's;
// cpu-ns/op counts both sides.
func BenchmarkServe(b *testing.B) {
	env := newBenchEnv(b, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go env.srv.Serve(ln)
	b.Cleanup(func() { env.srv.Shutdown(context.Background()) })
	reqs := [][]byte{env.gdk.raw(), env.dec.raw()}
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		return c, bufio.NewReaderSize(c, 16<<10)
	}
	pair := func(c net.Conn, br *bufio.Reader) error {
		for _, r := range reqs {
			if _, err := c.Write(r); err != nil {
				return err
			}
			status, err := readAnswer(br)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return fmt.Errorf("status %d", status)
			}
		}
		return nil
	}
	b.Run("op=GenerateDataKey+Decrypt/conns=1", func(b *testing.B) {
		c, br := dial()
		defer c.Close()
		b.ReportAllocs()
		reportCPU(b, func() {
			for b.Loop() {
				if err := pair(c, br); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("op=GenerateDataKey+Decrypt/conns=8", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4) // 4 × GOMAXPROCS connections; 8 on 2 cores
		reportCPU(b, func() {
			b.RunParallel(func(pb *testing.PB) {
				c, br := dial()
				defer c.Close()
				for pb.Next() {
					if err := pair(c, br); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	})
}

func TestTopLevelKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`{}`, nil},
		{`{"KeyId":"a","EncryptionContext":{"k":"v","x":{"y":1}},"NumberOfBytes":32}`, []string{"KeyId", "EncryptionContext", "NumberOfBytes"}},
		{`{"a\"b":"c,\"d\":1","Tags":[{"TagKey":"k"}],"z":[1,{"q":2}]}`, []string{`a"b`, "Tags", "z"}},
		{`{"\u004beyId":"x","\u006beyId":"y"}`, []string{"KeyId", "keyId"}},
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
