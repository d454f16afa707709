package awsapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/envelopekms/envelope/kms/awsapi/internal/httpserver"
)

// auditLineOf returns the audit line of the request with id reqID.
func auditLineOf(t *testing.T, path, reqID string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(raw), "\n"), "\n") {
		if strings.Contains(line, `"requestId":"`+reqID+`"`) {
			return line
		}
	}
	t.Fatalf("request %s is not in the audit log", reqID)
	return ""
}

// omittedDigest is how a line summarises what it leaves out: SHA-256 over
// each value, in order, as a 4-byte big-endian length and its bytes.
func omittedDigest(values ...string) string {
	h := sha256.New()
	for _, v := range values {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(v)))
		h.Write(n[:])
		h.Write([]byte(v))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestAuditLineBounded reproduces issue 9 item 6: a signed principal with no
// rights at all sent encryption contexts of long keys made of '<' (each
// escaped to six bytes) and long key ids, and each request wrote a line of
// megabytes before authorization refused it. A line now lists at most
// maxAuditContextKeys context keys of at most maxAuditContextKey bytes and a
// key ARN of at most maxAuditKeyARN bytes, and summarises the rest with a
// count and a SHA-256, saying so.
func TestAuditLineBounded(t *testing.T) {
	nobody := aws.Credentials{AccessKeyID: "AKIDNOBODY0000000001", SecretAccessKey: "nobody-secret"}
	e := newTestEnv(t, func(c *Config) {
		c.Principals = []*Principal{{Name: "nobody", AccessKeyID: nobody.AccessKeyID, SecretAccessKey: nobody.SecretAccessKey}}
	})
	request := func(t *testing.T, op string, in any) (string, string) {
		t.Helper()
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // '<' as it is: 1 byte sent, 6 written by a naive audit line
		if err := enc.Encode(in); err != nil {
			t.Fatal(err)
		}
		body := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
		if len(body) > MaxBodyBytes {
			t.Fatalf("request body of %d bytes is over the limit", len(body))
		}
		resp := e.do(e.request(op, body, signOpts{creds: &nobody}))
		wantError(t, resp, "AccessDeniedException")
		id := resp.header.Get("x-amzn-RequestId")
		return id, auditLineOf(t, e.auditPath, id)
	}
	const maxLine = 8 << 10

	t.Run("long context keys", func(t *testing.T) {
		ec := map[string]string{}
		for i := range 1500 {
			ec[fmt.Sprintf("%04d", i)+strings.Repeat("<", 500)] = "v"
		}
		_, line := request(t, "Encrypt", map[string]any{"KeyId": "alias/x", "Plaintext": []byte("p"), "EncryptionContext": ec})
		if len(line) > maxLine {
			t.Fatalf("the audit line of a refused request is %d bytes (want at most %d)", len(line), maxLine)
		}
		var ev AuditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range ec {
				if !yield(k) {
					return
				}
			}
		})
		if len(ev.EncryptionContextKeys) != 0 {
			t.Errorf("keys of 500 bytes are listed: %d of them", len(ev.EncryptionContextKeys))
		}
		wantOmitted(t, ev.EncryptionContextKeysOmitted, len(keys), omittedDigest(keys...))
	})
	t.Run("many short context keys", func(t *testing.T) {
		ec := map[string]string{}
		for i := range 1000 {
			ec[fmt.Sprintf("k%04d", i)] = "v"
		}
		_, line := request(t, "GenerateDataKey", map[string]any{"KeyId": "alias/x", "NumberOfBytes": 32, "EncryptionContext": ec})
		if len(line) > maxLine {
			t.Fatalf("the audit line is %d bytes (want at most %d)", len(line), maxLine)
		}
		var ev AuditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		var want, omitted []string
		for i := range 1000 {
			if i < maxAuditContextKeys {
				want = append(want, fmt.Sprintf("k%04d", i))
			} else {
				omitted = append(omitted, fmt.Sprintf("k%04d", i))
			}
		}
		if !slices.Equal(ev.EncryptionContextKeys, want) {
			t.Errorf("listed context keys = %v, want the first %d in order", ev.EncryptionContextKeys, maxAuditContextKeys)
		}
		wantOmitted(t, ev.EncryptionContextKeysOmitted, len(omitted), omittedDigest(omitted...))
	})
	t.Run("long key id", func(t *testing.T) {
		id := "alias/" + strings.Repeat("<", 600_000)
		_, line := request(t, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("p")})
		if len(line) > maxLine {
			t.Fatalf("the audit line is %d bytes (want at most %d)", len(line), maxLine)
		}
		var ev AuditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.KeyARN != "" {
			t.Errorf("keyArn of %d bytes is in the line", len(ev.KeyARN))
		}
		o := ev.KeyARNOmitted
		if o == nil || o.Bytes != len(id) || o.SHA256 != omittedDigest(id) || !strings.HasPrefix(id, o.Prefix) || o.Prefix == "" {
			t.Errorf("keyArnOmitted = %+v, want %d bytes, the digest and a prefix", o, len(id))
		}
	})
	t.Run("the longest line", func(t *testing.T) {
		// As much as a line lists in full: 32 keys of 128 bytes and a key
		// id of 512, and more keys summarised.
		ec := map[string]string{}
		for i := range maxAuditContextKeys + 10 {
			ec[fmt.Sprintf("%03d", i)+strings.Repeat("k", maxAuditContextKey-3)] = "v"
		}
		id := "alias/" + strings.Repeat("x", maxAuditKeyARN-6)
		_, line := request(t, "Encrypt", map[string]any{"KeyId": id, "Plaintext": []byte("p"), "EncryptionContext": ec})
		t.Logf("the longest request line: %d bytes", len(line))
		if len(line) > 7<<10 {
			t.Errorf("the longest request line is %d bytes, want at most 7 KiB (the documented bound)", len(line))
		}
		var ev AuditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.KeyARN != id || len(ev.EncryptionContextKeys) != maxAuditContextKeys || ev.EncryptionContextKeysOmitted.Count != 10 {
			t.Errorf("line = %s; want the key id and 32 keys in full, 10 summarised", line)
		}
	})
	t.Run("short values are listed in full", func(t *testing.T) {
		_, line := request(t, "Encrypt", map[string]any{"KeyId": "alias/<b>", "Plaintext": []byte("p"), "EncryptionContext": map[string]string{"a<b": "1"}})
		var ev AuditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.KeyARN != "alias/<b>" || !slices.Equal(ev.EncryptionContextKeys, []string{"a<b"}) || ev.KeyARNOmitted != nil || ev.EncryptionContextKeysOmitted != nil {
			t.Errorf("event = %+v; want alias/<b> and [a<b] in full, nothing omitted", ev)
		}
	})
}

