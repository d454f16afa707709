package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/suite"
	"github.com/spf13/pflag"
)

const encryptHelp = `Usage: envelope encrypt [-k KEY]... [-c name=value]... [flags] [-o OUT] [FILE]

Encrypt FILE (or standard input) under a fresh data key, wrapped by each KEY.

Flags:
%s
%s
Examples:
  envelope keygen aes -o app.key
  envelope encrypt -k aes:file=app.key,namespace=myapp,name=app-2026 \
      -c purpose=backup -o backup.tar.esdk backup.tar
  tar c dir | envelope encrypt -k rsa:file=pub.pem,namespace=ops,name=rsa1 > dir.tar.esdk
  envelope encrypt -k aes:file=app.key,namespace=myapp,name=app-2026 \
      --suite 0x0478 --frame-size 1M big.img -o big.img.esdk
`

const decryptHelp = `Usage: envelope decrypt [-k KEY]... [-c name=value]... [flags] [-o OUT] [FILE]

Decrypt a message from FILE (or standard input). Plaintext is written only as
it authenticates; with -o the file appears only once the whole message,
signature included, has verified.

Flags:
%s
%s
Examples:
  envelope decrypt -k aes:file=app.key,namespace=myapp,name=app-2026 \
      -c purpose=backup -o backup.tar backup.tar.esdk
  envelope decrypt -k rsa:file=priv.pem,namespace=ops,name=rsa1 < dir.tar.esdk | tar x
`

// commonFlags are the flags encrypt and decrypt share.
type commonFlags struct {
	keys     []string
	context  []string
	policy   string
	maxEDKs  int
	output   string
	progress bool
}

// kmsFlagHelp documents --kms, shared by every command that uses KMS keys.
const kmsFlagHelp = "use the AWS-KMS-API endpoint at `URL` (an envelope server) or \"aws\" (AWS KMS, default AWS config and credentials) instead of the embedded keystore; default $ENVELOPE_KMS"

func (f *commonFlags) register(fs *pflag.FlagSet, decrypt bool) {
	keyHelp := "wrapping `KEY` (repeatable; forms below)"
	ctxHelp := "encryption context pair `name=value` (repeatable), bound to the message"
	if decrypt {
		keyHelp = "`KEY` to unwrap the data key with (repeatable; tried in order)"
		ctxHelp = "require the message's encryption context to hold `name=value` (repeatable)"
	}
	fs.StringArrayVarP(&f.keys, "key", "k", nil, keyHelp)
	fs.StringArrayVarP(&f.context, "context", "c", nil, ctxHelp)
	fs.StringVar(&f.policy, "commitment-policy", suite.RequireEncryptRequireDecrypt.String(),
		"`POLICY`: require-encrypt-require-decrypt, require-encrypt-allow-decrypt or forbid-encrypt-allow-decrypt")
	fs.IntVar(&f.maxEDKs, "max-encrypted-data-keys", 0, "refuse messages with more than `N` wrapped data keys (0: no limit)")
	fs.StringVarP(&f.output, "output", "o", "", "write to `PATH` instead of standard output (atomically)")
	fs.BoolVar(&f.progress, "progress", true, "show a progress bar on a terminal for large inputs (--progress=false to hide)")
}

func (f *commonFlags) options() ([]envelope.Option, error) {
	policy, err := suite.ParseCommitmentPolicy(f.policy)
	if err != nil {
		return nil, usageErrorf("--commitment-policy: %v", err)
	}
	ec, err := parseContext(f.context)
	if err != nil {
		return nil, err
	}
	if f.maxEDKs < 0 {
		return nil, usageErrorf("--max-encrypted-data-keys %d: want 0 (no limit) or more", f.maxEDKs)
	}
	return []envelope.Option{
		envelope.WithCommitmentPolicy(policy),
		envelope.WithContext(ec),
		envelope.WithMaxEncryptedDataKeys(f.maxEDKs),
	}, nil
}

