package main

import (
	"fmt"

	"github.com/envelopekms/envelope/kms"
)

const verifyMacHelp = `Usage: envelope verify-mac -k KEY --mac MAC [--algorithm A] [--base64] [FILE]

Verify that MAC is the HMAC of FILE (or standard input, at most 4096 bytes)
under the GENERATE_VERIFY_MAC key KEY, through the KMS (which compares in
constant time). The exit status is 0 for a MAC that verifies, 1 for one
that does not (or any other failure), 2 for a usage error.

MAC is a file of raw bytes, or of base64 text with --base64.

Flags:
%s
Example:
  envelope verify-mac -k alias/tokens --mac token.mac token.json
`

func (c *cli) verifyMac(args []string) error {
	var f macFlags
	fs := c.newFlagSet("verify-mac")
	c.registerMacFlags(fs, &f)
	fs.StringVar(&f.mac, "mac", "", "the `MAC` to verify, a file (required)")
	if ok, err := c.parse(fs, args, verifyMacHelp); !ok {
		return err
	}
	if f.key == "" || f.mac == "" {
		return usageErrorf("verify-mac needs -k KEY and --mac MAC; see \"envelope verify-mac --help\"")
	}
	tag, err := readBlob("--mac", f.mac, f.base64)
	if err != nil {
		return err
	}
	in, err := c.openInput(fs.Args())
	if err != nil {
		return err
	}
	defer in.Close()
	mk, err := c.macKey(&f)
	if err != nil {
		return err
	}
	msg, err := readMacMessage(in)
	if err != nil {
		return err
	}
	out, err := mk.conn.api.VerifyMac(c.ctx, &kms.VerifyMacInput{KeyId: mk.m.Arn, Message: msg, Mac: tag, MacAlgorithm: mk.alg})
	if kms.CodeOf(err) == kms.CodeInvalidMac {
		return &hintError{fmt.Errorf("the MAC %q does not verify: it is not the %s of %s under key %s", f.mac, mk.alg, in.name, keyName(f.key, mk.m)),
			"check the file, the key and --base64 are those the MAC was made with"}
	}
	if err != nil {
		return kmsHint(err, f.key)
	}
	fmt.Fprintf(c.stdout, "MAC valid: %s, %s, key %s\n", in.name, out.MacAlgorithm, out.KeyId)
	return nil
}
