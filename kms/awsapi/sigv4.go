package awsapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Authentication failures, with the names AWS answers them with.
const (
	CodeMissingAuthenticationToken = "MissingAuthenticationToken"
	CodeIncompleteSignature        = "IncompleteSignature"
	CodeInvalidSignature           = "InvalidSignatureException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
	CodeRequestExpired             = "RequestExpired"
	CodeAccessDenied               = "AccessDeniedException"
	// CodeThrottling answers a request the server is too busy for; AWS
	// SDKs retry it with backoff, as they do AWS KMS's own.
	CodeThrottling = "ThrottlingException"
)

// maxClockSkew is how far a request's X-Amz-Date may be from the server's
// clock.
const maxClockSkew = 15 * time.Minute

const sigv4Algorithm = "AWS4-HMAC-SHA256"

// authError is an authentication or authorization failure.
type authError struct {
	code, msg string
}

func (e *authError) Error() string { return e.code + ": " + e.msg }

// sigv4Request is what a request's Authorization header says. Its
// strings are parts of the request's headers.
type sigv4Request struct {
	credential    string // ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request
	accessKeyID   string
	date          string // yyyymmdd of the scope
	region        string
	service       string
	signedHeaders string // as sent: lower-case names, sorted, joined by ';'
	signature     [sha256.Size]byte
	amzDate       time.Time
	amzDateRaw    string
}

// parseAuthorization reads the SigV4 fields of a request.
func parseAuthorization(r *kmsRequest) (sigv4Request, error) {
	var sr sigv4Request
	auth := r.header.Get("Authorization")
	if auth == "" {
		return sr, &authError{CodeMissingAuthenticationToken, "Request is missing Authentication Token"}
	}
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != sigv4Algorithm {
		return sr, &authError{CodeIncompleteSignature, "Authorization header must use " + sigv4Algorithm}
	}
	var credential, signed, sig string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	if credential == "" || signed == "" || sig == "" {
		return sr, &authError{CodeIncompleteSignature, "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters"}
	}
	var scope [5]string
	if strings.Count(credential, "/") != 4 {
		return sr, &authError{CodeIncompleteSignature, "Credential must be ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request"}
	}
	rest = credential
	for i := range scope {
		scope[i], rest, _ = strings.Cut(rest, "/")
	}
	if scope[0] == "" {
		return sr, &authError{CodeIncompleteSignature, "Credential must be ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request"}
	}
	sr.credential = credential
	sr.accessKeyID, sr.date, sr.region, sr.service = scope[0], scope[1], scope[2], scope[3]
	if scope[4] != "aws4_request" {
		return sr, &authError{CodeIncompleteSignature, "Credential scope must end with aws4_request"}
	}
	prev := ""
	for i, h := range splitHeaders(signed) {
		if i > 0 && h < prev {
			return sr, &authError{CodeIncompleteSignature, "SignedHeaders must be sorted"}
		}
		prev = h
	}
	hasHost, hasTarget := false, false
	for _, h := range splitHeaders(signed) {
		if h == "" || !isLower(h) {
			return sr, &authError{CodeIncompleteSignature, "SignedHeaders must be lower-case header names"}
		}
		hasHost = hasHost || h == "host"
		hasTarget = hasTarget || h == "x-amz-target"
	}
	if !hasHost {
		return sr, &authError{CodeIncompleteSignature, "SignedHeaders must include host"}
	}
	if !hasTarget && r.header.Get("X-Amz-Target") != "" {
		// Otherwise a signed request could be replayed as another operation.
		return sr, &authError{CodeIncompleteSignature, "SignedHeaders must include x-amz-target"}
	}
	sr.signedHeaders = signed
	if len(sig) != 2*sha256.Size {
		return sr, &authError{CodeIncompleteSignature, "Signature must be 64 hex digits"}
	}
	for i := range sr.signature {
		hi, ok1 := fromHex(sig[2*i])
		lo, ok2 := fromHex(sig[2*i+1])
		if !ok1 || !ok2 {
			return sr, &authError{CodeIncompleteSignature, "Signature must be 64 hex digits"}
		}
		sr.signature[i] = hi<<4 | lo
	}
	sr.amzDateRaw = r.header.Get("X-Amz-Date")
	if sr.amzDateRaw == "" {
		return sr, &authError{CodeIncompleteSignature, "Authorization requires an X-Amz-Date header"}
	}
	t, err := time.Parse("20060102T150405Z", sr.amzDateRaw)
	if err != nil {
		return sr, &authError{CodeIncompleteSignature, "X-Amz-Date must be in the form 20060102T150405Z"}
	}
	sr.amzDate = t
	return sr, nil
}

