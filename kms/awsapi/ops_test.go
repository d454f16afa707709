package awsapi

import (
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// methodName returns the name of the function the entry runs, as the
// runtime knows it ("…/kms.API.Encrypt" for the method expression).
func (s *spec[In, Out]) methodName() string {
	return runtime.FuncForPC(reflect.ValueOf(s.method).Pointer()).Name()
}

// TestOperationsTable: the table serves every method of kms.API, each
// under its own name and by that method, and nothing else.
func TestOperationsTable(t *testing.T) {
	api := reflect.TypeFor[kms.API]()
	if len(operations) != api.NumMethod() {
		t.Errorf("the table has %d operations, kms.API %d methods", len(operations), api.NumMethod())
	}
	var indexes []int
	for i := range api.NumMethod() {
		name := api.Method(i).Name
		o, ok := operations[name]
		if !ok {
			t.Errorf("kms.API.%s is not in the table", name)
			continue
		}
		indexes = append(indexes, o.index)
		s, ok := o.spec.(interface{ methodName() string })
		if !ok {
			t.Fatalf("%s: the entry's spec is a %T", name, o.spec)
		}
		if got := s.methodName(); !strings.HasSuffix(got, "/kms.API."+name) {
			t.Errorf("operation %s runs %s, want kms.API.%s", name, got, name)
		}
		if o.name != name || o.call == nil {
			t.Errorf("operation %s: entry named %q, call set %v", name, o.name, o.call != nil)
		}
	}
	slices.Sort(indexes)
	for i, x := range indexes {
		if x != i+1 {
			t.Fatalf("operation indexes %v, want 1 to %d (0 is unknownOperation)", indexes, len(operations))
		}
	}
}

// panicOf returns what f panics with, or "" if it returns.
func panicOf(f func()) (msg string) {
	defer func() {
		if v := recover(); v != nil {
			msg = fmt.Sprint(v)
		}
	}()
	f()
	return ""
}

// TestFieldTables: a field table names its members as encoding/json names
// the fields, encodes only if it lists every field, and is refused when
// made unless it lists distinct fields of the value given, in order, of
// the kinds the fast codecs know.
func TestFieldTables(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func()
		want string // in the panic; "" for none
	}{
		{"another value's field", func() {
			var other kms.EncryptInput
			fields(func(in *kms.EncryptInput) fieldList { return fieldList{&other.KeyId} })
		}, "member 1 is not a field of the value given"},
		{"out of order", func() {
			fields(func(in *kms.EncryptInput) fieldList { return fieldList{&in.Plaintext, &in.KeyId} })
		}, "member 2 is not a field of the value given, or not in order"},
		{"twice", func() {
			fields(func(in *kms.EncryptInput) fieldList { return fieldList{&in.KeyId, &in.KeyId} })
		}, "member 2 is not a field"},
		{"a struct", func() {
			fields(func(out *kms.DescribeKeyOutput) fieldList { return fieldList{&out.KeyMetadata} })
		}, "field KeyMetadata is a *kms.KeyMetadata, which the fast codecs do not read"},
		{"a []string", func() {
			fields(func(in *kms.EncryptInput) fieldList { return fieldList{&in.GrantTokens} })
		}, "field GrantTokens is a []string, which the fast codecs do not read"},
		{"a bool", func() {
			fields(func(in *kms.EncryptInput) fieldList { return fieldList{&in.DryRun} })
		}, "field DryRun is a bool"},
		{"a gap", func() {
			fields(func(in *kms.EncryptInput) fieldList { return fieldList{&in.KeyId, nil, &in.Plaintext} })
		}, "member 2 is nil, and members follow it"},
		{"not a struct", func() {
			fields(func(s *string) fieldList { return fieldList{s} })
		}, "not a struct"},
	} {
		got := panicOf(tc.make)
		if got == "" || !strings.Contains(got, tc.want) {
			t.Errorf("%s: panic %q, want %q", tc.name, got, tc.want)
		}
	}

	tagged := fields(func(in *kms.DecryptInput) fieldList { return fieldList{&in.CiphertextBlob, &in.KeyId} })
	if got := []member{{"CiphertextBlob", `"CiphertextBlob":`, false}, {"KeyId", `"KeyId":`, true}}; !slices.Equal(tagged.members, got) {
		t.Errorf("members %+v, want %+v", tagged.members, got)
	}
	for _, tc := range []struct {
		name    string
		encodes bool
	}{
		{"Encrypt", true}, {"Decrypt", true}, {"GenerateDataKey", true},
	} {
		if got := operations[tc.name].spec.(fastCodecs).encodes(); got != tc.encodes {
			t.Errorf("%s's output table encodes = %v, want %v", tc.name, got, tc.encodes)
		}
	}
	for _, tc := range []struct {
		name    string
		encodes bool
		want    bool
	}{
		{"a field missing", fields(func(out *kms.EncryptOutput) fieldList { return fieldList{&out.CiphertextBlob, &out.KeyId} }).encodes, false},
		{"a map and an *int32", generateDataKeyInput.encodes, false},
		{"every field, strings", fields(func(in *kms.CreateAliasInput) fieldList { return fieldList{&in.AliasName, &in.TargetKeyId} }).encodes, true},
	} {
		if tc.encodes != tc.want {
			t.Errorf("table with %s: encodes = %v, want %v", tc.name, tc.encodes, tc.want)
		}
	}
}

// TestOpRefuses: a wrong entry stops the package's initialization.
func TestOpRefuses(t *testing.T) {
	keyID := func(in *kms.DescribeKeyInput) string { return in.KeyId }
	for _, tc := range []struct {
		name string
		make func()
		want string
	}{
		{"a fact about another input", func() {
			op("Encrypt", kms.API.Encrypt, key(keyID))
		}, "operation Encrypt: a fact about kms.DescribeKeyInput"},
		{"a fact about another output", func() {
			op("DescribeKey", kms.API.DescribeKey, key(keyID), arn(func(out *kms.EncryptOutput) string { return out.KeyId }))
		}, "operation DescribeKey: a fact about kms.EncryptOutput"},
		{"no scope", func() {
			op("DescribeKey", kms.API.DescribeKey, arn(func(out *kms.DescribeKeyOutput) string { return out.KeyMetadata.Arn }))
		}, "operation DescribeKey: no scope declared"},
		{"two scopes", func() {
			op("DescribeKey", kms.API.DescribeKey, key(keyID), noKey)
		}, "operation DescribeKey: its scope (key, keyOrNone or noKey) is declared twice"},
		{"an output table that cannot encode", func() {
			op("Encrypt", kms.API.Encrypt, noKey, fast(encryptInput, fields(func(out *kms.EncryptOutput) fieldList { return fieldList{&out.KeyId} })))
		}, "operation Encrypt: the field table of kms.EncryptOutput cannot encode it"},
		{"fast codecs of other types", func() {
			op("Decrypt", kms.API.Decrypt, noKey, fast(encryptInput, encryptOutput))
		}, "operation Decrypt: fast codecs of kms.EncryptInput and kms.EncryptOutput"},
		{"a name twice", func() {
			table(op("ListKeys", kms.API.ListKeys, noKey), op("ListKeys", kms.API.ListKeys, noKey))
		}, "operation ListKeys is declared twice"},
	} {
		if got := panicOf(tc.make); !strings.Contains(got, tc.want) {
			t.Errorf("%s: panic %q, want %q", tc.name, got, tc.want)
		}
	}
}
