package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/kms"
	"github.com/envelopekms/envelope/materials"
	"github.com/envelopekms/envelope/suite"
	"github.com/spf13/pflag"
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

// commonFlags are the flags encrypt and decrypt share.
type commonFlags struct {
	keys      []string
	context   []string
	policy    string
	limits    limitFlags
	output    string
	noClobber bool
	suffix    string
	outputDir string
	progress  bool
	workers   int
	cache     cacheFlags
}

// kmsFlagHelp documents --kms, shared by every command that uses KMS keys.
const kmsFlagHelp = "use the AWS-KMS-API endpoint at `URL` (an envelope server) or \"aws\" (AWS KMS, default AWS config and credentials) instead of the embedded keystore; default $ENVELOPE_KMS"

// maxWorkers bounds --workers: more goroutines than this only cost memory
// (each holds a few 256 KiB batches in flight).
const maxWorkers = 256

// defaultSuffix ends the names of messages written for several FILEs.
const defaultSuffix = ".esdk"

func (f *commonFlags) register(fs *pflag.FlagSet, decrypt bool) {
	keyHelp := "wrapping `KEY` (repeatable; forms below)"
	ctxHelp := "encryption context pair `name=value` (repeatable), bound to the message"
	suffixHelp := "several files: write each FILE to FILE followed by `S`"
	if decrypt {
		keyHelp = "`KEY` to unwrap the data key with (repeatable; tried in order)"
		ctxHelp = "require the message's encryption context to hold `name=value` (repeatable)"
		suffixHelp = "several files: each FILE ends in `S`, which its output's name drops"
	}
	fs.StringArrayVarP(&f.keys, "key", "k", nil, keyHelp)
	fs.StringArrayVarP(&f.context, "context", "c", nil, ctxHelp)
	fs.StringVar(&f.policy, "commitment-policy", suite.RequireEncryptRequireDecrypt.String(),
		"`POLICY`: require-encrypt-require-decrypt, require-encrypt-allow-decrypt or forbid-encrypt-allow-decrypt")
	f.limits.register(fs, !decrypt)
	fs.StringVarP(&f.output, "output", "o", "", "write to `PATH` instead of standard output (atomically; one FILE only)")
	fs.BoolVar(&f.noClobber, "no-clobber", false, "refuse to replace an existing output file")
	fs.StringVar(&f.suffix, "suffix", defaultSuffix, suffixHelp)
	fs.StringVar(&f.outputDir, "output-dir", "", "several files: write the outputs into `DIR` instead of beside each FILE")
	fs.BoolVar(&f.progress, "progress", true, "show a progress bar on a terminal for large inputs (--progress=false to hide)")
	fs.IntVar(&f.workers, "workers", 0, "seal or open frames on `N` goroutines in parallel (0: one per CPU, one fewer for signed suites, whose signature hash gets a CPU of its own)")
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
	limits, err := f.limits.options()
	if err != nil {
		return nil, err
	}
	if f.workers < 0 || f.workers > maxWorkers {
		return nil, usageErrorf("--workers %d: want 0 (one per CPU) to %d", f.workers, maxWorkers)
	}
	return append([]envelope.Option{
		envelope.WithCommitmentPolicy(policy),
		envelope.WithContext(ec),
		envelope.WithWorkers(f.workers),
	}, limits...), nil
}

// limitFlags are the limits on what a message may cost (envelope's
// WithMax... options); each takes "none" to lift it.
type limitFlags struct {
	maxEDKs, maxHeader, maxFrame string
}

// register adds the flags; frame adds --max-frame-size (which rewrap, not
// holding frames, does not need).
func (f *limitFlags) register(fs *pflag.FlagSet, encrypt bool) {
	f.registerHeader(fs, encrypt)
	help := "refuse messages whose frames (or non-framed body) hold more than `SIZE` bytes, the plaintext held in memory before it authenticates (K, M, G suffixes; none: no limit)"
	if encrypt {
		help = "allow frames of up to `SIZE` bytes (--frame-size above the readers' default needs it here and where the message is read; none: no limit)"
	}
	fs.StringVar(&f.maxFrame, "max-frame-size", sizeText(envelope.DefaultMaxFrameSize), help)
}

