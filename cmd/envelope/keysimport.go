package main

// keys import and keys delete-material: imported key material (BYOK).

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/envelopekms/envelope/kms"
	"github.com/spf13/pflag"
)

const importHelp = `Import key material into KEY, a key made with "envelope keys create
--origin EXTERNAL", as AWS KMS imports it: envelope asks the KMS for a
wrapping public key and import token (GetParametersForImport), wraps the
material with them here, and sends it (ImportKeyMaterial). The material never
leaves this process unwrapped; the KMS keeps it sealed under its root key.

FILE holds, for the key's spec:
  SYMMETRIC_DEFAULT   32 raw bytes (openssl rand -out k.bin 32)
  HMAC_224 ... 512    the HMAC key's raw bytes: 28-64 (HMAC_224), 32-64
                      (HMAC_256), 48-128 (HMAC_384), 64-128 (HMAC_512)
  key pairs           the private key, PKCS #8, DER (as AWS takes it) or PEM
                      ("PRIVATE KEY", as openssl genpkey writes it)

Once a key has material it takes only the same material again: to restore it
after "envelope keys delete-material" or expiry, or to change when it
expires. A symmetric key also takes new material with --new, which becomes
current at the next "envelope keys rotate" (earlier material still decrypts).
--expires TIME (RFC 3339, or a duration from now such as 720h; at most 365
days ahead) makes the material expire:
the KMS then destroys it and the key is unusable until it is imported again.`

func importFlags(fs *pflag.FlagSet, f *keysFlags) {
	fs.StringVar(&f.material, "material", "", "the key material `FILE` (see above; - for standard input)")
	fs.StringVar(&f.expires, "expires", "", "the material expires at `TIME`: RFC 3339 (2027-01-31T12:00:00Z) or a duration from now (720h); default: never")
	fs.BoolVar(&f.newMaterial, "new", false, "new material for a symmetric key, current after the next \"envelope keys rotate\"")
	fs.StringVar(&f.wrapping, "wrapping-algorithm", kms.WrapRSAAESKeyWrapSHA256, "wrapping `ALGORITHM`: RSA_AES_KEY_WRAP_SHA_256, RSA_AES_KEY_WRAP_SHA_1, RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1")
	fs.StringVar(&f.wrapSpec, "wrapping-key-spec", kms.WrappingKeyRSA3072, "wrapping key `SPEC`: RSA_2048, RSA_3072 or RSA_4096")
	fs.StringVar(&f.materialDesc, "material-description", "", "a description `TEXT` of the material (symmetric keys)")
}

// maxMaterialFile bounds what keys import reads: key material is at most a
// few kilobytes (an RSA-4096 PKCS #8 key in PEM is about 3.3 KB).
const maxMaterialFile = 64 << 10

// readAllLimited reads r to its end, refusing more than max bytes.
func readAllLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err == nil && int64(len(b)) > max {
		clear(b)
		return nil, fmt.Errorf("it is longer than %d bytes, which no key material is", max)
	}
	return b, err
}

// readMaterial reads the key material file of keys import: raw bytes, or
// a PEM PRIVATE KEY (PKCS #8), which is sent as its DER.
func (k *keysCmd) readMaterial(name string) ([]byte, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = readAllLimited(k.c.stdin, maxMaterialFile)
	} else {
		var f *os.File
		if f, err = os.Open(name); err == nil {
			b, err = readAllLimited(f, maxMaterialFile)
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading the key material %q: %w", name, err)
	}
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
		return b, nil
	}
	block, rest := pem.Decode(bytes.TrimSpace(b))
	defer clear(b)
	switch {
	case block == nil || len(bytes.TrimSpace(rest)) > 0:
		return nil, usageErrorf("the key material %q is not one PEM block", name)
	case block.Type == "PRIVATE KEY":
		return block.Bytes, nil
	case strings.HasSuffix(block.Type, "PRIVATE KEY"):
		return nil, &hintError{fmt.Errorf("the key material %q is a %s, not PKCS #8", name, block.Type),
			"convert it with: openssl pkcs8 -topk8 -nocrypt -in " + name + " -outform DER -out key.der"}
	}
	return nil, usageErrorf("the key material %q is a PEM %s, not a private key", name, block.Type)
}

