package awsapi

import (
	"bytes"
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
	for _, mat := range []string{"", s} {
		g := &kms.GenerateDataKeyOutput{CiphertextBlob: b, Plaintext: b, KeyId: s, KeyMaterialId: mat}
		same("encodeGenerateDataKey", encodeGenerateDataKey(nil, g), g)
		d := &kms.DecryptOutput{KeyId: s, Plaintext: b, EncryptionAlgorithm: s, KeyMaterialId: mat}
		same("encodeDecrypt", encodeDecrypt(nil, d), d)
	}
	e := &kms.EncryptOutput{CiphertextBlob: b, KeyId: s, EncryptionAlgorithm: s}
	same("encodeEncrypt", encodeEncrypt(nil, e), e)
	var many []string // over the count bound
	for i := range maxAuditContextKeys + 8 {
		many = append(many, fmt.Sprint(i, s))
	}
	for _, keys := range [][]string{nil, {}, {s}, {"a", s, "z"}, many} {
		for _, at := range []string{"", s, "2026-03-01T12:00:00.123456789Z"} {
			ev := AuditEvent{Seq: 42, Time: at, RequestID: s, Principal: s, SourceAddress: s, Operation: s, KeyARN: s,
				EncryptionContextKeys: keys, Result: s}
			want, _ := json.Marshal(boundedEvent(ev))
			got := append([]byte(`{"seq":42`), appendAuditTail(nil, ev.Time, ev.RequestID, ev.Principal, ev.SourceAddress, ev.Operation, ev.KeyARN, ev.EncryptionContextKeys, ev.Result)...)
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
		got := appendAuditTail(nil, at, "id", "p", "s", "o", "", nil, "Success")
		want := appendAuditTail(nil, at.UTC().Format(time.RFC3339Nano), "id", "p", "s", "o", "", nil, "Success")
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

// checkFastDecoder decodes body with the fast decoder of op and, if it
// accepts it, requires encoding/json (with the member-name check) to
// accept it too with the same result. It reports whether the fast decoder
// accepted.
func checkFastDecoder(t *testing.T, op string, body []byte) bool {
	t.Helper()
	var fast, slow any
	var ok bool
	switch op {
	case "GenerateDataKey":
		in := new(kms.GenerateDataKeyInput)
		ok, fast, slow = decodeGenerateDataKey(body, in), in, new(kms.GenerateDataKeyInput)
	case "Decrypt":
		in := new(kms.DecryptInput)
		ok, fast, slow = decodeDecrypt(body, in), in, new(kms.DecryptInput)
	case "Encrypt":
		in := new(kms.EncryptInput)
		ok, fast, slow = decodeEncrypt(body, in), in, new(kms.EncryptInput)
	default:
		t.Fatalf("no fast decoder for %s", op)
	}
	if !ok {
		return false
	}
	if err := json.Unmarshal(body, slow); err != nil {
		t.Fatalf("%s: the fast decoder accepted %q, encoding/json refuses it: %v", op, body, err)
	}
	if err := checkMemberNames(body, slow); err != nil {
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

// FuzzFastDecoders: whatever the fast decoders accept, encoding/json
// decodes to the same input.
func FuzzFastDecoders(f *testing.F) {
	for _, tc := range fastDecoderBodies {
		f.Add(tc.op, []byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		switch op {
		case "GenerateDataKey", "Decrypt", "Encrypt":
		default:
			op = []string{"GenerateDataKey", "Decrypt", "Encrypt"}[len(op)%3]
		}
		checkFastDecoder(t, op, body)
	})
}