// registerHeader adds --max-encrypted-data-keys and --max-header-size.
func (f *limitFlags) registerHeader(fs *pflag.FlagSet, encrypt bool) {
	edkHelp := "refuse messages with more than `N` wrapped data keys, before trying any (none: no limit)"
	if encrypt {
		edkHelp = "refuse to write more than `N` wrapped data keys (none: no limit)"
	}
	fs.StringVar(&f.maxEDKs, "max-encrypted-data-keys", strconv.Itoa(envelope.DefaultMaxEncryptedDataKeys), edkHelp)
	fs.StringVar(&f.maxHeader, "max-header-size", sizeText(envelope.DefaultMaxHeaderSize),
		"refuse message headers longer than `SIZE` bytes (K, M, G suffixes; none: no limit)")
}

// sizeText writes a byte count as the size flags take it.
func sizeText(n int) string {
	switch {
	case n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "M"
	case n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "K"
	}
	return strconv.Itoa(n)
}

// options returns the limit options; flags not registered are left empty
// and set nothing.
func (f *limitFlags) options() ([]envelope.Option, error) {
	var opts []envelope.Option
	if f.maxEDKs != "" {
		n := envelope.NoLimit
		if f.maxEDKs != "none" {
			v, err := strconv.ParseUint(f.maxEDKs, 10, 16)
			if err != nil || v == 0 {
				return nil, usageErrorf("--max-encrypted-data-keys %q: want a count from 1 to 65535, or none", f.maxEDKs)
			}
			n = int(v)
		}
		opts = append(opts, envelope.WithMaxEncryptedDataKeys(n))
	}
	for _, x := range []struct {
		flag, value string
		option      func(int) envelope.Option
	}{
		{"--max-header-size", f.maxHeader, envelope.WithMaxHeaderSize},
		{"--max-frame-size", f.maxFrame, envelope.WithMaxFrameSize},
	} {
		if x.value == "" {
			continue
		}
		n := envelope.NoLimit
		if x.value != "none" {
			v, err := parseByteCount(x.value)
			if err != nil || v > math.MaxInt32 {
				return nil, usageErrorf("%s %q: want a size from 1 byte to 2G, such as 64K or 16M, or none", x.flag, x.value)
			}
			n = int(v)
		}
		opts = append(opts, x.option(n))
	}
	return opts, nil
}

// files returns the FILE arguments and whether they are to be handled as
// several files (each to its own output) rather than as one input.
func (f *commonFlags) files(fs *pflag.FlagSet) ([]string, bool, error) {
	args := fs.Args()
	several := len(args) > 1 || fs.Changed("suffix") || fs.Changed("output-dir")
	switch {
	case !several:
		return args, false, nil
	case f.output != "" && len(args) > 1:
		return nil, false, &exitError{code: 2, err: &hintError{
			fmt.Errorf("too many arguments %q: give at most one input FILE", args),
			fmt.Sprintf("to %s several files, each to its own output, drop -o (see --suffix and --output-dir in \"envelope %s --help\")", fs.Name(), fs.Name())}}
	case f.output != "":
		return nil, false, usageErrorf("-o names the output of one FILE; it does not go with --suffix or --output-dir")
	case len(args) == 0:
		return nil, false, usageErrorf("--suffix and --output-dir are for FILE arguments (standard input has no name to derive an output's from); use -o")
	}
	return args, true, nil
}

