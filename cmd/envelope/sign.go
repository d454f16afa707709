package main

// The sign command, and what sign and verify share: the signing key, its
// algorithm, and the message as the KMS takes it (the message itself up
// to 4096 bytes, else its digest or ML-DSA μ computed here as the input
// streams by).

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/envelopekms/envelope/kms"
	"github.com/spf13/pflag"
)

const signHelp = `Usage: envelope sign -k KEY [--algorithm A] [--digest] [-o SIG] [--base64] [FILE]

Sign FILE (or standard input) with a SIGN_VERIFY key of the embedded
keystore, or of the KMS named by --kms: ECDSA (ECC_NIST_P256/P384/P521,
ECC_SECG_P256K1), Ed25519 (ECC_NIST_EDWARDS25519), RSA (RSA_2048/3072/4096)
or ML-DSA (ML_DSA_44/65/87). The private key never leaves the KMS.

The signature is written as AWS KMS makes it: DER for ECDSA, 64 raw bytes
for Ed25519, PKCS #1 for RSA, FIPS 204's encoding for ML-DSA; as raw bytes,
or base64 text with --base64. OpenSSL and the public key ("envelope keys
public-key") verify it, as "envelope verify" does.

Inputs of up to 4096 bytes are sent as they are (MessageType RAW); larger
ones are hashed here as they stream by, and their digest is signed
(DIGEST; for ML-DSA the 64-byte μ, EXTERNAL_MU): the signature verifies
the same either way. ED25519_SHA_512 signs the message itself, so at most
4096 bytes; ED25519_PH_SHA_512 always signs its SHA-512 digest.

Flags:
%s
ALGORITHM defaults to the key's first: ECDSA_SHA_256/384/512 for the ECC
keys, RSASSA_PSS_SHA_256 for RSA, ED25519_SHA_512, ML_DSA_SHAKE_256. RSA
keys also take RSASSA_PSS_SHA_384/512 and RSASSA_PKCS1_V1_5_SHA_256/384/512.

Examples:
  envelope keys create --spec ECC_NIST_P256 --usage SIGN_VERIFY --alias alias/release
  envelope sign -k alias/release -o app.tar.sig app.tar
  envelope verify -k alias/release --signature app.tar.sig app.tar
  openssl dgst -sha256 -verify release.pub.pem -signature app.tar.sig app.tar
`

// signFlags are the flags of sign and verify.
type signFlags struct {
	key       string
	algorithm string
	digest    bool
	base64    bool
	output    string // sign
	signature string // verify
}

func (c *cli) registerSignFlags(fs *pflag.FlagSet, f *signFlags) {
	fs.StringVarP(&f.key, "key", "k", "", "the SIGN_VERIFY `KEY`: alias/NAME, a key id or a key ARN (required)")
	fs.StringVar(&f.algorithm, "algorithm", "", "the signing `ALGORITHM` (default: the key's first, see below)")
	fs.BoolVar(&f.digest, "digest", false, "FILE holds the message's digest (for ML-DSA its 64-byte μ), not the message: it is sent as MessageType DIGEST (EXTERNAL_MU)")
	fs.BoolVar(&f.base64, "base64", false, "the signature is base64 text rather than raw bytes")
	fs.StringVar(&c.kmsFlag, "kms", "", kmsFlagHelp)
}

func (c *cli) sign(args []string) error {
	var f signFlags
	fs := c.newFlagSet("sign")
	c.registerSignFlags(fs, &f)
	fs.StringVarP(&f.output, "output", "o", "", "write the signature to `PATH` instead of standard output")
	if ok, err := c.parse(fs, args, signHelp); !ok {
		return err
	}
	if f.key == "" {
		return usageErrorf("sign needs -k KEY, a SIGN_VERIFY key; see \"envelope sign --help\"")
	}
	in, err := c.openInput(fs.Args())
	if err != nil {
		return err
	}
	defer in.Close()
	sk, err := c.signingKey(&f)
	if err != nil {
		return err
	}
	msg, err := sk.message(c.ctx, in, f.digest)
	if err != nil {
		return err
	}
	out, err := sk.conn.api.Sign(c.ctx, &kms.SignInput{KeyId: sk.m.Arn, Message: msg.data, MessageType: msg.messageType, SigningAlgorithm: sk.alg})
	if err != nil {
		return kmsHint(err, f.key)
	}
	sig := out.Signature
	if f.base64 {
		sig = []byte(base64.StdEncoding.EncodeToString(sig) + "\n")
	}
	o, err := c.createOutput(f.output, 0o644, in)
	if err != nil {
		return err
	}
	defer o.abort()
	if _, err := o.w.Write(sig); err != nil {
		return err
	}
	return o.commit()
}

// signingKey is the key of a sign or verify command, described, and the
// algorithm it signs with.
type signingKey struct {
	ref  string
	conn *kmsConn
	m    *kms.KeyMetadata
	alg  string
}

