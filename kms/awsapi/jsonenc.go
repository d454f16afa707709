package awsapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
)

// The JSON of the hot paths, without encoding/json, whose reflection costs
// more than the rest of their work: the hot operations' requests and
// answers (through their field tables, fieldtable.go) and the audit lines
// (audit.go). Each function here appends exactly what encoding/json
// would, and flatDecoder decodes as it would or declines (jsonenc_test.go
// checks them against it).

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

// value decodes a member's value into the field p points to (a field of
// a [fieldTable]).
func (d *flatDecoder) value(p any) bool {
	var ok bool
	switch p := p.(type) {
	case *string:
		*p, ok = d.string()
	case *[]byte:
		*p, ok = d.bytes()
	case *map[string]string:
		*p, ok = d.stringMap()
	case **int32:
		*p, ok = d.int32()
	}
	return ok
}
