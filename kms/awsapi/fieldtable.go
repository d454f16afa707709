package awsapi

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

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

// fields makes the table of the fields that list points to; it panics
// unless they are distinct fields of the value given, in order, of the
// kinds the fast codecs know (string, []byte, map[string]string, *int32),
// each a plain JSON member (a name and at most omitempty in its tag). It runs when the package is initialized, so
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
