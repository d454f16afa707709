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

// sizeUnits is how the help of every size flag names the suffixes that
// parseSize takes.
const sizeUnits = "suffix K, M, G or T for KiB, MiB, GiB or TiB"

// parseSize parses a size in bytes, for every flag that takes one: a
// decimal number with an optional unit, K, M, G or T for KiB, MiB, GiB or
// TiB (binary multiples: 1K is 1024 bytes), which may be followed by "iB"
// or "B" (64K, 64KiB and 64KB are one size); or the number followed by "B"
// alone. Letters may be in either case; spaces around the size are
// ignored. The number has no sign and no fraction, and the size is at most
// 2^63-1 bytes. Which sizes a flag takes, and "none" where a flag may have
// no limit, are the flag's business.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRight(t, "BbIiKkMmGgTt")
	unit := strings.ToUpper(t[len(num):])
	shift := 0
	if unit != "" {
		if i := strings.IndexByte("KMGT", unit[0]); i >= 0 {
			shift, unit = 10*(i+1), unit[1:]
		}
		if unit != "" && unit != "B" && (shift == 0 || unit != "IB") {
			return 0, fmt.Errorf("%q: unknown unit %q; want a number of bytes with an optional %s", s, t[len(num):], sizeUnits)
		}
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, fmt.Errorf("%q: want a number of bytes with an optional %s", s, sizeUnits)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q: more than 2^63-1 bytes", s)
	}
	return n << shift, nil
}

// sizeText writes a byte count as parseSize reads it, in the largest unit
// that divides it.
func sizeText(n int64) string {
	for i := 4; i > 0; i-- {
		if unit := int64(1) << (10 * i); n != 0 && n%unit == 0 {
			return strconv.FormatInt(n/unit, 10) + "KMGT"[i-1:i]
		}
	}
	return strconv.FormatInt(n, 10)
}
