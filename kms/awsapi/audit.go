package awsapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"os"
	"strconv"
	"time"
	"unicode/utf8"
)

// AuditEvent is the line of one request in the audit log: who did what to
// which key, and how it ended. It never holds key material, plaintext or
// context values. Fields a caller controls are bounded (see [AuditLog]);
// what does not fit is summarised in the Omitted fields.
type AuditEvent struct {
	Seq  int64  `json:"seq"`
	Time string `json:"time"`
	// Type is "" for a request. The server's own records carry "start",
	// "resume" or "unauthenticated" and the members described at
	// [AuditLog], which AuditEvent does not hold; [AuditLog.Write] writes
	// only requests and ignores Type.
	Type          string `json:"type,omitempty"`
	RequestID     string `json:"requestId"`
	Principal     string `json:"principal"`
	SourceAddress string `json:"sourceAddress"`
	Operation     string `json:"operation"`
	KeyARN        string `json:"keyArn,omitempty"`
	// KeyARNOmitted stands for a key reference too long to write (a
	// request's KeyId is recorded before it is known to name a key).
	KeyARNOmitted         *AuditOmitted `json:"keyArnOmitted,omitempty"`
	EncryptionContextKeys []string      `json:"encryptionContextKeys,omitempty"`
	// EncryptionContextKeysOmitted summarises the context keys not listed:
	// those too long, and those beyond the first few.
	EncryptionContextKeysOmitted *AuditOmitted `json:"encryptionContextKeysOmitted,omitempty"`
	// DecidedBy says what decided the request's authorization: "allow: "
	// or "deny: " and "key policy", "identity policy NAME", "grant ID" or
	// "none" (nothing allowed it); "" when nothing was decided (the root
	// principal, a request that failed before).
	DecidedBy string `json:"decidedBy,omitempty"`
	// Sid is the Sid of the policy statement that decided, if it has one
	// (and it is at most 256 bytes).
	Sid string `json:"sid,omitempty"`
	// Result is "Success" or the AWS error name.
	Result string `json:"result"`
}

// AuditOmitted summarises what a line leaves out of a field. SHA256 is the
// SHA-256, in hex, over the values left out, in order, each as its length
// (4 bytes, big-endian) and its bytes: whoever holds the values can check
// them against it.
type AuditOmitted struct {
	// Count is the number of values left out of a list.
	Count int `json:"count,omitempty"`
	// Bytes is the length of a string left out.
	Bytes  int    `json:"bytes,omitempty"`
	SHA256 string `json:"sha256"`
	// Prefix is the first bytes of a string left out (at most 64).
	Prefix string `json:"prefix,omitempty"`
}

// Bounds of what one request's line holds; lengths are of the values as
// written (JSON-escaped, without quotes).
const (
	maxAuditKeyARN      = 512
	maxAuditContextKey  = 128
	maxAuditContextKeys = 32
	auditPrefixBytes    = 64
)

const (
	// macField ends every line: ,"mac":"<64 hex digits>"}
	macField = `,"mac":"`
	// macSuffixLen is the length of the mac member and the closing brace.
	macSuffixLen = len(macField) + 64 + 2
	// maxTornText is how much of a torn line its start record quotes.
	maxTornText = 1024
	// maxTailScan bounds how far from the end of a log Open looks for its
	// last complete line.
	maxTailScan = 64 << 20
	// maxUnsynced bounds the lines kept for rewriting until the default
	// mode's next sync; beyond it the log is synced at once.
	maxUnsynced = 16 << 20
)

// startRecord is what a start record says.
type startRecord struct {
	id        string
	mode      string
	prevSeq   int64
	prevMAC   []byte
	missing   int64
	marks     bool
	highWater int64
	torn      *tornTail
}

// tornTail is an incomplete last line.
type tornTail struct {
	bytes  int64
	sha256 []byte
	text   []byte // its first maxTornText bytes
}

