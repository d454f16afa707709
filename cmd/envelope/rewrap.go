package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/envelopekms/envelope"
)

const rewrapHelp = `Usage: envelope rewrap -k NEWKEY... [--from KEY]... [-o OUT] FILE

Replace the wrapped data keys of a message: the data key is unwrapped (with
the keystore key the message names, or --from keys), wrapped under each -k,
the header is rebuilt, and the body is copied byte for byte without being
decrypted. Use it to move messages to a new key, add a recipient or retire
an old key. With -o FILE (the input itself) the message is replaced
atomically; without -o the result goes to standard output.

The cryptographic work is proportional to the header for unsigned messages
(suite 0x0478 and the v1 suites without ECDSA). Signed messages (0x0578, the
default suite) must be re-signed: their old signature is checked and a new
one made with a fresh signing key, which costs a hash of the whole body.

Security: the result keeps the original's data key and message ID, and
version 2 headers are authenticated with a fixed IV. Whoever holds both the
original and the rewrapped message could forge messages under that data key,
so keep only one of them (rewrap in place). If copies of the original may
survive elsewhere, decrypt and encrypt again instead.

Flags:
%s
%s
Examples:
  envelope rewrap -k alias/app-2027 -o backup.esdk backup.esdk
  envelope rewrap -k alias/app -k alias/dr-site -o f.esdk f.esdk
  envelope rewrap --from aes:file=old.key,namespace=app,name=k1 \
      -k aes:file=new.key,namespace=app,name=k2 -o f.esdk f.esdk
`

func (c *cli) rewrap(args []string) error {
	var f commonFlags
	var from []string
	fs := c.newFlagSet("rewrap")
	fs.StringArrayVarP(&f.keys, "key", "k", nil, "new wrapping `KEY` (repeatable; at least one)")
	fs.StringArrayVar(&from, "from", nil, "`KEY` to unwrap the data key with (repeatable; default: the keystore key the message names)")
	fs.StringArrayVarP(&f.context, "context", "c", nil, "require the message's encryption context to hold `name=value` (repeatable)")
	fs.StringVar(&f.policy, "commitment-policy", "require-encrypt-require-decrypt",
		"`POLICY`: require-encrypt-require-decrypt, or require-encrypt-allow-decrypt to rewrap non-committing messages")
	f.limits.registerHeader(fs, false)
	fs.StringVarP(&f.output, "output", "o", "", "write to `PATH` (may be FILE itself) instead of standard output, atomically")
	fs.BoolVar(&f.noClobber, "no-clobber", false, "refuse to replace an existing output file (so not FILE itself)")
	fs.StringVar(&c.kmsFlag, "kms", "", kmsFlagHelp)
	c.store.register(fs)
	if ok, err := c.parse(fs, args, rewrapHelp, keyFormsHelp); !ok {
		return err
	}
	if len(f.keys) == 0 {
		return usageErrorf("rewrap needs at least one -k NEWKEY; see \"envelope rewrap --help\"")
	}
	if fs.NArg() != 1 {
		return usageErrorf("rewrap takes exactly one input FILE")
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	ctx := c.ctx
	c.noClobber = f.noClobber
	fromKR, _, err := c.keyrings(ctx, from, true)
	if err != nil {
		return err
	}
	toKR, _, err := c.keyrings(ctx, f.keys, false)
	if err != nil {
		return err
	}
	in, err := c.openInput(fs.Args())
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := c.createOutput(f.output, 0o644)
	if err != nil {
		return err
	}
	defer out.abort()
	if _, err := envelope.Rewrap(ctx, out.w, in.r, fromKR, toKR, opts...); err != nil {
		return rewrapHint(err, in.name)
	}
	if err := out.commit(); err != nil {
		return err
	}
	if f.output == "" || !sameFile(f.output, fs.Arg(0)) {
		fmt.Fprintf(c.stderr, "envelope: note: keep only one of the original and the rewrapped message (see \"envelope rewrap --help\", Security)\n")
	}
	return nil
}

func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