func wantOmitted(t *testing.T, o *AuditOmitted, count int, digest string) {
	t.Helper()
	if o == nil {
		t.Fatalf("no encryptionContextKeysOmitted in the line; want %d keys summarised", count)
	}
	if o.Count != count || o.SHA256 != digest {
		t.Errorf("encryptionContextKeysOmitted = %+v, want count %d, sha256 %s", o, count, digest)
	}
}

// macLine returns a line chained from prev under key, and its mac.
func macLine(key, prev []byte, rest string) (string, []byte) {
	h := hmac.New(sha256.New, key)
	h.Write(prev)
	h.Write([]byte(rest))
	mac := h.Sum(nil)
	return rest + `,"mac":"` + hex.EncodeToString(mac) + `"}`, mac
}

// TestAuditVerifyLongLines reproduces issue 9 item 6: a log holding a line
// of megabytes (as servers before the bound wrote them) failed to verify
// with "bufio.Scanner: token too long". Verification reads lines of any
// length.
func TestAuditVerifyLongLines(t *testing.T) {
	prev := make([]byte, 32)
	var log bytes.Buffer
	for i, principal := range []string{"short", strings.Repeat("x", 10<<20), "after"} {
		line, mac := macLine(testAuditKey, prev, fmt.Sprintf(`{"seq":%d,"time":"2026-03-01T12:00:00Z","requestId":"r","principal":%q,"sourceAddress":"-","operation":"Encrypt","result":"Success"`, i+1, principal))
		log.WriteString(line + "\n")
		prev = mac
	}
	if n, err := VerifyAudit(bytes.NewReader(log.Bytes()), testAuditKey); n != 3 || err != nil {
		t.Fatalf("VerifyAudit of a log with a 10 MiB line = %d, %v; want 3, nil", n, err)
	}
	// The long line is still checked: one byte changed inside it breaks it.
	b := log.Bytes()
	b[5<<20] = 'y'
	_, err := VerifyAudit(bytes.NewReader(b), testAuditKey)
	var ce *ChainError
	if !errors.As(err, &ce) || ce.Line != 2 {
		t.Fatalf("VerifyAudit with the long line edited = %v, want a ChainError at line 2", err)
	}
}