// signingKey resolves -k and --algorithm: a usable SIGN_VERIFY key, and
// one of its algorithms.
func (c *cli) signingKey(f *signFlags) (*signingKey, error) {
	conn, err := c.openKMS(c.ctx, needExisting)
	if err != nil {
		return nil, err
	}
	m, err := conn.describe(c.ctx, f.key)
	if err != nil {
		return nil, err
	}
	if err := checkUsable(f.key, m); err != nil {
		return nil, err
	}
	if m.KeyUsage != kms.UsageSignVerify {
		return nil, &hintError{fmt.Errorf("key %s is a %s key of usage %s; it cannot sign", keyName(f.key, m), m.KeySpec, m.KeyUsage),
			"create a signing key with \"envelope keys create --spec ECC_NIST_P256 --usage SIGN_VERIFY\" (or another spec: see \"envelope keys create --help\")"}
	}
	alg := f.algorithm
	if alg == "" {
		alg = m.SigningAlgorithms[0]
	}
	if !slices.Contains(m.SigningAlgorithms, alg) {
		return nil, usageErrorf("--algorithm %q: key %s (%s) signs with %s", alg, keyName(f.key, m), m.KeySpec, strings.Join(m.SigningAlgorithms, ", "))
	}
	return &signingKey{ref: f.key, conn: conn, m: m, alg: alg}, nil
}

// signedMessage is a message as the KMS takes it.
type signedMessage struct {
	data        []byte
	messageType string
}

// maxMessage is the most the KMS signs, MACs or verifies as it is.
const maxMessage = 4096

// message reads the input and returns it as Sign and Verify take it:
// itself up to 4096 bytes, else its digest or μ; with digest set, the
// input is a digest (or μ) already.
func (k *signingKey) message(ctx context.Context, in *input, digest bool) (*signedMessage, error) {
	mldsa := k.alg == kms.AlgMLDSASHAKE256
	if digest {
		if k.alg == kms.AlgEd25519SHA512 {
			return nil, usageErrorf("--digest: ED25519_SHA_512 signs the message itself; give --algorithm ED25519_PH_SHA_512 to sign a SHA-512 digest")
		}
		d, err := readAtMost(in, maxMessage)
		if err != nil {
			return nil, err
		}
		mt := kms.MessageTypeDigest
		if mldsa {
			mt = kms.MessageTypeExternalMu
		}
		return &signedMessage{data: d, messageType: mt}, nil
	}
	head, err := io.ReadAll(io.LimitReader(in.r, maxMessage+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", in.name, err)
	}
	if len(head) <= maxMessage && kms.DefaultMessageType(k.alg) == kms.MessageTypeRaw {
		if len(head) == 0 {
			return nil, fmt.Errorf("%s is empty: the KMS signs messages of 1 to 4096 bytes", in.name)
		}
		return &signedMessage{data: head, messageType: kms.MessageTypeRaw}, nil
	}
	all := io.MultiReader(bytes.NewReader(head), in.r)
	switch {
	case mldsa:
		pk, err := k.conn.api.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: k.m.Arn})
		if err != nil {
			return nil, kmsHint(err, k.ref)
		}
		mu, err := kms.ExternalMu(pk.PublicKey, all)
		if err != nil {
			return nil, fmt.Errorf("hashing %s: %w", in.name, err)
		}
		return &signedMessage{data: mu, messageType: kms.MessageTypeExternalMu}, nil
	case k.alg == kms.AlgEd25519SHA512:
		return nil, &hintError{fmt.Errorf("%s is longer than 4096 bytes, the most ED25519_SHA_512 signs (it signs the message itself)", in.name),
			"give --algorithm ED25519_PH_SHA_512, which signs the message's SHA-512 digest"}
	}
	h, _ := kms.DigestHash(k.alg) // SHA-256/384/512 (SHA-512 for Ed25519ph)
	s := h.New()
	if _, err := io.Copy(s, all); err != nil {
		return nil, fmt.Errorf("reading %s: %w", in.name, err)
	}
	return &signedMessage{data: s.Sum(nil), messageType: kms.MessageTypeDigest}, nil
}

// errEmpty and *plainError (too long) are readAtMost's errors about the
// input's length.
var errEmpty = errors.New("is empty")

// readAtMost reads the whole input, which must hold 1 to n bytes.
func readAtMost(in *input, n int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(in.r, int64(n)+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", in.name, err)
	case len(b) > n:
		return nil, &plainError{fmt.Sprintf("%s is longer than %d bytes, the most the KMS takes", in.name, n), nil}
	case len(b) == 0:
		return nil, fmt.Errorf("%s %w", in.name, errEmpty)
	}
	return b, nil
}

// readBlob reads a signature or MAC file: raw bytes, or base64 text.
func readBlob(flag, path string, b64 bool) ([]byte, error) {
	if path == "" {
		return nil, usageErrorf("%s needs a file", flag)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, unwrapPathError(err, path))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBlob+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s %q: %v", flag, path, err)
	case len(b) > maxBlob:
		return nil, fmt.Errorf("%s %q is larger than any signature or MAC (%d bytes at most)", flag, path, maxBlob)
	}
	if !b64 {
		return b, nil
	}
	d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, &hintError{fmt.Errorf("%s %q is not base64 text", flag, path), "drop --base64 for a file of raw bytes"}
	}
	return d, nil
}

// maxBlob bounds a signature or MAC file: base64 of the KMS's largest
// blob (6144 bytes) and some whitespace.
const maxBlob = 9000
