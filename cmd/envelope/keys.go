package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/envelopekms/envelope/keyring"
)

const keyFormsHelp = `Key forms (-k):
  aes:file=PATH,namespace=NS,name=NAME
      a raw AES key: PATH holds 16, 24 or 32 bytes, raw or base64
      ("envelope keygen aes" makes one). NS and NAME are recorded in the
      message; decryption needs a key given with the same two.
  rsa:file=PATH,namespace=NS,name=NAME[,padding=P]
      a raw RSA key (2048 bits or more) in PEM: a public key (SPKI or PKCS #1)
      can encrypt, a private key (PKCS #8 or PKCS #1) can encrypt and decrypt.
      P is oaep-sha256 (default), oaep-sha1, oaep-sha384, oaep-sha512 or pkcs1.
  Several -k: on encrypt, each wraps the data key and any one can decrypt;
  on decrypt, they are tried in order.
`

// keySpec is one parsed -k value.
type keySpec struct {
	kind   string // "aes" or "rsa"
	fields map[string]string
	raw    string
}

var keyFields = map[string][]string{
	"aes": {"file", "namespace", "name"},
	"rsa": {"file", "namespace", "name", "padding"},
}

// parseKeySpec parses KIND:field=value,field=value. A comma followed by text
// that does not start a known field belongs to the previous value, so paths
// may contain commas.
func parseKeySpec(s string) (*keySpec, error) {
	kind, rest, ok := strings.Cut(s, ":")
	allowed, known := keyFields[kind]
	if !ok || !known {
		return nil, fmt.Errorf("unknown key form %q; want aes:file=PATH,namespace=NS,name=NAME or rsa:file=PATH,namespace=NS,name=NAME[,padding=P]", s)
	}
	spec := &keySpec{kind: kind, fields: map[string]string{}, raw: s}
	last := ""
	for _, part := range strings.Split(rest, ",") {
		name, value, hasEq := strings.Cut(part, "=")
		if hasEq && contains(allowed, name) {
			if _, dup := spec.fields[name]; dup {
				return nil, fmt.Errorf("key %q: %s given twice", s, name)
			}
			spec.fields[name] = value
			last = name
			continue
		}
		if last == "" {
			return nil, fmt.Errorf("key %q: unknown field %q (want %s)", s, part, strings.Join(allowed, ", "))
		}
		spec.fields[last] += "," + part
	}
	for _, f := range []string{"file", "namespace", "name"} {
		if spec.fields[f] == "" {
			return nil, fmt.Errorf("key %q: missing %s=; for example %s:file=key.bin,namespace=myapp,name=key1", s, f, kind)
		}
	}
	return spec, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// keyringFor builds the keyring a spec names. forDecrypt asks for an RSA
// private key.
func keyringFor(spec *keySpec, forDecrypt bool) (keyring.Keyring, error) {
	path := spec.fields["file"]
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", unwrapPathError(err, path))
	}
	defer clear(data)
	ns, name := spec.fields["namespace"], spec.fields["name"]
	switch spec.kind {
	case "aes":
		key, err := decodeAESKey(data)
		if err != nil {
			return nil, fmt.Errorf("key file %q: %v", path, err)
		}
		defer clear(key)
		return keyring.NewRawAES(ns, name, key)
	case "rsa":
		padding := keyring.OAEPSHA256
		if p, ok := spec.fields["padding"]; ok {
			if padding, err = keyring.ParsePadding(p); err != nil {
				return nil, fmt.Errorf("key %q: %v", spec.raw, err)
			}
		}
		pub, priv, err := keyring.ParseRSAKey(data)
		if err != nil {
			return nil, fmt.Errorf("key file %q: %v", path, err)
		}
		if forDecrypt && priv == nil {
			return nil, fmt.Errorf("key file %q holds a public key; decryption needs the RSA private key", path)
		}
		kr, err := keyring.NewRawRSA(ns, name, padding, pub, priv)
		if err != nil {
			return nil, fmt.Errorf("key file %q: %v", path, err)
		}
		return kr, nil
	}
	return nil, fmt.Errorf("unknown key form %q", spec.kind)
}

// decodeAESKey accepts the base64 of a 16/24/32-byte key (surrounding
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

// unwrapPathError keeps the OS's reason and the path, without Go's
// "open" operation prefix.
func unwrapPathError(err error, path string) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%q: %v", path, pe.Err)
	}
	return err
}

// buildKeyring turns the -k values into one keyring.
func buildKeyring(specs []string, forDecrypt bool) (keyring.Keyring, error) {
	if len(specs) == 0 {
		verb := "encrypt"
		if forDecrypt {
			verb = "decrypt"
		}
		return nil, usageErrorf("no key given: pass -k KEY (for example -k aes:file=key.bin,namespace=myapp,name=key1); see \"envelope %s --help\"", verb)
	}
	var krs []keyring.Keyring
	for _, s := range specs {
		spec, err := parseKeySpec(s)
		if err != nil {
			return nil, usageErrorf("%v", err)
		}
		kr, err := keyringFor(spec, forDecrypt)
		if err != nil {
			return nil, err
		}
		krs = append(krs, kr)
	}
	if len(krs) == 1 {
		return krs[0], nil
	}
	return keyring.NewMulti(krs[0], krs[1:]...), nil
}