func (s *startRecord) appendTail(dst []byte, now time.Time) []byte {
	host, _ := os.Hostname()
	dst = appendAuditTime(dst, now)
	dst = append(dst, `,"type":"start","logId":`...)
	dst = appendJSONString(dst, s.id)
	dst = append(dst, `,"host":`...)
	dst = appendJSONString(dst, host)
	dst = append(dst, `,"pid":`...)
	dst = strconv.AppendInt(dst, int64(os.Getpid()), 10)
	dst = append(dst, `,"mode":"`...)
	dst = append(dst, s.mode...)
	dst = append(dst, `","prevSeq":`...)
	dst = strconv.AppendInt(dst, s.prevSeq, 10)
	dst = append(dst, `,"prevMac":"`...)
	dst = hex.AppendEncode(dst, s.prevMAC)
	dst = append(dst, `","missing":`...)
	dst = strconv.AppendInt(dst, s.missing, 10)
	if s.marks {
		dst = append(dst, `,"highWater":`...)
		dst = strconv.AppendInt(dst, s.highWater, 10)
	}
	if t := s.torn; t != nil {
		dst = append(dst, `,"torn":{"bytes":`...)
		dst = strconv.AppendInt(dst, t.bytes, 10)
		dst = append(dst, `,"sha256":"`...)
		dst = hex.AppendEncode(dst, t.sha256)
		dst = append(dst, `","text":`...)
		dst = appendJSONString(dst, string(t.text))
		dst = append(dst, '}')
	}
	return dst
}

// appendAuditTime appends ,"time":"<at>" with at a string (AuditEvent.Time)
// or a time.Time, formatted as RFC 3339 in UTC with nanoseconds.
func appendAuditTime[T string | time.Time](dst []byte, at T) []byte {
	dst = append(dst, `,"time":`...)
	switch t := any(at).(type) {
	case string:
		dst = appendJSONString(dst, t)
	case time.Time:
		dst = append(dst, '"')
		dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	return dst
}

// appendAuditTail appends the JSON of a request's line from its second
// member ("time") to its last ("result"), without the closing brace:
// what encoding/json makes of an AuditEvent after "seq", once the fields
// over the bounds are summarised ([AuditLog]). at is a string
// (AuditEvent.Time) or a time.Time.
// maxAuditSid bounds the Sid (and decidedBy) a line records: longer ones
// are left out.
const maxAuditSid = 256

func appendAuditTail[T string | time.Time](dst []byte, at T, requestID, principal, source, operation, keyARN string, ecKeys []string, decidedBy, sid, result string) []byte {
	dst = appendAuditTime(dst, at)
	dst = append(dst, `,"requestId":`...)
	dst = appendJSONString(dst, requestID)
	dst = append(dst, `,"principal":`...)
	dst = appendJSONString(dst, principal)
	dst = append(dst, `,"sourceAddress":`...)
	dst = appendJSONString(dst, source)
	dst = append(dst, `,"operation":`...)
	dst = appendJSONString(dst, operation)
	if keyARN != "" {
		mark := len(dst)
		if len(keyARN) <= maxAuditKeyARN {
			dst = append(dst, `,"keyArn":`...)
			dst = appendJSONString(dst, keyARN)
		}
		if len(dst)-mark-len(`,"keyArn":""`) > maxAuditKeyARN || len(keyARN) > maxAuditKeyARN {
			dst = appendOmittedString(dst[:mark], `,"keyArnOmitted":`, keyARN)
		}
	}
	if len(ecKeys) > 0 {
		dst = appendContextKeys(dst, ecKeys)
	}
	if decidedBy != "" && len(decidedBy) <= maxAuditSid {
		dst = append(dst, `,"decidedBy":`...)
		dst = appendJSONString(dst, decidedBy)
	}
	if sid != "" && len(sid) <= maxAuditSid {
		dst = append(dst, `,"sid":`...)
		dst = appendJSONString(dst, sid)
	}
	dst = append(dst, `,"result":`...)
	return appendJSONString(dst, result)
}

// appendContextKeys appends encryptionContextKeys (the keys that fit) and
// encryptionContextKeysOmitted (a summary of the others), either absent
// when empty.
func appendContextKeys(dst []byte, keys []string) []byte {
	start := len(dst)
	dst = append(dst, `,"encryptionContextKeys":[`...)
	listed, omitted := 0, 0
	var h hash.Hash
	for _, k := range keys {
		if listed < maxAuditContextKeys && len(k) <= maxAuditContextKey {
			mark := len(dst)
			if listed > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			if len(dst)-mark-2-min(listed, 1) <= maxAuditContextKey {
				listed++
				continue
			}
			dst = dst[:mark]
		}
		if h == nil {
			h = sha256.New()
		}
		writeOmitted(h, k)
		omitted++
	}
	if listed == 0 {
		dst = dst[:start]
	} else {
		dst = append(dst, ']')
	}
	if omitted > 0 {
		dst = append(dst, `,"encryptionContextKeysOmitted":{"count":`...)
		dst = strconv.AppendInt(dst, int64(omitted), 10)
		dst = append(dst, `,"sha256":"`...)
		dst = hex.AppendEncode(dst, h.Sum(nil))
		dst = append(dst, `"}`...)
	}
	return dst
}

// appendOmittedString appends member (`,"name":`) as the summary of s.
func appendOmittedString(dst []byte, member, s string) []byte {
	h := sha256.New()
	writeOmitted(h, s)
	n := min(len(s), auditPrefixBytes)
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	dst = append(dst, member...)
	dst = append(dst, `{"bytes":`...)
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, `,"sha256":"`...)
	dst = hex.AppendEncode(dst, h.Sum(nil))
	dst = append(dst, '"')
	if n > 0 {
		dst = append(dst, `,"prefix":`...)
		dst = appendJSONString(dst, s[:n])
	}
	return append(dst, '}')
}