func (k *keysCmd) importMaterial(r keyRef) error {
	if k.f.material == "" {
		return usageErrorf("keys import needs --material FILE; see \"envelope keys import --help\"")
	}
	opts := kms.ImportOptions{WrappingAlgorithm: k.f.wrapping, WrappingKeySpec: k.f.wrapSpec, Description: k.f.materialDesc}
	if k.f.expires != "" {
		t, err := time.Parse(time.RFC3339, k.f.expires)
		if d, derr := time.ParseDuration(k.f.expires); err != nil && derr == nil && d > 0 {
			t, err = time.Now().Add(d).Truncate(time.Second), nil
		}
		if err != nil {
			return usageErrorf("--expires %q: want a time as RFC 3339 (2027-01-31T12:00:00Z) or a duration from now (720h)", k.f.expires)
		}
		opts.ValidTo = t
	}
	if k.f.newMaterial {
		opts.ImportType = kms.ImportTypeNew
	}
	material, err := k.readMaterial(k.f.material)
	if err != nil {
		return err
	}
	defer clear(material)
	out, err := kms.ImportMaterial(k.ctx, r.conn.api, r.m.KeyId, material, opts)
	if err != nil {
		return importHint(err, r)
	}
	if k.f.json {
		return k.printJSON(out)
	}
	m, err := r.conn.describe(k.ctx, r.m.KeyId)
	if err != nil {
		return err
	}
	expiry := "it does not expire"
	if !opts.ValidTo.IsZero() {
		expiry = "it expires at " + opts.ValidTo.UTC().Format(time.RFC3339)
	}
	state := "the key is " + m.KeyState
	if opts.ImportType == kms.ImportTypeNew {
		state = "it becomes current with \"envelope keys rotate " + r.ref + "\""
	}
	fmt.Fprintf(k.c.stdout, "imported key material %s into key %s: %s; %s\n", out.KeyMaterialId, r.name(), expiry, state)
	return nil
}

// importHint adds advice to a failed import.
func importHint(err error, r keyRef) error {
	switch kms.CodeOf(err) {
	case kms.CodeIncorrectKeyMaterial:
		var ke *kms.Error
		if errors.As(err, &ke) && strings.Contains(ke.Message, "PKCS #8") {
			return &hintError{err, "key pairs are imported as PKCS #8 private keys: convert one with \"openssl pkcs8 -topk8 -nocrypt -in KEY -outform DER -out key.der\""}
		}
		return &hintError{err, "a key takes again only the material first imported into it (a symmetric key also takes new material with --new); check the file's length and format in \"envelope keys import --help\""}
	case kms.CodeUnsupportedOperation:
		if r.m.Origin != kms.OriginExternal {
			return &hintError{err, "only keys made with \"envelope keys create --origin EXTERNAL\" take imported material"}
		}
	}
	return kmsHint(err, r.ref)
}

func (k *keysCmd) deleteMaterial(r keyRef) error {
	out, err := r.conn.api.DeleteImportedKeyMaterial(k.ctx, &kms.DeleteImportedKeyMaterialInput{KeyId: r.m.KeyId, KeyMaterialId: k.f.materialID})
	if err != nil {
		return importHint(err, r)
	}
	if out.KeyMaterialId == "" {
		return k.done(out, "key %s has no imported material; nothing deleted", r.name())
	}
	return k.done(out, "destroyed key material %s of key %s; the key is unusable until it is imported again with \"envelope keys import %s --material FILE\"",
		out.KeyMaterialId, r.name(), r.ref)
}
