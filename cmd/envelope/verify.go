package main

import (
	"fmt"

	"github.com/envelopekms/envelope/kms"
)

const verifyHelp = `Usage: envelope verify -k KEY --signature SIG [--algorithm A] [--digest] [--base64] [FILE]

Verify that SIG is a signature of FILE (or standard input) made with the
SIGN_VERIFY key KEY and ALGORITHM, through the KMS ("envelope sign" made
it, or anyone holding the private key). The exit status is 0 for a valid
signature, 1 for one that does not verify (or any other failure), 2 for a
usage error.

SIG is a file of raw bytes, or of base64 text with --base64. Inputs over
4096 bytes are hashed here as they stream by (see "envelope sign --help");
--digest says FILE holds the digest (or ML-DSA μ) already.

Flags:
%s
ALGORITHM must be the one the signature was made with; it defaults to the
key's first, as for sign.

Examples:
  envelope verify -k alias/release --signature app.tar.sig app.tar
  envelope verify -k alias/tokens --algorithm RSASSA_PKCS1_V1_5_SHA_256 --signature t.sig --base64 t.json
`

func (c *cli) verify(args []string) error {
	var f signFlags
	fs := c.newFlagSet("verify")
	c.registerSignFlags(fs, &f)
	fs.StringVar(&f.signature, "signature", "", "the signature `SIG` to verify, a file (required)")
	if ok, err := c.parse(fs, args, verifyHelp); !ok {
		return err
	}
	if f.key == "" || f.signature == "" {
		return usageErrorf("verify needs -k KEY and --signature SIG; see \"envelope verify --help\"")
	}
	sig, err := readBlob("--signature", f.signature, f.base64)
	if err != nil {
		return err
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
	out, err := sk.conn.api.Verify(c.ctx, &kms.VerifyInput{KeyId: sk.m.Arn, Message: msg.data, MessageType: msg.messageType, Signature: sig, SigningAlgorithm: sk.alg})
	if kms.CodeOf(err) == kms.CodeInvalidSignature {
		return &hintError{fmt.Errorf("the signature %q does not verify: it is no signature of %s by key %s with %s", f.signature, in.name, keyName(f.key, sk.m), sk.alg),
			"check the file, the key and --algorithm (and --base64, --digest) are those it was signed with"}
	}
	if err != nil {
		return kmsHint(err, f.key)
	}
	fmt.Fprintf(c.stdout, "signature valid: %s, %s, key %s\n", in.name, out.SigningAlgorithm, out.KeyId)
	return nil
}