// writeOmitted adds a value left out to its digest: its length, 4 bytes
// big-endian, and its bytes.
func writeOmitted(h hash.Hash, s string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(s)))
	h.Write(n[:])
	io.WriteString(h, s)
}

// resumeRecord is what a resume record says.
type resumeRecord struct {
	failedAt                      time.Time
	err                           error
	attempts, refused             int64
	withheldFrom, withheldThrough int64
}

func (r *resumeRecord) appendTail(dst []byte, now time.Time) []byte {
	dst = appendAuditTime(dst, now)
	dst = append(dst, `,"type":"resume","failedAt":`...)
	dst = appendJSONString(dst, r.failedAt.UTC().Format(time.RFC3339Nano))
	dst = append(dst, `,"error":`...)
	dst = appendJSONString(dst, r.err.Error())
	dst = append(dst, `,"attempts":`...)
	dst = strconv.AppendInt(dst, r.attempts, 10)
	dst = append(dst, `,"refused":`...)
	dst = strconv.AppendInt(dst, r.refused, 10)
	if r.withheldThrough >= r.withheldFrom {
		dst = append(dst, `,"withheld":{"from":`...)
		dst = strconv.AppendInt(dst, r.withheldFrom, 10)
		dst = append(dst, `,"through":`...)
		dst = strconv.AppendInt(dst, r.withheldThrough, 10)
		dst = append(dst, '}')
	}
	return dst
}

// parseSeq parses the {"seq":N, that begins every line.
func parseSeq(b []byte) (int64, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"seq":`))
	if !ok {
		return 0, false
	}
	i := 0
	for i < len(rest) && i < 19 && '0' <= rest[i] && rest[i] <= '9' {
		i++
	}
	if i == 0 || i >= len(rest) || rest[i] != ',' || rest[0] == '0' {
		return 0, false
	}
	seq, err := strconv.ParseInt(string(rest[:i]), 10, 64)
	return seq, err == nil
}

// parseMACSuffix parses the ,"mac":"<64 hex digits>"} that ends every line.
func parseMACSuffix(suffix []byte) ([]byte, bool) {
	if len(suffix) != macSuffixLen || !bytes.HasPrefix(suffix, []byte(macField)) || !bytes.HasSuffix(suffix, []byte(`"}`)) {
		return nil, false
	}
	mac := make([]byte, 32)
	if _, err := hex.Decode(mac, suffix[len(macField):len(macField)+64]); err != nil {
		return nil, false
	}
	return mac, true
}