// splitHeaders yields the names of a SignedHeaders value.
func splitHeaders(signed string) func(yield func(int, string) bool) {
	return func(yield func(int, string) bool) {
		i := 0
		for {
			h, rest, more := strings.Cut(signed, ";")
			if !yield(i, h) || !more {
				return
			}
			signed = rest
			i++
		}
	}
}

// fromHex decodes a hex digit of either case, as encoding/hex does.
func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isLower reports whether s == strings.ToLower(s), without allocating for
// ASCII.
func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return s == strings.ToLower(s)
		}
		if 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

// sigKey is a cached SigV4 signing key with HMACs keyed by it, ready for
// reuse.
type sigKey struct {
	key  []byte
	macs sync.Pool // hash.Hash: HMAC-SHA256 keyed with key
}

func newSigKey(key []byte) *sigKey {
	k := &sigKey{key: key}
	k.macs.New = func() any { return hmac.New(sha256.New, key) }
	return k
}

// checkScope checks the scope and the clock of a request: before its
// signing key is derived (and cached), so that only the server's own
// scopes are.
func (sr *sigv4Request) checkScope(region string, now time.Time) error {
	if sr.date != sr.amzDateRaw[:8] {
		return &authError{CodeInvalidSignature, "Credential should be scoped to the date of X-Amz-Date, " + sr.amzDateRaw[:8]}
	}
	if sr.region != region {
		return &authError{CodeInvalidSignature, "Credential should be scoped to a valid region, not '" + sr.region + "'; this server is in " + region}
	}
	if sr.service != "kms" {
		return &authError{CodeInvalidSignature, "Credential should be scoped to correct service: 'kms', not '" + sr.service + "'"}
	}
	if d := now.Sub(sr.amzDate); d > maxClockSkew || d < -maxClockSkew {
		return &authError{CodeRequestExpired, "Signature expired: " + sr.amzDateRaw + " is more than 15 minutes from the server's time " + now.UTC().Format("20060102T150405Z")}
	}
	return nil
}

