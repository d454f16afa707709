package main

// The encrypt and decrypt commands.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/materials"
	"github.com/envelopekms/envelope/suite"
)

const encryptHelp = `Usage: envelope encrypt [-k KEY]... [-c name=value]... [flags] [-o OUT] [FILE]
       envelope encrypt [-k KEY]... [-c name=value]... [flags] [--suffix S] [--output-dir DIR] FILE...

Encrypt FILE (or standard input) under a fresh data key, wrapped by each KEY.

Several files: with more than one FILE, or with --suffix or --output-dir,
each FILE is encrypted to a message of its own, FILE.esdk beside it (--suffix
sets the ending, --output-dir the directory). An existing output is
replaced, keeping its mode (--no-clobber refuses it instead); an input never
is. A FILE that fails is reported by name and the others go on; the exit
status is then 1. Outputs are written to temporary files (unnamed on Linux),
made durable together at the end (one syncfs per file system on Linux, an
fsync per file elsewhere), and only then named and their directories synced:
no partial output ever exists, and a run interrupted or killed before that
leaves no output at all. An output that is a device or FIFO is written into
as the command goes.

Data-key cache: --cache-max-age turns on the caching materials manager of
the AWS Encryption SDK, so that the messages of one command share a data
key and the KMS (or raw key) wraps one data key for many messages. A cached
key serves until it is --cache-max-age old, has encrypted
--cache-max-messages messages, or the next message would take it past
--cache-max-bytes; then a new one is made. Against a remote KMS (--kms) this
is many times faster for small files; the price is that one exposed data
key exposes every message it encrypted. Suites without key derivation
(0x0014, 0x0046, 0x0078) are never cached. Each input's length is declared
to the cache (read ahead up to 1 MiB, else a file's size); a longer input
of unknown length (a pipe) shares a cached key only without
--cache-max-bytes, and otherwise gets a data key of its own.

Limits: encrypt refuses to write what readers refuse by default: more than
--max-encrypted-data-keys wrapped keys (10), a header over
--max-header-size (1M), or a --frame-size over --max-frame-size (4M).

Required context: --required-context KEY keeps the -c pair of KEY out of
the message while authenticating it (the ESDK's required encryption
context): a reader must give the same pair with -c to decrypt.

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
  envelope encrypt --kms https://kms.example:8500 -k alias/logs \
      --cache-max-age 5m --cache-max-messages 10000 logs/*.json
`

const decryptHelp = `Usage: envelope decrypt [-k KEY]... [-c name=value]... [flags] [-o OUT] [FILE]
       envelope decrypt [-k KEY]... [-c name=value]... [flags] [--suffix S] [--output-dir DIR] FILE...

Decrypt a message from FILE (or standard input). Plaintext is written only as
it authenticates; with -o the file appears only once the whole message,
signature included, has verified.

Several files: with more than one FILE, or with --suffix or --output-dir,
each message FILE.esdk is decrypted to FILE (--suffix sets the ending that
is removed); with --output-dir into DIR, where a FILE without the ending
keeps its name. A FILE without the ending, and no --output-dir, is refused
before anything is done. As with encrypt, a FILE that fails is reported by
name while the others go on, and the outputs appear together at the end,
once they are all on disk.

Data-key cache: with --cache-max-age, a data key unwrapped for one message
is reused for up to that long by the later messages that carry the same
wrapped data key (as messages encrypted with a data-key cache do), so the
KMS is called once for all of them.

Limits: a message from an untrusted source could name thousands of keys or
declare huge frames. decrypt refuses, before trying any key, messages with
more than --max-encrypted-data-keys wrapped keys (default 10), headers over
--max-header-size (1M) and frames or non-framed bodies over --max-frame-size
(4M: a frame is held in memory until it authenticates); "none" lifts a
limit. A key is given up after 3 failed unwraps.

Required context: -c pairs that the message does not store are checked as
its required encryption context (the ESDK's reproduced encryption context):
they must be the ones it was encrypted with (encrypt --required-context).

Flags:
%s
%s
Examples:
  envelope decrypt -k aes:file=app.key,namespace=myapp,name=app-2026 \
      -c purpose=backup -o backup.tar backup.tar.esdk
  envelope decrypt -k rsa:file=priv.pem,namespace=ops,name=rsa1 < dir.tar.esdk | tar x
  envelope decrypt --kms https://kms.example:8500 --cache-max-age 5m \
      --output-dir restored logs/*.json.esdk
`

