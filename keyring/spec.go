package keyring

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/envelopekms/envelope/keyring/internal/ecdhwire"
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
  ecdh:private=PATH,recipient=PATH[,curve=C]
  ecdh:recipient=PATH
  ecdh:private=PATH
      the ESDK's raw ECDH keyring (NIST P-256, P-384 or P-521; "envelope
      keygen ecdh" makes a key pair): the data key is wrapped under a key
      agreed between a sender's private key and a recipient's public key.
      private= is a PEM private key (PKCS #8 or SEC 1), recipient= a public
      key (SPKI, PEM or DER). With both (static): encrypts from the private
      key to the recipient, and decrypts messages between the two key pairs
      either way (so a recipient gives its own private= and the sender's
      public key as recipient=). recipient= alone (ephemeral): encrypts
      with a fresh sender key each time; only the recipient can decrypt.
      private= alone (discovery): decrypts whatever was sent to that key,
      by anyone. curve= (P-256, P-384, P-521) checks the keys' curve.
`

// SpecError reports a key spec that is not well formed.
type SpecError struct {
	// Spec is the key spec as given, Reason what is wrong with it.
	Spec, Reason string
}

// Error names the spec and says what is wrong with it.
func (e *SpecError) Error() string { return fmt.Sprintf("keyring: key %q: %s", e.Spec, e.Reason) }

// fieldLike matches what looks like a field name, to tell a misspelt field
// from a comma inside a path.
var fieldLike = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

var specFields = map[string][]string{
	"aes":  {"file", "namespace", "name"},
	"rsa":  {"file", "namespace", "name", "padding"},
	"ecdh": {"private", "recipient", "curve"},
}

// pathFields are the fields that name files, whose values may contain
// commas.
var pathFields = []string{"file", "private", "recipient"}

// isField reports whether name is a field of some key form.
func isField(name string) bool {
	for _, fs := range specFields {
		if slices.Contains(fs, name) {
			return true
		}
	}
	return false
}

// IsSpec reports whether s has the form of a raw key spec (aes:...,
// rsa:... or ecdh:...), as opposed to, say, a KMS key name.
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
		return "", nil, &SpecError{s, "unknown key form; want aes:file=PATH,namespace=NS,name=NAME, rsa:file=PATH,namespace=NS,name=NAME[,padding=P] or ecdh:private=PATH,recipient=PATH"}
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
		if hasEq && isField(name) {
			return "", nil, &SpecError{s, fmt.Sprintf("%s= is not a field of %s keys (want %s)", name, kind, strings.Join(allowed, ", "))}
		}
		// Only a path may contain commas; anything else is a mistake
		// (a misspelt field must not silently become part of a name).
		if !slices.Contains(pathFields, last) || hasEq && fieldLike.MatchString(name) && !strings.ContainsRune(part, '/') {
			return "", nil, &SpecError{s, fmt.Sprintf("unknown field %q (want %s)", part, strings.Join(allowed, ", "))}
		}
		fields[last] += "," + part
	}
	if kind == "ecdh" {
		for f, v := range fields {
			if v == "" {
				return "", nil, &SpecError{s, fmt.Sprintf("empty %s=", f)}
			}
		}
		if fields["private"] == "" && fields["recipient"] == "" {
			return "", nil, &SpecError{s, "give private=, recipient= or both; for example ecdh:private=me.pem,recipient=peer.pub.pem"}
		}
		return kind, fields, nil
	}
	for _, f := range []string{"file", "namespace", "name"} {
		if fields[f] == "" {
			return "", nil, &SpecError{s, fmt.Sprintf("missing %s=; for example %s:file=key.bin,namespace=myapp,name=key1", f, kind)}
		}
	}
	return kind, fields, nil
}

// FromSpec builds a raw keyring from a key spec (see [SpecHelp]), reading
// the key files it names. forDecrypt requires an RSA private key, and an
// ECDH private key; !forDecrypt an ECDH recipient. Malformed specs give a
// *[SpecError].
func FromSpec(spec string, forDecrypt bool) (Keyring, error) {
	kind, fields, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	if kind == "ecdh" {
		return ecdhFromSpec(spec, fields, forDecrypt)
	}
	path := fields["file"]
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	ns, name := fields["namespace"], fields["name"]
	switch kind {
	case "aes":
		key, err := decodeAESKey(data)
		if err != nil {
			return nil, fmt.Errorf("keyring: key file %q: %v", path, err)
		}
		defer clear(key)
		return NewRawAES(ns, name, key)
	default: // "rsa"
		padding := OAEPSHA256
		if p, ok := fields["padding"]; ok {
			if padding, err = parsePadding(p); err != nil {
				return nil, &SpecError{spec, err.Error()}
			}
		}
		pub, priv, err := parseRSAKey(data)
		if err != nil {
			return nil, fmt.Errorf("keyring: key file %q: %v", path, err)
		}
		if forDecrypt && priv == nil {
			return nil, fmt.Errorf("keyring: key file %q holds an RSA public key; decryption needs the private key", path)
		}
		kr, err := newRawRSA(ns, name, padding, pub, priv)
		if err != nil {
			return nil, fmt.Errorf("keyring: key file %q: %v", path, err)
		}
		return kr, nil
	}
}

// readKeyFile reads a key file, with an error that names it.
func readKeyFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("keyring: reading key file %q: %w", path, err)
	}
	return data, nil
}

// ecdhFromSpec builds the raw ECDH keyring of an ecdh: spec: static with
// private= and recipient=, ephemeral with recipient= alone (encrypt only),
// discovery with private= alone (decrypt only).
func ecdhFromSpec(spec string, fields map[string]string, forDecrypt bool) (Keyring, error) {
	privPath, recPath := fields["private"], fields["recipient"]
	switch {
	case forDecrypt && privPath == "":
		return nil, &SpecError{spec, "recipient= alone encrypts with an ephemeral key and cannot decrypt; to decrypt give the recipient's private key with private="}
	case !forDecrypt && recPath == "":
		return nil, &SpecError{spec, "private= alone decrypts (discovery) and cannot encrypt; to encrypt give the recipient's public key with recipient="}
	}
	var want ecdhwire.Curve
	if c, ok := fields["curve"]; ok {
		var err error
		if want, err = ecdhwire.ParseCurve(c); err != nil {
			return nil, &SpecError{spec, err.Error()}
		}
	}
	check := func(path string, c ecdh.Curve) error {
		got, _ := ecdhwire.CurveOf(c)
		if want != 0 && got != want {
			return fmt.Errorf("keyring: key file %q holds a %s key, not %s as curve= says", path, got, want)
		}
		return nil
	}
	var priv *ecdh.PrivateKey
	var rec *ecdh.PublicKey
	if privPath != "" {
		data, err := readKeyFile(privPath)
		if err != nil {
			return nil, err
		}
		priv, err = parseECDHPrivateKey(data)
		clear(data)
		if err != nil {
			return nil, fmt.Errorf("keyring: key file %q: %v", privPath, err)
		}
		if err := check(privPath, priv.Curve()); err != nil {
			return nil, err
		}
	}
	if recPath != "" {
		data, err := readKeyFile(recPath)
		if err != nil {
			return nil, err
		}
		if rec, err = parseECDHPublicKey(data); err != nil {
			return nil, fmt.Errorf("keyring: key file %q: %v", recPath, err)
		}
		if err := check(recPath, rec.Curve()); err != nil {
			return nil, err
		}
	}
	var kr *RawECDH
	var err error
	switch {
	case priv != nil && rec != nil:
		kr, err = newRawECDH(ECDHStatic, priv, rec)
	case rec != nil:
		kr, err = newRawECDH(ECDHEphemeral, nil, rec)
	default:
		kr, err = newRawECDH(ECDHDiscovery, priv, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: key %q: %v", spec, err)
	}
	return kr, nil
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
