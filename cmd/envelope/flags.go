package main

// Flag sets and their parsing, shared by every command. A command makes
// its flag set with newFlagSet and parses its arguments with parse, which
// prints the command's help for -h or --help and turns pflag's errors into
// usage errors (exit status 2). parseSize is the one grammar of every flag
// that takes a size.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

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

// checkBoolValues refuses a bool flag followed by a separate true or false
// ("--progress false"): pflag takes a bool flag's value only after "="
// (--progress=false), so the word would silently become a FILE argument.
// It walks args as pflag does, skipping the values of other flags.
func checkBoolValues(fs *pflag.FlagSet, args []string) error {
	isBool := func(f *pflag.Flag) bool { return f != nil && f.NoOptDefVal != "" }
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			if a == "--" {
				return nil
			}
			continue
		}
		var flag *pflag.Flag
		name := ""
		if strings.HasPrefix(a, "--") {
			if strings.Contains(a, "=") {
				continue
			}
			name = a
			flag = fs.Lookup(a[2:])
		} else {
			// A group of shorthands: the last one may take the next arg.
			for j := 1; j < len(a); j++ {
				flag = fs.ShorthandLookup(a[j : j+1])
				if flag == nil || !isBool(flag) {
					if j < len(a)-1 {
						flag = nil // the rest of the group is its value
					}
					break
				}
			}
			name = a
		}
		switch {
		case flag == nil:
		case !isBool(flag):
			i++ // its value
		case i+1 < len(args):
			if _, err := strconv.ParseBool(args[i+1]); err == nil {
				return &exitError{code: 2, err: &hintError{
					fmt.Errorf("%s %s: a true or false for %s goes after \"=\", as %s=%s", name, args[i+1], name, name, args[i+1]),
					fmt.Sprintf("to read a file named %q, write ./%s", args[i+1], args[i+1])}}
			}
		}
	}
	return nil
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