func (c *cli) encrypt(args []string) error {
	var f commonFlags
	var suiteName, frameSize string
	var required []string
	fs := c.newFlagSet("encrypt")
	f.register(fs, false)
	fs.StringArrayVar(&required, "required-context", nil, "authenticate the -c pair of `KEY` without storing it in the message (repeatable): readers must give it with -c (the ESDK's required encryption context)")
	fs.StringVar(&c.kmsFlag, "kms", "", kmsFlagHelp)
	c.store.register(fs)
	fs.StringVar(&suiteName, "suite", "", "algorithm suite `ID`, hex (0x0478) or name; default 0x0578, or 0x0378 under forbid-encrypt-allow-decrypt")
	fs.StringVar(&frameSize, "frame-size", sizeText(envelope.DefaultFrameSize), "plaintext bytes per frame, `N` ("+sizeUnits+")")
	f.cache.register(fs, false)
	if ok, err := c.parse(fs, args, encryptHelp, keyFormsHelp); !ok {
		return err
	}
	opts, err := f.options()
	if err != nil {
		return err
	}
	cacheOpts, bounded, err := f.cache.options()
	if err != nil {
		return err
	}
	if suiteName != "" {
		s, err := suite.Parse(suiteName)
		if err != nil {
			return usageErrorf("--suite: %v", err)
		}
		if cacheOpts != nil && s.KDF == 0 {
			return &exitError{code: 2, err: &hintError{
				fmt.Errorf("--cache-max-age: suite %s has no key derivation, so its data keys are never cached", s),
				"drop --cache-max-age, or use a suite with key derivation such as 0x0478 or 0x0578"}}
		}
		opts = append(opts, envelope.WithSuite(s.ID))
	}
	n, err := parseSize(frameSize)
	if err != nil || n < 1 || n > math.MaxUint32 {
		return usageErrorf("--frame-size: %q: want a size from 1 to 4294967295 bytes, such as 4096, 64K or 1M", frameSize)
	}
	if f.limits.maxFrame != "none" {
		if max, err := parseSize(f.limits.maxFrame); err == nil && n > max {
			return &exitError{code: 2, err: &hintError{
				fmt.Errorf("--frame-size %s is above --max-frame-size %s, the largest frame readers accept by default", frameSize, f.limits.maxFrame),
				fmt.Sprintf("a reader holds a frame in memory until it authenticates; to write such frames anyway, add --max-frame-size %s, and give the same flag to every reader", frameSize)}}
		}
	}
	opts = append(opts, envelope.WithFrameSize(int(n)))
	files, jobs, err := f.inputs(fs, false)
	if err != nil {
		return err
	}
	several := jobs != nil
	ctx := c.ctx
	c.noClobber = f.noClobber
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
	e := &encrypter{opts: opts, kr: kr, progress: f.progress, bounded: bounded}
	if cacheOpts != nil {
		e.own = materials.NewDefault(kr)
		if e.cache, err = materials.NewCaching(e.own, *cacheOpts); err != nil {
			return err
		}
	}
	if len(required) > 0 {
		if err := e.require(f.context, required); err != nil {
			return err
		}
	}
	if several {
		return c.eachFile(jobs, "encrypting", 0o644, func(in *input, dst io.Writer) error {
			return e.seal(ctx, c, dst, in)
		})
	}
	in, err := c.openInput(files)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := c.createOutput(f.output, 0o644, in)
	if err != nil {
		return err
	}
	defer out.abort()
	if err := e.seal(ctx, c, out.w, in); err != nil {
		var be *bodyError
		if errors.As(err, &be) {
			return fmt.Errorf("encrypting %s: %w", in.name, be.err)
		}
		return err
	}
	return out.commit()
}

// encrypter encrypts inputs, one message each, with the options of one
// encrypt command.
type encrypter struct {
	opts     []envelope.Option
	kr       keyring.Keyring
	progress bool
	// With the data-key cache: the caching manager, the manager under it
	// (for inputs that must have a data key of their own), whether
	// --cache-max-bytes bounds what a data key encrypts, and the buffer
	// inputs are read ahead into.
	cache   materials.Manager
	own     materials.Manager
	bounded bool
	buf     []byte
	// With --required-context: the manager that takes the required keys
	// out of the stored context (over the keyring, when there is no cache).
	required materials.Manager
}

// require makes the keys' pairs required encryption context: authenticated
// by every message but not stored in it.
func (e *encrypter) require(pairs, keys []string) error {
	ec, err := parseContext(pairs)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if _, ok := ec[k]; !ok {
			return usageErrorf("--required-context %q: give its value with -c %s=VALUE", k, k)
		}
	}
	wrap := func(m materials.Manager) (materials.Manager, error) {
		return materials.NewRequiredContext(m, keys...)
	}
	if e.cache == nil {
		e.required, err = wrap(materials.NewDefault(e.kr))
		return err
	}
	if e.cache, err = wrap(e.cache); err != nil {
		return err
	}
	e.own, err = wrap(e.own)
	return err
}

