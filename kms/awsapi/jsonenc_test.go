package awsapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/envelopekms/envelope/kms"
)

// jsonStrings are strings that encoding/json escapes in every way it can.
var jsonStrings = []string{
	"", "plain", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "alias/app",
	`quote " and backslash \`, "<html> & </html>", "tab\tnewline\nreturn\r", "\x00\x01\x1f\x7f", "\b\f",
	"é ü 日本", "\xff\xfe invalid UTF-8 \xc3", "line\u2028separator\u2029", "emoji 🔑",
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range jsonStrings {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, want %s (encoding/json)", s, got, want)
		}
	}
	for _, b := range [][]byte{nil, {}, {0}, []byte("hello, world"), bytes.Repeat([]byte{0xff}, 33)} {
		want, _ := json.Marshal(b)
		if got := appendJSONBytes(nil, b); !bytes.Equal(got, want) {
			t.Errorf("appendJSONBytes(%q) = %s, want %s (encoding/json)", b, got, want)
		}
	}
}

// checkEncoders compares the hand-written encoders with encoding/json for
// outputs made of s and b.
func checkEncoders(t *testing.T, s string, b []byte) {
	t.Helper()
	same := func(name string, got []byte, v any) {
		t.Helper()
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s(%+v) = %s, want %s (encoding/json)", name, v, got, want)
		}
	}
	for _, name := range fastOps() {
		c := operations[name].spec.(fastCodecs)
		for _, out := range outputsOf(t, c.newOutput, s, b) {
			same(name+" fast encoder", c.encodeFast(out), out)
		}
	}
	var many []string // over the count bound
	for i := range maxAuditContextKeys + 8 {
		many = append(many, fmt.Sprint(i, s))
	}
	for _, keys := range [][]string{nil, {}, {s}, {"a", s, "z"}, many} {
		for _, at := range []string{"", s, "2026-03-01T12:00:00.123456789Z"} {
			ev := AuditEvent{Seq: 42, Time: at, RequestID: s, Principal: s, SourceAddress: s, Operation: s, KeyARN: s,
				EncryptionContextKeys: keys, Result: s}
			want, _ := json.Marshal(boundedEvent(ev))
			got := append([]byte(`{"seq":42`), appendAuditTail(nil, ev.Time, ev.RequestID, ev.Principal, ev.SourceAddress, ev.Operation, ev.KeyARN, ev.EncryptionContextKeys, ev.DecidedBy, ev.Sid, ev.Result)...)
			got = append(got, '}')
			if !bytes.Equal(got, want) {
				t.Errorf("audit line %s, want %s (encoding/json)", got, want)
			}
		}
	}
}

// boundedEvent is ev as an audit line records it: the key ARN and the
// context keys over the bounds summarised (see AuditLog), the rules
// restated here independently of appendAuditTail.
func boundedEvent(ev AuditEvent) *AuditEvent {
	written := func(s string) int { b, _ := json.Marshal(s); return len(b) - 2 }
	if ev.KeyARN != "" && (len(ev.KeyARN) > maxAuditKeyARN || written(ev.KeyARN) > maxAuditKeyARN) {
		n := min(len(ev.KeyARN), auditPrefixBytes)
		for n > 0 && n < len(ev.KeyARN) && !utf8.RuneStart(ev.KeyARN[n]) {
			n--
		}
		ev.KeyARNOmitted = &AuditOmitted{Bytes: len(ev.KeyARN), SHA256: omittedDigest(ev.KeyARN), Prefix: ev.KeyARN[:n]}
		ev.KeyARN = ""
	}
	var listed, omitted []string
	for _, k := range ev.EncryptionContextKeys {
		if len(listed) < maxAuditContextKeys && written(k) <= maxAuditContextKey {
			listed = append(listed, k)
		} else {
			omitted = append(omitted, k)
		}
	}
	ev.EncryptionContextKeys = listed
	if len(omitted) > 0 {
		ev.EncryptionContextKeysOmitted = &AuditOmitted{Count: len(omitted), SHA256: omittedDigest(omitted...)}
	}
	return &ev
}

func TestEncodersMatchEncodingJSON(t *testing.T) {
	long := []string{strings.Repeat("k", maxAuditContextKey), strings.Repeat("k", maxAuditContextKey+1), strings.Repeat("<", 22),
		"alias/" + strings.Repeat("x", maxAuditKeyARN-6), "alias/" + strings.Repeat("x", maxAuditKeyARN-5), strings.Repeat("é", 300),
		strings.Repeat("<", maxAuditKeyARN/6+1), strings.Repeat("\xff", 600)}
	for _, s := range append(slices.Clone(jsonStrings), long...) {
		for _, b := range [][]byte{nil, {}, []byte(s)} {
			checkEncoders(t, s, b)
		}
	}
	// A time.Time is written as Format(time.RFC3339Nano) in UTC.
	for _, at := range []time.Time{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 12, 0, 0, 120, time.FixedZone("x", 3600))} {
		got := appendAuditTail(nil, at, "id", "p", "s", "o", "", nil, "", "", "Success")
		want := appendAuditTail(nil, at.UTC().Format(time.RFC3339Nano), "id", "p", "s", "o", "", nil, "", "", "Success")
		if !bytes.Equal(got, want) {
			t.Errorf("audit time %v: %s, want %s", at, got, want)
		}
	}
}

func FuzzEncoders(f *testing.F) {
	for _, s := range jsonStrings {
		f.Add(s, []byte(s))
	}
	f.Fuzz(func(t *testing.T, s string, b []byte) { checkEncoders(t, s, b) })
}

// fastCodecs are the fast codecs of an operation's declaration, seen
// without its types.
type fastCodecs interface {
	hasFast() bool
	// encodes reports whether the output's table encodes.
	encodes() bool
	newInput() any
	newOutput() any
	// decodeFast decodes body with the fast decoder into a new input,
	// and reports whether it accepted it.
	decodeFast(body []byte) (any, bool)
	encodeFast(out any) []byte
}

func (s *spec[In, Out]) hasFast() bool  { return s.req.fast != nil && s.answer.fast != nil }
func (s *spec[In, Out]) encodes() bool  { return s.answer.fast != nil && s.answer.fast.encodes }
func (s *spec[In, Out]) newInput() any  { return new(In) }
func (s *spec[In, Out]) newOutput() any { return new(Out) }
func (s *spec[In, Out]) encodeFast(out any) []byte {
	return s.answer.fast.encode(nil, out.(*Out))
}
func (s *spec[In, Out]) decodeFast(body []byte) (any, bool) {
	in := new(In)
	return in, s.req.fast.decode(body, in)
}

// fastOps returns the names of the operations with fast codecs, sorted.
func fastOps() []string {
	var names []string
	for name, o := range operations {
		if o.spec.(fastCodecs).hasFast() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// outputsOf returns outputs of the type newOut makes, with every string
// field s and every []byte field b, and each combination of the fields
// tagged omitempty left empty.
func outputsOf(t *testing.T, newOut func() any, s string, b []byte) []any {
	t.Helper()
	typ := reflect.TypeOf(newOut()).Elem()
	var omit []int
	for i := range typ.NumField() {
		if strings.HasSuffix(typ.Field(i).Tag.Get("json"), ",omitempty") {
			omit = append(omit, i)
		}
	}
	var outs []any
	for mask := range 1 << len(omit) {
		out := reflect.ValueOf(newOut())
		v := out.Elem()
		for i := range typ.NumField() {
			switch f := v.Field(i); {
			case f.Kind() == reflect.String:
				f.SetString(s)
			case f.Type() == reflect.TypeFor[[]byte]():
				f.SetBytes(b)
			default:
				t.Fatalf("%v.%s: a %v, which outputsOf does not fill", typ, typ.Field(i).Name, f.Type())
			}
		}
		for j, i := range omit {
			if mask&(1<<j) != 0 {
				v.Field(i).SetZero()
			}
		}
		outs = append(outs, out.Interface())
	}
	return outs
}

// checkFastDecoder decodes body with the fast decoder of op and, if it
// accepts it, requires encoding/json (with the member-name check) to
// accept it too with the same result. It reports whether the fast decoder
// accepted.
func checkFastDecoder(t *testing.T, op string, body []byte) bool {
	t.Helper()
	c, ok := operations[op].spec.(fastCodecs)
	if !ok || !c.hasFast() {
		t.Fatalf("no fast decoder for %s", op)
	}
	fast, ok := c.decodeFast(body)
	if !ok {
		return false
	}
	slow := c.newInput()
	if err := json.Unmarshal(body, slow); err != nil {
		t.Fatalf("%s: the fast decoder accepted %q, encoding/json refuses it: %v", op, body, err)
	}
	if err := checkMemberNames(body, memberNames(reflect.TypeOf(slow).Elem())); err != nil {
		t.Fatalf("%s: the fast decoder accepted %q, the member-name check refuses it: %v", op, body, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%s(%q): fast decoder %+v, encoding/json %+v", op, body, fast, slow)
	}
	return true
}

// fastDecoderBodies are bodies for the fast decoders: the common ones
// (which they must accept) and the unusual (which they may leave to
// encoding/json).
var fastDecoderBodies = []struct {
	op, body string
	fast     bool
}{
	{"GenerateDataKey", `{"KeyId":"alias/bench","EncryptionContext":{"purpose":"bench"},"NumberOfBytes":32}`, true},
	{"GenerateDataKey", `{"EncryptionContext":{"aws-crypto-public-key":"AqDr+Mx1","tenant":"t1"},"KeyId":"arn:aws:kms:us-east-1:111122223333:alias/app","KeySpec":"AES_256"}`, true},
	{"GenerateDataKey", " {\n\t\"KeyId\" : \"k\" , \"NumberOfBytes\" : 0 }\r\n", true},
	{"GenerateDataKey", `{"KeyId":"k","EncryptionContext":{}}`, true},
	{"GenerateDataKey", `{"KeyId":"k","EncryptionContext":{"a":"1","a":"2"}}`, true},
	{"GenerateDataKey", `{}`, true},
	{"GenerateDataKey", `{"NumberOfBytes":999999999}`, true},
	{"GenerateDataKey", `{"NumberOfBytes":1000000000}`, false},
	{"GenerateDataKey", `{"NumberOfBytes":032}`, false},
	{"GenerateDataKey", `{"NumberOfBytes":-1}`, false},
	{"GenerateDataKey", `{"NumberOfBytes":3.0}`, false},
	{"GenerateDataKey", `{"NumberOfBytes":1e1}`, false},
	{"GenerateDataKey", `{"NumberOfBytes":"32"}`, false},
	{"GenerateDataKey", `{"NumberOfBytes":null}`, false},
	{"GenerateDataKey", `{"KeyId":"a","KeyId":"b"}`, false},
	{"GenerateDataKey", `{"keyid":"a"}`, false},
	{"GenerateDataKey", `{"KeyId":"a","GrantTokens":["t"]}`, false},
	{"GenerateDataKey", `{"KeyId":"a","DryRun":true}`, false},
	{"GenerateDataKey", `{"KeyId":"a\u0062"}`, false},
	{"GenerateDataKey", `{"KeyId":"é"}`, false},
	{"GenerateDataKey", `{"KeyId":"a"} {}`, false},
	{"GenerateDataKey", `{"KeyId":"a",}`, false},
	{"GenerateDataKey", `{"KeyId":"a"`, false},
	{"GenerateDataKey", `[]`, false},
	{"GenerateDataKey", `null`, false},
	{"GenerateDataKey", `{"EncryptionContext":{"a":1}}`, false},
	{"GenerateDataKey", `{"EncryptionContext":null}`, false},
	{"Decrypt", `{"CiphertextBlob":"AQIDBAUGBwgJCgsMDQ4PEA==","EncryptionContext":{"purpose":"bench"},"KeyId":"arn:aws:kms:us-east-1:111122223333:key/k"}`, true},
	{"Decrypt", `{"CiphertextBlob":"AQID","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}`, true},
	{"Decrypt", `{"CiphertextBlob":""}`, true},
	{"Decrypt", `{"CiphertextBlob":"***"}`, false},
	{"Decrypt", `{"CiphertextBlob":"AQI"}`, false},
	{"Decrypt", `{"CiphertextBlob":"AQ\nID"}`, false},
	{"Decrypt", `{"CiphertextBlob":null}`, false},
	{"Decrypt", `{"CiphertextBlob":"AQID","CiphertextBlob":"AQID"}`, false},
	{"Encrypt", `{"KeyId":"alias/app","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}`, true},
	{"Encrypt", `{"KeyId":"alias/app","Plaintext":"aGVsbG8=","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}`, true},
	{"Encrypt", `{"KeyId":"alias/app","plaintext":"aGVsbG8="}`, false},
}

func TestFastDecoders(t *testing.T) {
	for _, tc := range fastDecoderBodies {
		if got := checkFastDecoder(t, tc.op, []byte(tc.body)); got != tc.fast {
			t.Errorf("%s fast decoder on %s: accepted %v, want %v", tc.op, tc.body, got, tc.fast)
		}
	}
}

// FuzzFastDecoders: whatever the fast decoders (of every operation that
// has one) accept, encoding/json decodes to the same input.
func FuzzFastDecoders(f *testing.F) {
	ops := fastOps()
	if len(ops) == 0 {
		f.Fatal("no operation has fast codecs")
	}
	for _, tc := range fastDecoderBodies {
		f.Add(tc.op, []byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		if !slices.Contains(ops, op) {
			op = ops[len(op)%len(ops)]
		}
		checkFastDecoder(t, op, body)
	})
}

// codecBench is the JSON of a GenerateDataKey+Decrypt pair as the
// benchmarks send it: the requests' bodies and the answers.
var codecBench = struct {
	gdkBody, decBody []byte
	gdkOut           *kms.GenerateDataKeyOutput
	decOut           *kms.DecryptOutput
}{
	gdkBody: []byte(`{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","EncryptionContext":{"purpose":"bench"},"NumberOfBytes":32}`),
	decBody: []byte(`{"CiphertextBlob":"` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 130)) + `","EncryptionContext":{"purpose":"bench"},"KeyId":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}`),
	gdkOut: &kms.GenerateDataKeyOutput{CiphertextBlob: bytes.Repeat([]byte{7}, 130), Plaintext: bytes.Repeat([]byte{9}, 32),
		KeyId: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
	decOut: &kms.DecryptOutput{KeyId: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		Plaintext: bytes.Repeat([]byte{9}, 32), EncryptionAlgorithm: "SYMMETRIC_DEFAULT"},
}

// codecSink keeps what BenchmarkFastCodecs decodes.
var codecSink []any

// BenchmarkFastCodecs measures the fast codecs of a GenerateDataKey+Decrypt
// pair: both requests decoded, both answers encoded.
func BenchmarkFastCodecs(b *testing.B) {
	c := codecBench
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	reportCPU(b, func() {
		for b.Loop() {
			// The server's inputs are on the heap (they go to the KMS
			// through an interface): so are these.
			gdk, dec := new(kms.GenerateDataKeyInput), new(kms.DecryptInput)
			codecSink = append(codecSink[:0], gdk, dec)
			if !generateDataKeyInput.decode(c.gdkBody, gdk) || !decryptInput.decode(c.decBody, dec) {
				b.Fatal("the fast decoders refused the benchmark's bodies")
			}
			dst = generateDataKeyOutput.encode(dst[:0], c.gdkOut)
			dst = decryptOutput.encode(dst[:0], c.decOut)
		}
	})
}