// inputs returns the FILE arguments and, when they are to be handled as
// several files, each one's output (nil otherwise).
func (f *commonFlags) inputs(fs *pflag.FlagSet, decrypt bool) ([]string, []fileJob, error) {
	files, several, err := f.files(fs)
	if err != nil || !several {
		return files, nil, err
	}
	jobs, err := planJobs(files, f.suffix, f.outputDir, decrypt)
	return files, jobs, err
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

// cacheFlags configure the data-key cache (materials.Caching).
type cacheFlags struct {
	maxAge, maxMessages, maxBytes, capacity string
}

func (f *cacheFlags) register(fs *pflag.FlagSet, decrypt bool) {
	if decrypt {
		fs.StringVar(&f.maxAge, "cache-max-age", "", "turn on the data-key cache: reuse an unwrapped data key for up to `DURATION` (such as 30s or 5m)")
	} else {
		fs.StringVar(&f.maxAge, "cache-max-age", "", "turn on the data-key cache: messages share a data key for up to `DURATION` (such as 30s or 5m)")
		fs.StringVar(&f.maxMessages, "cache-max-messages", "", "with the cache: a data key encrypts at most `N` messages (1 to 4294967296, the default)")
		fs.StringVar(&f.maxBytes, "cache-max-bytes", "", "with the cache: a data key encrypts at most `N` bytes of plaintext in all (K, M, G, T suffixes; default and most 2^63-1)")
	}
	fs.StringVar(&f.capacity, "cache-capacity", "", "with the cache: keep at most `N` data keys (default 1000)")
}

// options returns the caching options the flags ask for, nil when the
// cache is off. bounded reports --cache-max-bytes.
func (f *cacheFlags) options() (opts *materials.CachingOptions, bounded bool, err error) {
	if f.maxAge == "" {
		for _, x := range []struct{ name, value string }{
			{"--cache-max-messages", f.maxMessages}, {"--cache-max-bytes", f.maxBytes}, {"--cache-capacity", f.capacity},
		} {
			if x.value != "" {
				return nil, false, usageErrorf("%s needs --cache-max-age, which turns the data-key cache on", x.name)
			}
		}
		return nil, false, nil
	}
	age, err := time.ParseDuration(f.maxAge)
	if err != nil || age <= 0 {
		return nil, false, usageErrorf("--cache-max-age %q: want a positive duration such as 30s, 5m or 1h", f.maxAge)
	}
	opts = &materials.CachingOptions{MaxAge: age}
	if f.maxMessages != "" {
		n, err := strconv.ParseUint(f.maxMessages, 10, 64)
		if err != nil || n == 0 || n > materials.CachingMaxMessages {
			return nil, false, usageErrorf("--cache-max-messages %q: want a whole number from 1 to %d (2^32)", f.maxMessages, materials.CachingMaxMessages)
		}
		opts.MaxMessagesEncrypted = n
	}
	if f.maxBytes != "" {
		n, err := parseByteCount(f.maxBytes)
		if err != nil {
			return nil, false, usageErrorf("--cache-max-bytes %q: want a size from 1 to %d bytes (2^63-1), such as 64M or 10G", f.maxBytes, materials.CachingMaxBytes)
		}
		opts.MaxBytesEncrypted = n
	}
	capacity := materials.DefaultCacheCapacity
	if f.capacity != "" {
		n, err := strconv.ParseInt(f.capacity, 10, 32)
		if err != nil || n < 1 {
			return nil, false, usageErrorf("--cache-capacity %q: want a whole number from 1 to %d", f.capacity, math.MaxInt32)
		}
		capacity = int(n)
	}
	opts.Cache = materials.NewCache(capacity)
	return opts, f.maxBytes != "", nil
}

// parseByteCount parses a positive byte count that fits an int64, with an
// optional binary suffix: K, M, G or T (or KiB, KB, ...).
func parseByteCount(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	shift := 0
	if k := len(t); k > 0 {
		if i := strings.IndexByte("KMGT", t[k-1]); i >= 0 {
			shift, t = 10*(i+1), t[:k-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 1 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q: want a byte count from 1 to 2^63-1", s)
	}
	return n << shift, nil
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
	if err := checkBoolValues(fs, args); err != nil {
		return false, err
	}
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
	var required []string
	fs := c.newFlagSet("encrypt")
	f.register(fs, false)
	fs.StringArrayVar(&required, "required-context", nil, "authenticate the -c pair of `KEY` without storing it in the message (repeatable): readers must give it with -c (the ESDK's required encryption context)")
	fs.StringVar(&c.kmsFlag, "kms", "", kmsFlagHelp)
	fs.StringVar(&suiteName, "suite", "", "algorithm suite `ID`, hex (0x0478) or name; default 0x0578, or 0x0378 under forbid-encrypt-allow-decrypt")
	fs.StringVar(&frameSize, "frame-size", strconv.Itoa(envelope.DefaultFrameSize), "plaintext bytes per frame, `N` (suffixes K and M for KiB and MiB)")
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
	if err != nil {
		return usageErrorf("--frame-size: %v", err)
	}
	if f.limits.maxFrame != "none" {
		if max, err := parseByteCount(f.limits.maxFrame); err == nil && int64(n) > max {
			return &exitError{code: 2, err: &hintError{
				fmt.Errorf("--frame-size %s is above --max-frame-size %s, the largest frame readers accept by default", frameSize, f.limits.maxFrame),
				fmt.Sprintf("a reader holds a frame in memory until it authenticates; to write such frames anyway, add --max-frame-size %s, and give the same flag to every reader", frameSize)}}
		}
	}
	opts = append(opts, envelope.WithFrameSize(n))
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

// fileJob is one FILE of a command given several, and its output.
type fileJob struct {
	in, out string
}

// planJobs names the output of each FILE: FILE+suffix (encrypt) or FILE
// without suffix (decrypt), beside FILE or in outDir. It refuses, before
// anything is written, names it cannot derive, two FILEs with one output,
// and outputs that would replace an input.
func planJobs(files []string, suffix, outDir string, decrypt bool) ([]fileJob, error) {
	if suffix == "" || strings.ContainsAny(suffix, `/`+string(filepath.Separator)) {
		return nil, usageErrorf("--suffix %q: want a file name ending such as .esdk (not empty, no directory)", suffix)
	}
	if outDir != "" {
		st, err := os.Stat(outDir)
		switch {
		case err != nil:
			return nil, fmt.Errorf("--output-dir: %w", unwrapPathError(err, outDir))
		case !st.IsDir():
			return nil, fmt.Errorf("--output-dir: %q is not a directory", outDir)
		}
	}
	jobs := make([]fileJob, len(files))
	var inputs inputFiles
	for i, name := range files {
		if name == "-" {
			return nil, usageErrorf("standard input (\"-\") cannot be one of several FILEs: its output would have no name; use -o with it alone")
		}
		st, _ := os.Stat(name)
		inputs.add(name, name, st)
		dir, base := filepath.Split(name)
		switch {
		case !decrypt:
			base += suffix
		case strings.HasSuffix(base, suffix) && len(base) > len(suffix):
			base = strings.TrimSuffix(base, suffix)
		case outDir == "":
			return nil, &exitError{code: 2, err: &hintError{
				fmt.Errorf("%q does not end in %q, so its output has no name", name, suffix),
				"give --output-dir DIR to decrypt it into another directory under the same name, or --suffix"}}
		}
		if outDir != "" {
			dir = outDir
		}
		jobs[i] = fileJob{in: name, out: filepath.Join(dir, base)}
	}
	outputs := make(map[string]string, len(jobs)) // absolute path → FILE
	for _, j := range jobs {
		p, err := filepath.Abs(j.out)
		if err != nil {
			return nil, err
		}
		if other, dup := outputs[p]; dup {
			return nil, usageErrorf("%q and %q would both be written to %q", other, j.in, j.out)
		}
		outputs[p] = j.in
		switch in, own, found := inputs.find(j.out); {
		case found && own:
			return nil, usageErrorf("the output of %q would replace the input %q", j.in, in)
		case found:
			return nil, usageErrorf("the output of %q, %q, is the input %q under another name", j.in, j.out, in)
		}
	}
	return jobs, nil
}

// eachFile runs do on each job's input and output, reporting each failure
// by its FILE's name as it happens and going on with the others. The
// outputs are committed together at the end (batch).
func (c *cli) eachFile(jobs []fileJob, verb string, mode os.FileMode, do func(in *input, dst io.Writer) error) error {
	var b batch
	defer b.abort()
	for _, j := range jobs {
		err := c.oneFile(&b, j, mode, do)
		if c.ctx.Err() != nil {
			return context.Cause(c.ctx) // a signal: nothing is committed
		}
		if err != nil {
			c.report(fmt.Errorf("%s %q: %w", verb, j.in, err))
		}
	}
	written, errs := b.commit()
	for _, err := range errs {
		c.report(err)
	}
	if failed := len(jobs) - written; failed > 0 {
		switch {
		case len(jobs) == 1:
			return errSilent // its error is reported above
		case written == 0:
			return fmt.Errorf("no output written: all %d files failed", len(jobs))
		}
		return fmt.Errorf("%d of %d files failed; the others' outputs were written", failed, len(jobs))
	}
	if len(errs) > 0 {
		return errSilent
	}
	return nil
}

func (c *cli) oneFile(b *batch, j fileJob, mode os.FileMode, do func(in *input, dst io.Writer) error) error {
	in, err := c.openFile(j.in)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return err
	}
	defer in.Close()
	out, err := b.create(c, j.out, mode)
	if err != nil {
		return err
	}
	if err := do(in, out.w); err != nil {
		out.abort()
		var be *bodyError
		if errors.As(err, &be) {
			return be.err
		}
		return err
	}
	return b.add(out)
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
		return kmsHint(err, hintKey(ke))
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
	case errors.Is(err, envelope.ErrTooLarge):
		return &hintError{err, "raise --max-frame-size (or --max-header-size), and give readers the same flag: by default they refuse such messages"}
	}
	return err
}

// decryptHint adds advice to a decrypt error and, when the message itself
// is at fault, the input's name.
func decryptHint(err error, name string) error {
	if h := decryptAdvice(err); h != "" {
		return &hintError{err, h}
	}
	if errors.Is(err, envelope.ErrTampered) || errors.Is(err, envelope.ErrTruncated) || errors.Is(err, envelope.ErrMalformed) {
		return fmt.Errorf("decrypting %s: %w", name, err)
	}
	return err
}

// decryptAdvice returns advice on how to fix a decrypt error, or "".
func decryptAdvice(err error) string {
	var pe *envelope.PolicyError
	var ue *keyring.UnwrapError
	var ke *kms.Error
	if errors.As(err, &ke) {
		switch ke.Code {
		case kms.CodeDisabled:
			return fmt.Sprintf("enable the key with \"envelope keys enable %s\"", hintKey(ke))
		case kms.CodeInvalidState:
			return fmt.Sprintf("if the key is pending deletion, restore it with \"envelope keys cancel-deletion %s\"", hintKey(ke))
		}
	}
	switch {
	case errors.As(err, &pe):
		return "to read messages written without key commitment, add --commitment-policy require-encrypt-allow-decrypt"
	case errors.As(err, &ue) || errors.Is(err, envelope.ErrNoDataKey):
		return "pass one of the wrapping keys above with -k; \"envelope inspect\" lists them"
	case errors.Is(err, envelope.ErrContextMismatch):
		return "\"envelope inspect\" shows the message's encryption context"
	case errors.Is(err, envelope.ErrSignedMessage):
		return "drop --unsigned-only to accept signed messages (their last frame is released only after the signature verifies)"
	case errors.Is(err, envelope.ErrTooManyEncryptedDataKeys):
		return "raise --max-encrypted-data-keys if the message is trusted"
	case errors.Is(err, envelope.ErrTooLarge):
		return "raise --max-header-size or --max-frame-size if the message is trusted (a frame is held in memory until it authenticates)"
	}
	return ""
}

// hintKey returns the key a KMS error is about, for a hint, or "KEY".
func hintKey(ke *kms.Error) string {
	if ke.KeyARN == "" {
		return "KEY"
	}
	return ke.KeyARN
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
