package awsapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
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

// maxFields bounds the fields a [fieldTable] lists.
const maxFields = 8

// fieldList is what a [fieldTable]'s function returns: pointers to fields
// of one value, then nils.
type fieldList [maxFields]any

// fieldTable is the JSON members of a struct type T that the fast codecs
// read or write, each with the field it goes to. It is declared by a
// function that returns pointers to the fields of a T, in the order of
// T's fields:
//
//	fields(func(in *kms.EncryptInput) fieldList {
//		return fieldList{&in.KeyId, &in.Plaintext, &in.EncryptionContext}
//	})
//
// and checked when it is made: each pointer must be to a distinct field
// of the T given. A member's name, and whether it is omitted when empty,
// are read from the field's json tag, as encoding/json reads them.
//
// Any table decodes (the members it does not list are left to
// encoding/json); a table that lists every field of T, each a string or a
// []byte, also encodes.
type fieldTable[T any] struct {
	list    func(*T) fieldList
	members []member
	// encodes: the table lists every field of T, each a string or a
	// []byte, so encode writes all that encoding/json would.
	encodes bool
}

// member is one member of a [fieldTable].
type member struct {
	name      string // as encoding/json names it
	key       string // name, encoded, and a colon
	omitEmpty bool
}

// fields makes the table of the fields list returns; it panics unless
// they are distinct fields of the value given, in order, of the kinds the
// fast codecs know (string, []byte, map[string]string, *int32), named as
// encoding/json names them. It runs when the package is initialized, so
// a wrong table stops every test.
func fields[T any](list func(*T) fieldList) *fieldTable[T] {
	t := &fieldTable[T]{list: list}
	v := reflect.ValueOf(new(T)).Elem()
	typ := v.Type()
	if typ.Kind() != reflect.Struct {
		panic(fmt.Sprintf("awsapi: field table of %v: not a struct", typ))
	}
	next, encodes := 0, true
	ptrs := list(v.Addr().Interface().(*T))
	for k, p := range ptrs {
		if p == nil {
			if slices.ContainsFunc(ptrs[k:], func(p any) bool { return p != nil }) {
				panic(fmt.Sprintf("awsapi: field table of %v: member %d is nil, and members follow it", typ, k+1))
			}
			break
		}
		i := next
		for i < typ.NumField() && v.Field(i).Addr().Interface() != p {
			i++
		}
		if i == typ.NumField() {
			panic(fmt.Sprintf("awsapi: field table of %v: member %d is not a field of the value given, or not in order", typ, len(t.members)+1))
		}
		sf := typ.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "" {
			name = sf.Name
		}
		if !sf.IsExported() || sf.Anonymous || name == "-" || opts != "" && opts != "omitempty" {
			panic(fmt.Sprintf("awsapi: field table of %v: field %s is not a plain JSON member", typ, sf.Name))
		}
		switch p.(type) {
		case *string, *[]byte:
		case *map[string]string, **int32:
			encodes = false
		default:
			panic(fmt.Sprintf("awsapi: field table of %v: field %s is a %v, which the fast codecs do not read", typ, sf.Name, sf.Type))
		}
		if i > next {
			encodes = false // a field is missing
		}
		key := appendJSONString(nil, name)
		t.members = append(t.members, member{name: name, key: string(append(key, ':')), omitEmpty: opts == "omitempty"})
		next = i + 1
	}
	t.encodes = encodes && next == typ.NumField()
	return t
}

// decode decodes body into v, as encoding/json would, if body is a JSON
// object of the members t lists, each at most once, in the shapes
// [flatDecoder] reads; it reports false for anything else, leaving v
// partly set.
func (t *fieldTable[T]) decode(body []byte, v *T) bool {
	var d flatDecoder
	if !d.begin(body) {
		return false
	}
	ptrs := t.list(v)
	var seen uint
	for {
		name, done, ok := d.member()
		if done || !ok {
			return ok
		}
		i := t.index(name)
		if i < 0 || seen&(1<<i) != 0 || !d.value(ptrs[i]) {
			return false
		}
		seen |= 1 << i
	}
}

// index returns the index of the member named name, or -1.
func (t *fieldTable[T]) index(name []byte) int {
	for i := range t.members {
		if t.members[i].name == string(name) {
			return i
		}
	}
	return -1
}

// encode appends v's JSON exactly as encoding/json would encode it: its
// members in order, those tagged omitempty left out when empty. Only a
// table that encodes (t.encodes) may be used.
func (t *fieldTable[T]) encode(dst []byte, v *T) []byte {
	ptrs := t.list(v)
	sep := byte('{')
	for i, m := range t.members {
		switch p := ptrs[i].(type) {
		case *string:
			if m.omitEmpty && *p == "" {
				continue
			}
			dst = append(append(dst, sep), m.key...)
			dst = appendJSONString(dst, *p)
		case *[]byte:
			if m.omitEmpty && len(*p) == 0 {
				continue
			}
			dst = append(append(dst, sep), m.key...)
			dst = appendJSONBytes(dst, *p)
		}
		sep = ','
	}
	if sep == '{' {
		dst = append(dst, sep)
	}
	return append(dst, '}')
}
