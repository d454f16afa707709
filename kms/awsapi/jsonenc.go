package awsapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"

	"github.com/envelopekms/envelope/kms"
)

// The hot operations' answers and the audit lines are encoded by hand:
// encoding/json's reflection costs more than the rest of their encoding.
// Each function here appends exactly what encoding/json would
// (jsonenc_test.go checks them against it).

// appendJSONString appends s as encoding/json encodes a string: quoted,
// with <, > and & escaped, invalid UTF-8 replaced.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonPlain(s[i]) {
			b, _ := json.Marshal(s) // cannot fail for a string
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// jsonPlain reports whether encoding/json writes c, in a string, as it is.
func jsonPlain(c byte) bool {
	return 0x20 <= c && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// appendJSONBytes appends b as encoding/json encodes a []byte: a base64
// string, or null for nil.
func appendJSONBytes(dst []byte, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// flatDecoder decodes the common shape of the hot operations' inputs: one
// JSON object whose members are strings of printable ASCII without
// escapes, small non-negative integers, or objects of such strings. Each
// method reports false for anything else (and the caller then decodes the
// body with encoding/json, which gives the same result or the error), so
// what it accepts is valid JSON and decodes as encoding/json would.
type flatDecoder struct {
	b     []byte
	i     int
	first bool
}

func (d *flatDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// consume skips white space and c, reporting whether c was there.
func (d *flatDecoder) consume(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// begin starts the object.
func (d *flatDecoder) begin(b []byte) bool {
	d.b, d.i, d.first = b, 0, true
	return d.consume('{')
}

// str returns d.b[i:j] as a string of its own: a slice of one copy of the
// whole body would keep the body alive for as long as any of its strings
// (a key id held by the key cache, say).
func (d *flatDecoder) str(i, j int) string {
	return string(d.b[i:j])
}

// member reads the next member's name and its colon; done reports the end
// of the object (and of the input), ok false anything unexpected.
func (d *flatDecoder) member() (name []byte, done, ok bool) {
	if d.consume('}') {
		d.ws()
		return nil, true, d.i == len(d.b)
	}
	if !d.first && !d.consume(',') {
		return nil, false, false
	}
	d.first = false
	i, j, ok := d.plain()
	return d.b[i:j], false, ok && d.consume(':')
}

// plain reads a string of printable ASCII without escapes, and returns
// where its contents are in d.b.
func (d *flatDecoder) plain() (i, j int, ok bool) {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return 0, 0, false
	}
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			return start, j, true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return 0, 0, false
		}
	}
	return 0, 0, false
}

func (d *flatDecoder) string() (string, bool) {
	i, j, ok := d.plain()
	if !ok {
		return "", false
	}
	return d.str(i, j), true
}

// bytes reads a base64 string, as encoding/json decodes a []byte.
func (d *flatDecoder) bytes() ([]byte, bool) {
	i, j, ok := d.plain()
	if !ok {
		return nil, false
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(j-i))
	n, err := base64.StdEncoding.Decode(b, d.b[i:j])
	return b[:n], err == nil
}

// int32 reads a number from 0 to 999999999 in plain digits.
func (d *flatDecoder) int32() (*int32, bool) {
	d.ws()
	start := d.i
	var n int32
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' && d.i-start < 9 {
		n = n*10 + int32(d.b[d.i]-'0')
		d.i++
	}
	digits := d.i - start
	if digits == 0 || digits > 1 && d.b[start] == '0' || d.i < len(d.b) && bytes.IndexByte([]byte(" \t\r\n,}"), d.b[d.i]) < 0 {
		return nil, false
	}
	return &n, true
}

// stringMap reads an object of strings, as encoding/json decodes a
// map[string]string (the last of repeated names wins).
func (d *flatDecoder) stringMap() (map[string]string, bool) {
	if !d.consume('{') {
		return nil, false
	}
	m := map[string]string{}
	if d.consume('}') {
		return m, true
	}
	for {
		ki, kj, ok := d.plain()
		if !ok || !d.consume(':') {
			return nil, false
		}
		vi, vj, ok := d.plain()
		if !ok {
			return nil, false
		}
		m[d.str(ki, kj)] = d.str(vi, vj)
		if d.consume('}') {
			return m, true
		}
		if !d.consume(',') {
			return nil, false
		}
	}
}

// Fast decoders of the hot operations' inputs; each member may appear once.