// TestAuditUnauthenticatedFlood reproduces issue 9 item 6: every
// unauthenticated request was audited in full (20,000 bad requests grew the
// log by 5.6 MB in 0.25 s). Beyond a small rate such failures are counted
// by source and error into one summary line per interval, and a metric.
func TestAuditUnauthenticatedFlood(t *testing.T) {
	p := newServerParts(t, false)
	var x exchange
	sent := map[[2]string]int{} // source, result → requests
	const n = 20000
	for i := range n {
		source := "192.0.2." + strconv.Itoa(1+i%3)
		x.req = kmsRequest{ctx: context.Background(), method: "POST", path: "/", rawPath: "/", host: "127.0.0.1:8500",
			source: source, body: []byte(`{}`), contentLength: 2,
			header: httpserver.Header{{Name: "X-Amz-Target", Value: "TrentService.ListKeys"}, {Name: "Content-Type", Value: "application/x-amz-json-1.1"}}}
		want := "MissingAuthenticationToken"
		if i%2 == 1 {
			x.req.header = append(x.req.header, httpserver.Field{Name: "Authorization", Value: "AWS4-HMAC-SHA256 garbage"})
			want = "IncompleteSignature"
		}
		p.srv.handle(&x)
		if x.resp.errorType != want {
			t.Fatalf("request %d answered %q, want %s", i, x.resp.errorType, want)
		}
		sent[[2]string{source, want}]++
	}
	if err := p.audit.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d unauthenticated requests: %d bytes of audit log", n, st.Size())
	if st.Size() > 64<<10 {
		t.Errorf("%d unauthenticated requests wrote %d bytes of audit log, want at most 64 KiB", n, st.Size())
	}
	f, err := os.Open(p.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := VerifyAudit(f, p.auditKey); err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	// Every request is accounted for: a line of its own, or counted in a
	// summary by source and error.
	got := map[[2]string]int{}
	summaries := 0
	raw, _ := os.ReadFile(p.auditPath)
	for line := range strings.SplitSeq(strings.TrimSuffix(string(raw), "\n"), "\n") {
		var ev struct {
			Type      string `json:"type"`
			Principal string `json:"principal"`
			Source    string `json:"sourceAddress"`
			Result    string `json:"result"`
			Count     int    `json:"count"`
			BySource  []struct {
				Source string `json:"source"`
				Result string `json:"result"`
				Count  int    `json:"count"`
			} `json:"bySource"`
			Others *struct{ Count int } `json:"others"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case "":
			got[[2]string{ev.Source, ev.Result}]++
		case "unauthenticated":
			summaries++
			total := 0
			for _, s := range ev.BySource {
				got[[2]string{s.Source, s.Result}] += s.Count
				total += s.Count
			}
			if ev.Others != nil {
				t.Errorf("summary has others %+v with only 6 sources and errors", ev.Others)
			}
			if total != ev.Count {
				t.Errorf("summary counts %d requests by source, says count %d", total, ev.Count)
			}
		}
	}
	if summaries == 0 {
		t.Errorf("no summary line of unauthenticated failures")
	}
	if !mapsEqual(got, sent) {
		t.Errorf("audit log accounts for %v, want %v", got, sent)
	}
	if v := metricValue(t, p.srv, "envelope_audit_unauthenticated_summarized_total"); v < n-200 {
		t.Errorf("envelope_audit_unauthenticated_summarized_total = %v, want about %d", v, n)
	}
}

func mapsEqual[K comparable](a, b map[K]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// metricValue returns the value of an unlabelled metric of srv (-1 if
// absent).
func metricValue(t *testing.T, srv *Server, name string) float64 {
	t.Helper()
	mfs, err := srv.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// TestAuditTornTailRecovered: a crash in the middle of a write leaves the
// last line without its end. The log opens again: the torn bytes are cut
// and the start record says what was cut (length, SHA-256 and the text),
// chained, so the log verifies.
func TestAuditTornTailRecovered(t *testing.T) {
	path := writeAuditLog(t, 3)
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	torn := `{"seq":5,"time":"2026-03-01T12:00:01Z","requestId":"req-torn","princ`
	if err := os.WriteFile(path, append(bytes.Clone(whole), torn...), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := openTestLog(t, path, true)
	if err != nil {
		t.Fatalf("opening a log with a torn last line: %v", err)
	}
	appendEvents(t, a, 0, 0)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, whole) {
		t.Fatalf("the complete lines before the torn one changed")
	}
	lines := readLines(t, path)
	var start struct {
		Type string `json:"type"`
		Torn *struct {
			Bytes  int    `json:"bytes"`
			SHA256 string `json:"sha256"`
			Text   string `json:"text"`
		} `json:"torn"`
	}
	startLine := lines[len(lines)-2]
	if err := json.Unmarshal([]byte(startLine), &start); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(torn))
	if start.Type != "start" || start.Torn == nil || start.Torn.Bytes != len(torn) || start.Torn.SHA256 != hex.EncodeToString(sum[:]) || start.Torn.Text != torn {
		t.Errorf("the record after the torn line = %s; want a start record naming the %d torn bytes", startLine, len(torn))
	}
	if strings.Contains(string(raw), torn+"\n") || strings.Count(string(raw), "req-torn") != 1 {
		t.Errorf("the torn bytes are still in the log as a line")
	}
	if n, err := verifyLines(lines, testAuditKey); err != nil || n != len(lines) {
		t.Errorf("VerifyAudit after recovering a torn line = %d, %v", n, err)
	}
}

// checkHealthz asks srv's /healthz and returns its status and body.
func checkHealthz(t *testing.T, srv *Server) (int, string) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/healthz", nil)
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, r)
	return w.Code, w.Body.String()
}