// readAhead is how much of an input encrypt reads before choosing its data
// key when the cache is on, to learn the length of inputs that do not say.
const readAhead = 1 << 20

// bodyError is an error of encrypt in reading the input or writing the
// message, as opposed to setting the message up.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// seal writes one message holding in to dst. Errors are unnamed, and
// those after the message began are *bodyError.
func (e *encrypter) seal(ctx context.Context, c *cli, dst io.Writer, in *input) error {
	src, done := c.withProgress(in, e.progress)
	defer done()
	kr, opts := e.kr, slices.Clip(e.opts)
	if e.required != nil {
		kr, opts = nil, append(opts, envelope.WithMaterialsManager(e.required))
	}
	declared := int64(-1)
	if e.cache != nil {
		var err error
		if src, declared, err = e.lookahead(src, in); err != nil {
			return &bodyError{err}
		}
		kr = nil
		switch {
		case declared >= 0:
			// The cache counts exactly this many bytes against the key.
			opts = append(opts, envelope.WithPlaintextLength(declared), envelope.WithMaterialsManager(e.cache))
		case e.bounded:
			// A cached key could run out of bytes in the middle of this
			// stream: it gets a data key of its own.
			opts = append(opts, envelope.WithMaterialsManager(e.own))
		default:
			// Without a byte limit, a stream leases the cached key
			// (materials.Leaser) for as much as it turns out to hold.
			opts = append(opts, envelope.WithMaterialsManager(e.cache))
		}
	}
	w, err := envelope.Encrypt(ctx, dst, kr, opts...)
	if err != nil {
		return encryptHint(err)
	}
	_, err = io.Copy(w, src)
	done()
	if err == nil {
		err = w.Close()
	} else {
		w.Close()
	}
	if errors.Is(err, envelope.ErrPlaintextLimit) && declared >= 0 {
		return &bodyError{fmt.Errorf("the input grew while it was read: it had %d bytes when encryption began", declared)}
	}
	if err != nil {
		return &bodyError{err}
	}
	return nil
}

// lookahead reads up to readAhead bytes of src, and returns a reader of
// the whole input and its length: known if the input ended within them or
// is a regular file at least that long, else -1.
func (e *encrypter) lookahead(src io.Reader, in *input) (io.Reader, int64, error) {
	if e.buf == nil {
		e.buf = make([]byte, readAhead)
	}
	n, err := io.ReadFull(src, e.buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return bytes.NewReader(e.buf[:n]), int64(n), nil
	case err != nil:
		return nil, 0, err
	}
	r := io.MultiReader(bytes.NewReader(e.buf), src)
	if in.f != nil && in.size >= int64(n) {
		return r, in.size, nil
	}
	return r, -1, nil
}

func (c *cli) decrypt(args []string) error {
	var f commonFlags
	var unsignedOnly bool
	fs := c.newFlagSet("decrypt")
	f.register(fs, true)
	fs.StringVar(&c.kmsFlag, "kms", "", kmsFlagHelp)
	c.store.register(fs)
	fs.BoolVar(&unsignedOnly, "unsigned-only", false, "refuse signed messages (for consumers that act on plaintext as it streams)")
	f.cache.register(fs, true)
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
	cacheOpts, _, err := f.cache.options()
	if err != nil {
		return err
	}
	files, jobs, err := f.inputs(fs, true)
	if err != nil {
		return err
	}
	several := jobs != nil
	ctx := c.ctx
	c.noClobber = f.noClobber
	kr, _, err := c.keyrings(ctx, f.keys, true)
	if err != nil {
		return err
	}
	if cacheOpts != nil {
		m, err := materials.NewCaching(materials.NewDefault(kr), *cacheOpts)
		if err != nil {
			return err
		}
		kr, opts = nil, append(opts, envelope.WithMaterialsManager(m))
	}
	open := func(in *input, dst io.Writer) error {
		src, done := c.withProgress(in, f.progress)
		defer done()
		r, err := envelope.Decrypt(ctx, src, kr, opts...)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(dst, r)
		return err
	}
	if several {
		return c.eachFile(jobs, "decrypting", 0o600, func(in *input, dst io.Writer) error {
			err := open(in, dst)
			if h := decryptAdvice(err); h != "" {
				return &hintError{err, h}
			}
			return err
		})
	}
	in, err := c.openInput(files)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := c.createOutput(f.output, 0o600, in)
	if err != nil {
		return err
	}
	defer out.abort()
	if err := open(in, out.w); err != nil {
		return decryptHint(err, in.name)
	}
	return out.commit()
}