func decodeGenerateDataKey(body []byte, in *kms.GenerateDataKeyInput) bool {
	var d flatDecoder
	if !d.begin(body) {
		return false
	}
	var seen uint
	for {
		name, done, ok := d.member()
		if done || !ok {
			return ok
		}
		var bit uint
		switch string(name) {
		case "KeyId":
			bit = 1
			in.KeyId, ok = d.string()
		case "EncryptionContext":
			bit = 2
			in.EncryptionContext, ok = d.stringMap()
		case "NumberOfBytes":
			bit = 4
			in.NumberOfBytes, ok = d.int32()
		case "KeySpec":
			bit = 8
			in.KeySpec, ok = d.string()
		}
		if bit == 0 || seen&bit != 0 || !ok {
			return false
		}
		seen |= bit
	}
}

func decodeDecrypt(body []byte, in *kms.DecryptInput) bool {
	var d flatDecoder
	if !d.begin(body) {
		return false
	}
	var seen uint
	for {
		name, done, ok := d.member()
		if done || !ok {
			return ok
		}
		var bit uint
		switch string(name) {
		case "CiphertextBlob":
			bit = 1
			in.CiphertextBlob, ok = d.bytes()
		case "EncryptionContext":
			bit = 2
			in.EncryptionContext, ok = d.stringMap()
		case "KeyId":
			bit = 4
			in.KeyId, ok = d.string()
		case "EncryptionAlgorithm":
			bit = 8
			in.EncryptionAlgorithm, ok = d.string()
		}
		if bit == 0 || seen&bit != 0 || !ok {
			return false
		}
		seen |= bit
	}
}

func decodeEncrypt(body []byte, in *kms.EncryptInput) bool {
	var d flatDecoder
	if !d.begin(body) {
		return false
	}
	var seen uint
	for {
		name, done, ok := d.member()
		if done || !ok {
			return ok
		}
		var bit uint
		switch string(name) {
		case "KeyId":
			bit = 1
			in.KeyId, ok = d.string()
		case "Plaintext":
			bit = 2
			in.Plaintext, ok = d.bytes()
		case "EncryptionContext":
			bit = 4
			in.EncryptionContext, ok = d.stringMap()
		case "EncryptionAlgorithm":
			bit = 8
			in.EncryptionAlgorithm, ok = d.string()
		}
		if bit == 0 || seen&bit != 0 || !ok {
			return false
		}
		seen |= bit
	}
}

// Encoders of the hot operations' outputs, member for member as
// encoding/json orders and omits them.

func encodeGenerateDataKey(dst []byte, out *kms.GenerateDataKeyOutput) []byte {
	dst = append(dst, `{"CiphertextBlob":`...)
	dst = appendJSONBytes(dst, out.CiphertextBlob)
	dst = append(dst, `,"Plaintext":`...)
	dst = appendJSONBytes(dst, out.Plaintext)
	dst = append(dst, `,"KeyId":`...)
	dst = appendJSONString(dst, out.KeyId)
	if out.KeyMaterialId != "" {
		dst = append(dst, `,"KeyMaterialId":`...)
		dst = appendJSONString(dst, out.KeyMaterialId)
	}
	return append(dst, '}')
}

func encodeDecrypt(dst []byte, out *kms.DecryptOutput) []byte {
	dst = append(dst, `{"KeyId":`...)
	dst = appendJSONString(dst, out.KeyId)
	dst = append(dst, `,"Plaintext":`...)
	dst = appendJSONBytes(dst, out.Plaintext)
	dst = append(dst, `,"EncryptionAlgorithm":`...)
	dst = appendJSONString(dst, out.EncryptionAlgorithm)
	if out.KeyMaterialId != "" {
		dst = append(dst, `,"KeyMaterialId":`...)
		dst = appendJSONString(dst, out.KeyMaterialId)
	}
	return append(dst, '}')
}

func encodeEncrypt(dst []byte, out *kms.EncryptOutput) []byte {
	dst = append(dst, `{"CiphertextBlob":`...)
	dst = appendJSONBytes(dst, out.CiphertextBlob)
	dst = append(dst, `,"KeyId":`...)
	dst = appendJSONString(dst, out.KeyId)
	dst = append(dst, `,"EncryptionAlgorithm":`...)
	dst = appendJSONString(dst, out.EncryptionAlgorithm)
	return append(dst, '}')
}