// checkSignature checks the signature of a request whose scope passed
// checkScope, with its signing key. It builds the canonical request in
// scratch and returns it for reuse.
func (sr *sigv4Request) checkSignature(r *kmsRequest, key *sigKey, scratch []byte) ([]byte, error) {
	scratch, sts := sr.appendStringToSign(scratch[:0], r)
	mac := key.macs.Get().(hash.Hash)
	mac.Reset()
	mac.Write(sts)
	want := mac.Sum(scratch[len(scratch):]) // in scratch's spare room: a local array would escape
	key.macs.Put(mac)
	if !hmac.Equal(want, sr.signature[:]) {
		return scratch, &authError{CodeInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return scratch, nil
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// checkCredential checks what of a request's signature needs no body: the
// Authorization header's form, its access key (a principal's) and its
// scope (the date of X-Amz-Date, the server's region, service kms, the
// clock). It returns the parsed header and the principal.
func (s *Server) checkCredential(r *kmsRequest) (sigv4Request, *Principal, error) {
	sr, err := parseAuthorization(r)
	if err != nil {
		return sr, nil, err
	}
	p, ok := s.principals.Load().byKey[sr.accessKeyID]
	if !ok {
		return sr, nil, &authError{CodeUnrecognizedClient, "The security token included in the request is invalid."}
	}
	if err := sr.checkScope(s.cfg.Region, s.cfg.Now()); err != nil {
		return sr, nil, err
	}
	return sr, p, nil
}

// precheck is the check both front ends make before reading a large body:
// [Server.checkCredential], so that a request bound to be refused for its
// access key or scope is refused at once, without its body being waited
// for or held (the front end then answers it with [Server.handle], passing
// the error as the body's, and closes the connection). It returns nil for
// an unsigned request that InsecureDev lets through.
func (s *Server) precheck(r *kmsRequest) error {
	if s.cfg.InsecureDev && r.header.Get("Authorization") == "" {
		return nil
	}
	_, _, err := s.checkCredential(r)
	return err
}

// signingKey derives the SigV4 signing key for a secret and scope.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

// appendStringToSign appends the canonical request of r to dst, then the
// string to sign, which it also returns.
func (sr *sigv4Request) appendStringToSign(dst []byte, r *kmsRequest) (buf, sts []byte) {
	start := len(dst)
	creq := append(dst, r.method...)
	creq = append(creq, '\n')
	if r.rawPath == "" {
		creq = append(creq, '/')
	} else {
		creq = append(creq, r.rawPath...)
	}
	creq = append(creq, '\n')
	if r.rawQuery != "" {
		q, _ := url.ParseQuery(r.rawQuery)
		creq = append(creq, canonicalQuery(q)...)
	}
	creq = append(creq, '\n')
	for _, h := range splitHeaders(sr.signedHeaders) {
		creq = append(creq, h...)
		creq = append(creq, ':')
		creq = appendHeaderValue(creq, r, h)
		creq = append(creq, '\n')
	}
	creq = append(creq, '\n')
	creq = append(creq, sr.signedHeaders...)
	creq = append(creq, '\n')
	sum := sha256.Sum256(r.body)
	creq = hex.AppendEncode(creq, sum[:])
	sum = sha256.Sum256(creq[start:])
	buf = append(creq, sigv4Algorithm+"\n"...)
	stsStart := len(creq)
	buf = append(buf, sr.amzDateRaw...)
	buf = append(buf, '\n')
	buf = append(buf, sr.credential[len(sr.accessKeyID)+1:]...) // date/region/service/aws4_request
	buf = append(buf, '\n')
	buf = hex.AppendEncode(buf, sum[:])
	return buf, buf[stsStart:]
}

// canonicalQuery sorts the parameters by encoded name, then encoded value.
func canonicalQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	var pairs [][2]string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, [2]string{awsEscape(k), awsEscape(v)})
		}
	}
	slices.SortFunc(pairs, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p[0] + "=" + p[1])
	}
	return b.String()
}

// awsEscape percent-encodes everything but unreserved characters, as SigV4
// requires.
func awsEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

// appendHeaderValue appends a signed header's canonical value: values
// trimmed, runs of spaces folded, several values joined by commas. Host
// and Content-Length are the request's (net/http keeps them outside the
// header map).
func appendHeaderValue(dst []byte, r *kmsRequest, name string) []byte {
	switch name {
	case "host":
		return append(dst, r.host...)
	case "content-length":
		return strconv.AppendInt(dst, r.contentLength, 10)
	}
	first := true
	for _, f := range r.header {
		if !f.HasName(name) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendFoldedSpaces(dst, strings.Trim(f.Value, " "))
	}
	return dst
}

// appendFoldedSpaces appends s with runs of spaces turned into one, as
// SigV4 canonicalization does (other whitespace is kept).
func appendFoldedSpaces(dst []byte, s string) []byte {
	if !strings.Contains(s, "  ") {
		return append(dst, s...)
	}
	prev := false
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && prev {
			continue
		}
		prev = s[i] == ' '
		dst = append(dst, s[i])
	}
	return dst
}
