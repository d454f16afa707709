package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"time"
)

// signer makes SigV4 (AWS4-HMAC-SHA256) signatures for AWS JSON 1.1 POST
// requests to path "/" with no query, the only shape the KMS API uses. It
// signs content-type, host, x-amz-date and x-amz-target, as the AWS SDKs do
// for KMS. The derived signing key is cached per day; a signer is not safe
// for concurrent use (each connection has its own).
type signer struct {
	accessKeyID, secret, region, service, host string

	day string // yyyymmdd of key
	key []byte

	mac  hash.Hash // HMAC-SHA256 under key
	sha  hash.Hash
	buf  []byte
	hexb [64]byte
}

const (
	contentType   = "application/x-amz-json-1.1"
	signedHeaders = "content-type;host;x-amz-date;x-amz-target"
	amzDateLayout = "20060102T150405Z"
)

func newSigner(accessKeyID, secret, region, host string) *signer {
	return &signer{accessKeyID: accessKeyID, secret: secret, region: region, service: "kms", host: host, sha: sha256.New()}
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signingKey returns the key for day (yyyymmdd), derived once per day.
func (s *signer) signingKey(day string) []byte {
	if s.day != day {
		k := hmacSHA256([]byte("AWS4"+s.secret), day)
		k = hmacSHA256(k, s.region)
		k = hmacSHA256(k, s.service)
		s.key = hmacSHA256(k, "aws4_request")
		s.day = day
		s.mac = hmac.New(sha256.New, s.key)
	}
	return s.key
}

func (s *signer) hexSHA256(b []byte) string {
	s.sha.Reset()
	s.sha.Write(b)
	var sum [32]byte
	hex.Encode(s.hexb[:], s.sha.Sum(sum[:0]))
	return string(s.hexb[:])
}

// authorization returns the Authorization header value of a request for
// target (e.g. "TrentService.GenerateDataKey") with body, dated amzDate.
func (s *signer) authorization(amzDate, target string, body []byte) string {
	day := amzDate[:8]
	s.signingKey(day)
	scope := day + "/" + s.region + "/" + s.service + "/aws4_request"
	// The canonical request.
	b := s.buf[:0]
	b = append(b, "POST\n/\n\ncontent-type:"+contentType+"\nhost:"...)
	b = append(b, s.host...)
	b = append(b, "\nx-amz-date:"...)
	b = append(b, amzDate...)
	b = append(b, "\nx-amz-target:"...)
	b = append(b, target...)
	b = append(b, "\n\n"+signedHeaders+"\n"...)
	b = append(b, s.hexSHA256(body)...)
	creq := s.hexSHA256(b)
	// The string to sign.
	b = b[:0]
	b = append(b, "AWS4-HMAC-SHA256\n"...)
	b = append(b, amzDate...)
	b = append(b, '\n')
	b = append(b, scope...)
	b = append(b, '\n')
	b = append(b, creq...)
	s.mac.Reset()
	s.mac.Write(b)
	var sum [32]byte
	var sig [64]byte
	hex.Encode(sig[:], s.mac.Sum(sum[:0]))
	s.buf = b
	return "AWS4-HMAC-SHA256 Credential=" + s.accessKeyID + "/" + scope +
		", SignedHeaders=" + signedHeaders + ", Signature=" + string(sig[:])
}

// request returns the complete HTTP/1.1 request bytes for target and body,
// signed at time now (unless s.accessKeyID is empty: then unsigned).
func (s *signer) request(dst []byte, now time.Time, target string, body []byte) []byte {
	amzDate := now.UTC().Format(amzDateLayout)
	dst = append(dst, "POST / HTTP/1.1\r\nHost: "...)
	dst = append(dst, s.host...)
	dst = append(dst, "\r\nContent-Type: "+contentType+"\r\nX-Amz-Target: "...)
	dst = append(dst, target...)
	dst = append(dst, "\r\nX-Amz-Date: "...)
	dst = append(dst, amzDate...)
	if s.accessKeyID != "" {
		dst = append(dst, "\r\nAuthorization: "...)
		dst = append(dst, s.authorization(amzDate, target, body)...)
	}
	dst = append(dst, "\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}