func parseContext(pairs []string) (map[string]string, error) {
	ec := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageErrorf("-c %q: want name=value", p)
		}
		if old, dup := ec[k]; dup && old != v {
			return nil, usageErrorf("-c: %q given twice with different values", k)
		}
		ec[k] = v
	}
	return ec, nil
}

// newFlagSet returns a flag set that prints nothing itself: errors are
// reported by the caller, help by parse.
func (c *cli) newFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.SortFlags = false
	return fs
}

// parse parses flags; it reports whether the command should go on. --help
// prints the command's help (help is called with the flag usages).
func (c *cli) parse(fs *pflag.FlagSet, args []string, help string, extra ...any) (bool, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(c.stdout, help, append([]any{fs.FlagUsages()}, extra...)...)
			return false, nil
		}
		return false, usageErrorf("%v; see \"envelope %s --help\"", err, fs.Name())
	}
	return true, nil
}

func (c *cli) encrypt(args []string) error {
	var f commonFlags
	var suiteName, frameSize string
	fs := c.newFlagSet("encrypt")
	f.register(fs, false)
	fs.StringVar(&c.kmsFlag, "kms", "", kmsFlagHelp)
	fs.StringVar(&suiteName, "suite", "", "algorithm suite `ID`, hex (0x0478) or name; default 0x0578, or 0x0378 under forbid-encrypt-allow-decrypt")
	fs.StringVar(&frameSize, "frame-size", strconv.Itoa(envelope.DefaultFrameSize), "plaintext bytes per frame, `N` (suffixes K and M for KiB and MiB)")
	if ok, err := c.parse(fs, args, encryptHelp, keyFormsHelp); !ok {
		return err
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	if suiteName != "" {
		s, err := suite.Parse(suiteName)
		if err != nil {
			return usageErrorf("--suite: %v", err)
		}
		opts = append(opts, envelope.WithSuite(s.ID))
	}
	n, err := parseSize(frameSize)
	if err != nil {
		return usageErrorf("--frame-size: %v", err)
	}
	opts = append(opts, envelope.WithFrameSize(n))
	ctx := context.Background()
	kr, rsa, err := c.keyrings(ctx, f.keys, false)
	if err != nil {
		return err
	}
	if rsa && suiteName == "" {
		// The KMS RSA keyring cannot protect signed suites: take the
		// unsigned suite the commitment policy allows.
		id := suite.AES256GCMHKDFSHA512CommitKey
		if f.policy == suite.ForbidEncryptAllowDecrypt.String() {
			id = suite.AES256GCMHKDFSHA256
		}
		opts = append(opts, envelope.WithSuite(id))
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
	w, err := envelope.Encrypt(ctx, out.w, kr, opts...)
	if err != nil {
		return encryptHint(err)
	}
	src, done := c.withProgress(in, f.progress)
	_, err = io.Copy(w, src)
	done()
	if err != nil {
		return fmt.Errorf("encrypting %s: %w", in.name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("encrypting %s: %w", in.name, err)
	}
	return out.commit()
}

func (c *cli) decrypt(args []string) error {
	var f commonFlags
	var unsignedOnly bool
	fs := c.newFlagSet("decrypt")
	f.register(fs, true)
	fs.StringVar(&c.kmsFlag, "kms", "", kmsFlagHelp)
	fs.BoolVar(&unsignedOnly, "unsigned-only", false, "refuse signed messages (for consumers that act on plaintext as it streams)")
	if ok, err := c.parse(fs, args, decryptHelp, keyFormsHelp); !ok {
		return err
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	if unsignedOnly {
		opts = append(opts, envelope.WithUnsignedOnly())
	}
	ctx := context.Background()
	kr, _, err := c.keyrings(ctx, f.keys, true)
	if err != nil {
		return err
	}
	in, err := c.openInput(fs.Args())
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := c.createOutput(f.output, 0o600)
	if err != nil {
		return err
	}
	defer out.abort()
	src, done := c.withProgress(in, f.progress)
	defer done()
	r, err := envelope.Decrypt(ctx, src, kr, opts...)
	if err != nil {
		return decryptHint(err, in.name)
	}
	if _, err := io.Copy(out.w, r); err != nil {
		return decryptHint(err, in.name)
	}
	done()
	return out.commit()
}

// hintError adds advice on how to fix an error.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func encryptHint(err error) error {
	var pe *envelope.PolicyError
	var ke *kms.Error
	if errors.As(err, &ke) {
		return kmsHint(err, firstARN(ke.Message))
	}
	switch {
	case errors.As(err, &pe) && pe.Suite.Committing:
		return &hintError{err, "committing suites (0x0478, 0x0578) need --commitment-policy require-encrypt-require-decrypt or require-encrypt-allow-decrypt"}
	case errors.As(err, &pe):
		return &hintError{err, "to write a non-committing suite for an old reader, add --commitment-policy forbid-encrypt-allow-decrypt"}
	case errors.Is(err, envelope.ErrReservedContextKey):
		return &hintError{err, "rename the context key; the aws-crypto- prefix belongs to the message format"}
	case errors.Is(err, envelope.ErrTooManyEncryptedDataKeys):
		return &hintError{err, "give fewer -k or raise --max-encrypted-data-keys"}
	}
	return err
}

func decryptHint(err error, name string) error {
	var pe *envelope.PolicyError
	var ue *keyring.UnwrapError
	var ke *kms.Error
	if errors.As(err, &ke) {
		switch ke.Code {
		case kms.CodeDisabled:
			return &hintError{err, fmt.Sprintf("enable the key with \"envelope keys enable %s\"", firstARN(ke.Message))}
		case kms.CodeInvalidState:
			return &hintError{err, fmt.Sprintf("if the key is pending deletion, restore it with \"envelope keys cancel-deletion %s\"", firstARN(ke.Message))}
		}
	}
	switch {
	case errors.As(err, &pe):
		return &hintError{err, "to read messages written without key commitment, add --commitment-policy require-encrypt-allow-decrypt"}
	case errors.As(err, &ue) || errors.Is(err, envelope.ErrNoDataKey):
		return &hintError{err, "pass one of the wrapping keys above with -k; \"envelope inspect\" lists them"}
	case errors.Is(err, envelope.ErrContextMismatch):
		return &hintError{err, "\"envelope inspect\" shows the message's encryption context"}
	case errors.Is(err, envelope.ErrSignedMessage):
		return &hintError{err, "drop --unsigned-only to accept signed messages (their last frame is released only after the signature verifies)"}
	case errors.Is(err, envelope.ErrTooManyEncryptedDataKeys):
		return &hintError{err, "raise --max-encrypted-data-keys if the message is trusted"}
	case errors.Is(err, envelope.ErrTampered), errors.Is(err, envelope.ErrTruncated), errors.Is(err, envelope.ErrMalformed):
		return fmt.Errorf("decrypting %s: %w", name, err)
	}
	return err
}

// firstARN returns the first ARN in a KMS error message, or "KEY".
func firstARN(msg string) string {
	for _, f := range strings.Fields(msg) {
		if strings.HasPrefix(f, "arn:") {
			return strings.TrimRight(f, ".,;:'\"")
		}
	}
	return "KEY"
}

// parseSize parses a byte count with an optional binary suffix: K, KiB or
// KB for 1024, M, MiB or MB for 1024².
func parseSize(s string) (int, error) {
	t := strings.TrimSpace(s)
	mult := uint64(1)
	upper := strings.ToUpper(t)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"KIB", 1 << 10}, {"KB", 1 << 10}, {"K", 1 << 10}, {"MIB", 1 << 20}, {"MB", 1 << 20}, {"M", 1 << 20}} {
		if strings.HasSuffix(upper, u.suffix) {
			t, mult = t[:len(t)-len(u.suffix)], u.mult
			break
		}
	}
	n, err := strconv.ParseUint(t, 10, 32)
	if err != nil || n == 0 || n*mult > 1<<32-1 {
		return 0, fmt.Errorf("%q: want a size from 1 to 4294967295 bytes, such as 4096, 64K or 1M", s)
	}
	return int(n * mult), nil
}
