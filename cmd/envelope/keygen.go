package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/envelopekms/envelope/internal/durable"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/kms/keystore"
)

const keygenHelp = `Usage: envelope keygen aes [--bits 128|192|256] [-o PATH]
       envelope keygen rsa [--bits 2048|3072|4096] [-o PATH] [--public-out PATH]
       envelope keygen ecdh [--curve P-256|P-384|P-521] [-o PATH] [--public-out PATH]
       envelope keygen root -o FILE

Generate a raw wrapping key for -k aes:..., -k rsa:... or -k ecdh:... . An
AES key is written as base64 text; an RSA or ECDH private key as PKCS #8
PEM, its public key (--public-out) as SPKI PEM. Key files are created with
mode 0600 (public keys 0644) and never overwrite an existing file.

"keygen root" makes a keystore root key file for --root-key-file (or
ENVELOPE_ROOT_KEY_FILE): 32 random bytes, written to FILE only. A keystore
created with it keeps its keys sealed under it and opens only with it, so
that several servers can share one keystore with the same file: keep it as
you keep the keys themselves (it opens them all), and keep a copy apart
from the keystore's backups.

Flags:
%s
Examples:
  envelope keygen aes -o app.key
  envelope encrypt -k aes:file=app.key,namespace=myapp,name=app-2026 -o f.esdk f
  envelope keygen rsa --bits 3072 -o ops.pem --public-out ops.pub.pem
  envelope keygen ecdh --curve P-384 -o bob.pem --public-out bob.pub.pem
  envelope encrypt -k ecdh:recipient=bob.pub.pem -o f.esdk f
  envelope decrypt -k ecdh:private=bob.pem -o f f.esdk
  envelope keygen root -o /etc/envelope/root.key
`

func (c *cli) keygen(args []string) error {
	var bits int
	var outPath, pubPath, curveName string
	fs := c.newFlagSet("keygen")
	fs.IntVar(&bits, "bits", 0, "key size in `BITS` (default 256 for aes, 3072 for rsa)")
	fs.StringVar(&curveName, "curve", "", "ecdh: the `CURVE`, P-256 (default), P-384 or P-521")
	fs.StringVarP(&outPath, "output", "o", "", "write the key to `PATH` (mode 0600) instead of standard output")
	fs.StringVar(&pubPath, "public-out", "", "rsa, ecdh: also write the public key (SPKI PEM) to `PATH`")
	if ok, err := c.parse(fs, args, keygenHelp); !ok {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("keygen needs one argument, aes, rsa, ecdh or root; see \"envelope keygen --help\"")
	}
	var data, pub []byte
	kind := fs.Arg(0)
	if curveName != "" && kind != "ecdh" {
		return usageErrorf("--curve is for ecdh keys")
	}
	switch kind {
	case "aes":
		if bits == 0 {
			bits = 256
		}
		if bits != 128 && bits != 192 && bits != 256 {
			return usageErrorf("--bits %d: AES keys are 128, 192 or 256 bits", bits)
		}
		if pubPath != "" {
			return usageErrorf("--public-out is for rsa and ecdh keys")
		}
		key := make([]byte, bits/8)
		rand.Read(key)
		data = []byte(base64.StdEncoding.EncodeToString(key) + "\n")
		clear(key)
	case "rsa":
		if bits == 0 {
			bits = 3072
		}
		if bits < 2048 || bits > 16384 {
			return usageErrorf("--bits %d: RSA keys are 2048 to 16384 bits (2048, 3072 or 4096 are usual)", bits)
		}
		priv, err := generateRSA(c.ctx, bits)
		if err != nil {
			return err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return err
		}
		data = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		clear(der)
		spki, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		if err != nil {
			return err
		}
		pub = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	case "ecdh":
		if bits != 0 {
			return usageErrorf("--bits is for aes and rsa keys; an ecdh key's size is its --curve")
		}
		if curveName == "" {
			curveName = "P-256"
		}
		curve, err := keyring.ParseECDHCurve(curveName)
		if err != nil {
			return usageErrorf("--curve %q: want P-256, P-384 or P-521", curveName)
		}
		priv, err := curve.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return err
		}
		data = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		clear(der)
		spki, err := x509.MarshalPKIXPublicKey(priv.PublicKey())
		if err != nil {
			return err
		}
		pub = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	case "root":
		switch {
		case bits != 0:
			return usageErrorf("--bits: a root key is 256 bits, always")
		case pubPath != "":
			return usageErrorf("--public-out is for rsa and ecdh keys")
		case outPath == "" || outPath == "-":
			return usageErrorf("keygen root writes the root key to a file only: give -o FILE")
		}
		data = make([]byte, keystore.RootKeySize)
		rand.Read(data)
	default:
		return usageErrorf("unknown key kind %q: want aes, rsa, ecdh or root", kind)
	}
	defer clear(data)
	if pubPath != "" && (pubPath == outPath || pubPath == "-") {
		return usageErrorf("--public-out must name a file other than the private key's")
	}
	if c.ctx.Err() != nil {
		return context.Cause(c.ctx) // stopped: no key is written
	}
	if outPath == "" || outPath == "-" {
		if _, err := c.stdout.Write(data); err != nil {
			return err
		}
	} else if err := writeNewFile(outPath, data, 0o600); err != nil {
		return err
	}
	if pubPath != "" {
		if err := writeNewFile(pubPath, pub, 0o644); err != nil {
			if outPath != "" && outPath != "-" {
				os.Remove(outPath) // no half-made key pair
			}
			return err
		}
	}
	return nil
}

// generateRSA generates an RSA key of bits bits, or gives up when ctx
// ends: a large key takes minutes, which rsa.GenerateKey cannot cut short,
// so it goes on in a goroutine that is left behind.
func generateRSA(ctx context.Context, bits int) (*rsa.PrivateKey, error) {
	type result struct {
		key *rsa.PrivateKey
		err error
	}
	done := make(chan result, 1)
	go func() {
		key, err := rsa.GenerateKey(rand.Reader, bits)
		done <- result{key, err}
	}()
	select {
	case r := <-done:
		return r.key, r.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// writeNewFile creates path with mode perm and writes data, refusing to
// replace an existing file (a lost key is lost data).
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	err := durable.WriteNew(path, data, perm) // mode exactly perm, whatever the umask
	switch {
	case errors.Is(err, os.ErrExist):
		return fmt.Errorf("%q already exists; refusing to overwrite a key file (remove it first if you mean to)", path)
	case durable.CreateFailed(err):
		return fmt.Errorf("creating key file: %w", unwrapPathError(err, path))
	case err != nil:
		return fmt.Errorf("writing key file %q: %v", path, err)
	}
	return nil
}
