package main

// The flags of the commands that read or write messages (encrypt, decrypt,
// rewrap, inspect), and the envelope options they make.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/materials"
	"github.com/envelopekms/envelope/suite"
	"github.com/spf13/pflag"
)

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

// limitFlags are the limits on what a message may cost (envelope's
// WithMax... options); each takes "none" to lift it.
type limitFlags struct {
	maxEDKs, maxHeader, maxFrame string
}

// register adds the flags; frame adds --max-frame-size (which rewrap, not
// holding frames, does not need).
func (f *limitFlags) register(fs *pflag.FlagSet, encrypt bool) {
	f.registerHeader(fs, encrypt)
	help := "refuse messages whose frames (or non-framed body) hold more than `SIZE` bytes, the plaintext held in memory before it authenticates (" + sizeUnits + "; none: no limit)"
	if encrypt {
		help = "allow frames of up to `SIZE` bytes (--frame-size above the readers' default needs it here and where the message is read; " + sizeUnits + "; none: no limit)"
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
		"refuse message headers longer than `SIZE` bytes ("+sizeUnits+"; none: no limit)")
}

// maxLimitSize is the largest --max-header-size and --max-frame-size: 2 GiB.
const maxLimitSize = 2 << 30

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
			v, err := parseSize(x.value)
			if n = int(v); err != nil || v < 1 || v > maxLimitSize || int64(n) != v {
				return nil, usageErrorf("%s %q: want a size from 1 byte to 2G, such as 64K or 16M, or none", x.flag, x.value)
			}
		}
		opts = append(opts, x.option(n))
	}
	return opts, nil
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
		fs.StringVar(&f.maxBytes, "cache-max-bytes", "", "with the cache: a data key encrypts at most `N` bytes of plaintext in all ("+sizeUnits+"; default and most 2^63-1)")
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
		n, err := parseSize(f.maxBytes)
		if err != nil || n < 1 {
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
