package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/envelopekms/envelope/kms"
	"github.com/spf13/pflag"
)

const macHelp = `Usage: envelope mac -k KEY [--algorithm A] [-o MAC] [--base64] [FILE]

Compute the HMAC (RFC 2104) of FILE (or standard input), at most 4096 bytes
as AWS KMS takes, with a GENERATE_VERIFY_MAC key (HMAC_224/256/384/512) of
the embedded keystore or of the KMS named by --kms. The key never leaves the
KMS. The MAC is written as raw bytes, or as base64 text with --base64.

Flags:
%s
ALGORITHM is the key's (HMAC_SHA_224/256/384/512), the default.

Examples:
  envelope keys create --spec HMAC_256 --usage GENERATE_VERIFY_MAC --alias alias/tokens
  envelope mac -k alias/tokens -o token.mac token.json
  envelope verify-mac -k alias/tokens --mac token.mac token.json
`

// macFlags are the flags of mac and verify-mac.
type macFlags struct {
	key, algorithm string
	base64         bool
	output, mac    string
}

func (c *cli) registerMacFlags(fs *pflag.FlagSet, f *macFlags) {
	fs.StringVarP(&f.key, "key", "k", "", "the GENERATE_VERIFY_MAC `KEY`: alias/NAME, a key id or a key ARN (required)")
	fs.StringVar(&f.algorithm, "algorithm", "", "the MAC `ALGORITHM` (default: the key's)")
	fs.BoolVar(&f.base64, "base64", false, "the MAC is base64 text rather than raw bytes")
	fs.StringVar(&c.kmsFlag, "kms", "", kmsFlagHelp)
}

func (c *cli) mac(args []string) error {
	var f macFlags
	fs := c.newFlagSet("mac")
	c.registerMacFlags(fs, &f)
	fs.StringVarP(&f.output, "output", "o", "", "write the MAC to `PATH` instead of standard output")
	if ok, err := c.parse(fs, args, macHelp); !ok {
		return err
	}
	if f.key == "" {
		return usageErrorf("mac needs -k KEY, a GENERATE_VERIFY_MAC key; see \"envelope mac --help\"")
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
	out, err := mk.conn.api.GenerateMac(c.ctx, &kms.GenerateMacInput{KeyId: mk.m.Arn, Message: msg, MacAlgorithm: mk.alg})
	if err != nil {
		return kmsHint(err, f.key)
	}
	tag := out.Mac
	if f.base64 {
		tag = []byte(base64.StdEncoding.EncodeToString(tag) + "\n")
	}
	o, err := c.createOutput(f.output, 0o644, in)
	if err != nil {
		return err
	}
	defer o.abort()
	if _, err := o.w.Write(tag); err != nil {
		return err
	}
	return o.commit()
}

// macKey is the key of a mac or verify-mac command and its algorithm.
type macKey struct {
	conn *kmsConn
	m    *kms.KeyMetadata
	alg  string
}

func (c *cli) macKey(f *macFlags) (*macKey, error) {
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
	if m.KeyUsage != kms.UsageGenerateVerifyMac {
		return nil, &hintError{fmt.Errorf("key %s is a %s key of usage %s; it makes no MACs", keyName(f.key, m), m.KeySpec, m.KeyUsage),
			"create an HMAC key with \"envelope keys create --spec HMAC_256 --usage GENERATE_VERIFY_MAC\""}
	}
	alg := f.algorithm
	if alg == "" {
		alg = m.MacAlgorithms[0]
	}
	if !slices.Contains(m.MacAlgorithms, alg) {
		return nil, usageErrorf("--algorithm %q: key %s (%s) takes %s", alg, keyName(f.key, m), m.KeySpec, strings.Join(m.MacAlgorithms, ", "))
	}
	return &macKey{conn: conn, m: m, alg: alg}, nil
}

// readMacMessage reads what mac and verify-mac MAC: 1 to 4096 bytes, as
// the KMS takes them (GenerateMac has no digest mode).
func readMacMessage(in *input) ([]byte, error) {
	msg, err := readAtMost(in, maxMessage)
	if err != nil && !errors.Is(err, errEmpty) && !errors.As(err, new(*plainError)) {
		return nil, err
	}
	if err != nil {
		return nil, &hintError{err, "the KMS MACs 1 to 4096 bytes; for larger data, MAC its digest (envelope mac takes any FILE of at most 4096 bytes)"}
	}
	return msg, nil
}
