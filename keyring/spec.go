package keyring

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// SpecHelp describes the key forms [FromSpec] accepts, for command help.
const SpecHelp = `  aes:file=PATH,namespace=NS,name=NAME
      a raw AES key: PATH holds 16, 24 or 32 bytes, raw or base64
      ("envelope keygen aes" makes one). NS and NAME are recorded in the
      message; decryption needs a key given with the same two.
  rsa:file=PATH,namespace=NS,name=NAME[,padding=P]
      a raw RSA key (2048 bits or more) in PEM: a public key (SPKI or PKCS #1)
      can encrypt, a private key (PKCS #8 or PKCS #1) can encrypt and decrypt.
      P is oaep-sha256 (default), oaep-sha1, oaep-sha384, oaep-sha512 or pkcs1.
`

// SpecError reports a key spec that is not well formed.
type SpecError struct {
	Spec, Reason string
}

func (e *SpecError) Error() string { return fmt.Sprintf("key %q: %s", e.Spec, e.Reason) }

// fieldLike matches what looks like a field name, to tell a misspelt field
// from a comma inside a path.
var fieldLike = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

var specFields = map[string][]string{
	"aes": {"file", "namespace", "name"},
	"rsa": {"file", "namespace", "name", "padding"},
}

// IsSpec reports whether s has the form of a raw key spec (aes:... or
// rsa:...), as opposed to, say, a KMS key name.
func IsSpec(s string) bool {
	kind, _, ok := strings.Cut(s, ":")
	_, known := specFields[kind]
	return ok && known
}

// parseSpec splits KIND:field=value,field=value. A comma followed by text
// that does not look like a field belongs to a preceding file= value, so
// paths may contain commas.
func parseSpec(s string) (kind string, fields map[string]string, err error) {
	kind, rest, ok := strings.Cut(s, ":")
	allowed, known := specFields[kind]
	if !ok || !known {
		return "", nil, &SpecError{s, "unknown key form; want aes:file=PATH,namespace=NS,name=NAME or rsa:file=PATH,namespace=NS,name=NAME[,padding=P]"}
	}
	fields = map[string]string{}
	last := ""
	for _, part := range strings.Split(rest, ",") {
		name, value, hasEq := strings.Cut(part, "=")
		if hasEq && slices.Contains(allowed, name) {
			if _, dup := fields[name]; dup {
				return "", nil, &SpecError{s, name + "= given twice"}
			}
			fields[name] = value
			last = name
			continue
		}
		if hasEq && slices.Contains(specFields["rsa"], name) {
			return "", nil, &SpecError{s, fmt.Sprintf("%s= is not a field of %s keys (want %s)", name, kind, strings.Join(allowed, ", "))}
		}
		// Only a path may contain commas; anything else is a mistake
		// (a misspelt field must not silently become part of a name).
		if last != "file" || hasEq && fieldLike.MatchString(name) && !strings.ContainsRune(part, '/') {
			return "", nil, &SpecError{s, fmt.Sprintf("unknown field %q (want %s)", part, strings.Join(allowed, ", "))}
		}
		fields[last] += "," + part
	}
	for _, f := range []string{"file", "namespace", "name"} {
		if fields[f] == "" {
			return "", nil, &SpecError{s, fmt.Sprintf("missing %s=; for example %s:file=key.bin,namespace=myapp,name=key1", f, kind)}
		}
	}
	return kind, fields, nil
}

// FromSpec builds a raw keyring from a key spec (see [SpecHelp]), reading
// the key file it names. forDecrypt requires an RSA private key. Malformed
// specs give a *[SpecError].
func FromSpec(spec string, forDecrypt bool) (Keyring, error) {
	kind, fields, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	path := fields["file"]
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("reading key file %q: %w", path, err)
	}
	defer clear(data)
	ns, name := fields["namespace"], fields["name"]
	switch kind {
	case "aes":
		key, err := decodeAESKey(data)
		if err != nil {
			return nil, fmt.Errorf("key file %q: %v", path, err)
		}
		defer clear(key)
		return NewRawAES(ns, name, key)
	default: // "rsa"
		padding := OAEPSHA256
		if p, ok := fields["padding"]; ok {
			if padding, err = ParsePadding(p); err != nil {
				return nil, &SpecError{spec, err.Error()}
			}
		}
		pub, priv, err := ParseRSAKey(data)
		if err != nil {
			return nil, fmt.Errorf("key file %q: %v", path, err)
		}
		if forDecrypt && priv == nil {
			return nil, fmt.Errorf("key file %q holds an RSA public key; decryption needs the private key", path)
		}
		kr, err := NewRawRSA(ns, name, padding, pub, priv)
		if err != nil {
			return nil, fmt.Errorf("key file %q: %v", path, err)
		}
		return kr, nil
	}
}

// decodeAESKey accepts the base64 of a 16, 24 or 32-byte key (surrounding
// whitespace allowed) or the raw bytes themselves.
func decodeAESKey(data []byte) ([]byte, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 {
		if k, err := base64.StdEncoding.DecodeString(string(t)); err == nil && validAESLen(len(k)) {
			return k, nil
		}
	}
	if validAESLen(len(data)) {
		return bytes.Clone(data), nil
	}
	return nil, fmt.Errorf("holds %d bytes; want a 16, 24 or 32-byte AES key, raw or base64", len(data))
}

func validAESLen(n int) bool { return n == 16 || n == 24 || n == 32 }
