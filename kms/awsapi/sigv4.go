package awsapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Authentication failures, with the names AWS answers them with.
const (
	CodeMissingAuthenticationToken = "MissingAuthenticationToken"
	CodeIncompleteSignature        = "IncompleteSignature"
	CodeInvalidSignature           = "InvalidSignatureException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
	CodeRequestExpired             = "RequestExpired"
	CodeAccessDenied               = "AccessDeniedException"
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

// sigv4Request is what a request's Authorization header says.
type sigv4Request struct {
	accessKeyID   string
	date          string // yyyymmdd of the scope
	region        string
	service       string
	signedHeaders []string
	signature     []byte
	amzDate       time.Time
	amzDateRaw    string
}

// parseAuthorization reads the SigV4 fields of a request.
func parseAuthorization(r *http.Request) (*sigv4Request, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return nil, &authError{CodeMissingAuthenticationToken, "Request is missing Authentication Token"}
	}
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != sigv4Algorithm {
		return nil, &authError{CodeIncompleteSignature, "Authorization header must use " + sigv4Algorithm}
	}
	sr := &sigv4Request{}
	var credential, signed, sig string
	for _, part := range strings.Split(rest, ",") {
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
		return nil, &authError{CodeIncompleteSignature, "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters"}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[0] == "" {
		return nil, &authError{CodeIncompleteSignature, "Credential must be ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request"}
	}
	sr.accessKeyID, sr.date, sr.region, sr.service = scope[0], scope[1], scope[2], scope[3]
	if scope[4] != "aws4_request" {
		return nil, &authError{CodeIncompleteSignature, "Credential scope must end with aws4_request"}
	}
	sr.signedHeaders = strings.Split(signed, ";")
	if !sort.StringsAreSorted(sr.signedHeaders) {
		return nil, &authError{CodeIncompleteSignature, "SignedHeaders must be sorted"}
	}
	hasHost := false
	for _, h := range sr.signedHeaders {
		if h != strings.ToLower(h) || h == "" {
			return nil, &authError{CodeIncompleteSignature, "SignedHeaders must be lower-case header names"}
		}
		hasHost = hasHost || h == "host"
	}
	if !hasHost {
		return nil, &authError{CodeIncompleteSignature, "SignedHeaders must include host"}
	}
	if r.Header.Get("X-Amz-Target") != "" && !slices.Contains(sr.signedHeaders, "x-amz-target") {
		// Otherwise a signed request could be replayed as another operation.
		return nil, &authError{CodeIncompleteSignature, "SignedHeaders must include x-amz-target"}
	}
	b, err := hex.DecodeString(sig)
	if err != nil || len(b) != sha256.Size {
		return nil, &authError{CodeIncompleteSignature, "Signature must be 64 hex digits"}
	}
	sr.signature = b
	sr.amzDateRaw = r.Header.Get("X-Amz-Date")
	if sr.amzDateRaw == "" {
		return nil, &authError{CodeIncompleteSignature, "Authorization requires an X-Amz-Date header"}
	}
	t, err := time.Parse("20060102T150405Z", sr.amzDateRaw)
	if err != nil {
		return nil, &authError{CodeIncompleteSignature, "X-Amz-Date must be in the form 20060102T150405Z"}
	}
	sr.amzDate = t
	return sr, nil
}

// verify checks the scope, the clock and the signature of a request whose
// body is body, for the secret of its access key.
func (sr *sigv4Request) verify(r *http.Request, body []byte, key func() []byte, region string, now time.Time) error {
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
	want := signature(key(), sr.stringToSign(r, body))
	if !hmac.Equal(want, sr.signature) {
		return &authError{CodeInvalidSignature, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// signingKey derives the SigV4 signing key for a secret and scope.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func signature(key []byte, stringToSign string) []byte { return hmacSHA256(key, stringToSign) }

// stringToSign rebuilds the canonical request and the string to sign.
func (sr *sigv4Request) stringToSign(r *http.Request, body []byte) string {
	var b strings.Builder
	b.Grow(512)
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL))
	b.WriteByte('\n')
	if r.URL.RawQuery != "" {
		b.WriteString(canonicalQuery(r.URL.Query()))
	}
	b.WriteByte('\n')
	for _, h := range sr.signedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(headerValue(r, h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(sr.signedHeaders, ";"))
	b.WriteByte('\n')
	sum := sha256.Sum256(body)
	b.WriteString(hex.EncodeToString(sum[:]))
	creq := sha256.Sum256([]byte(b.String()))
	return sigv4Algorithm + "\n" + sr.amzDateRaw + "\n" + sr.date + "/" + sr.region + "/" + sr.service + "/aws4_request\n" + hex.EncodeToString(creq[:])
}

func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return p
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

// headerValue returns a signed header's canonical value: values trimmed,
// runs of spaces folded, several values joined by commas. Go keeps Host and
// Content-Length outside the header map.
func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		return strconv.FormatInt(r.ContentLength, 10)
	}
	vs := slices.Clone(r.Header.Values(name))
	for i, v := range vs {
		vs[i] = foldSpaces(strings.Trim(v, " "))
	}
	return strings.Join(vs, ",")
}

// foldSpaces turns runs of spaces into one, as SigV4 canonicalization does
// (other whitespace is kept).
func foldSpaces(s string) string {
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	prev := false
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && prev {
			continue
		}
		prev = s[i] == ' '
		b.WriteByte(s[i])
	}
	return b.String()
}
