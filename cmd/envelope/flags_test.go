package main

import (
	"errors"
	"math"
	"testing"
)

// TestParseSize checks the one grammar of the size flags: every unit, with
// and without "iB" or "B", in either case; and the refusal of signs,
// fractions, unknown units, junk and sizes past 2^63-1.
func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"4096", 4096, true},
		{"512B", 512, true},
		{"512b", 512, true},
		{" 64K ", 64 << 10, true},
		{"64K", 64 << 10, true},
		{"64k", 64 << 10, true},
		{"64KB", 64 << 10, true},
		{"64KiB", 64 << 10, true},
		{"64kib", 64 << 10, true},
		{"1M", 1 << 20, true},
		{"1MB", 1 << 20, true},
		{"1MiB", 1 << 20, true},
		{"1m", 1 << 20, true},
		{"2G", 2 << 30, true},
		{"2GB", 2 << 30, true},
		{"2GiB", 2 << 30, true},
		{"3T", 3 << 40, true},
		{"3TB", 3 << 40, true},
		{"3TiB", 3 << 40, true},
		{"007K", 7 << 10, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"9223372036854775807B", math.MaxInt64, true},
		{"8388607T", 8388607 << 40, true},

		// Past 2^63-1.
		{"9223372036854775808", 0, false},
		{"8388608T", 0, false},
		{"9007199254740992K", 0, false},
		{"99999999999999999999999", 0, false},
		// Signs and fractions.
		{"-1", 0, false},
		{"-1K", 0, false},
		{"+5", 0, false},
		{"1.5K", 0, false},
		{"1e6", 0, false},
		// Units that are not units.
		{"1P", 0, false},
		{"1KI", 0, false},
		{"1iB", 0, false},
		{"1I", 0, false},
		{"1BB", 0, false},
		{"1KBB", 0, false},
		{"1BK", 0, false},
		{"1KM", 0, false},
		{"1 K", 0, false},
		// Junk.
		{"", 0, false},
		{" ", 0, false},
		{"K", 0, false},
		{"KiB", 0, false},
		{"B", 0, false},
		{"none", 0, false},
		{"lots", 0, false},
		{"0x10", 0, false},
		{"1_000", 0, false},
		{"１", 0, false}, // a full-width digit
	} {
		got, err := parseSize(tc.in)
		switch {
		case tc.ok && (err != nil || got != tc.want):
			t.Errorf("parseSize(%q) = %d, %v; want %d, nil", tc.in, got, err, tc.want)
		case !tc.ok && err == nil:
			t.Errorf("parseSize(%q) = %d, nil; want an error", tc.in, got)
		}
	}
}

// TestSizeText checks that sizeText writes what parseSize reads back, in
// the largest unit that divides it.
func TestSizeText(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0"}, {1, "1"}, {1000, "1000"}, {1 << 10, "1K"}, {1<<20 + 1<<10, "1025K"},
		{1 << 20, "1M"}, {4 << 20, "4M"}, {64 << 20, "64M"}, {2 << 30, "2G"}, {5 << 40, "5T"}, {1 << 50, "1024T"},
		{math.MaxInt64, "9223372036854775807"},
	} {
		got := sizeText(tc.n)
		if got != tc.want {
			t.Errorf("sizeText(%d) = %q, want %q", tc.n, got, tc.want)
		}
		if back, err := parseSize(got); err != nil || back != tc.n {
			t.Errorf("parseSize(sizeText(%d)) = %d, %v; want %d", tc.n, back, err, tc.n)
		}
	}
}

// TestCheckBoolValues checks that a bool flag followed by a separate true
// or false is refused, and nothing else: the values of other flags, "--"
// and the "=" form pass.
func TestCheckBoolValues(t *testing.T) {
	c := &cli{}
	fs := c.newFlagSet("decrypt")
	var f commonFlags
	f.register(fs, true)
	var unsignedOnly bool
	fs.BoolVar(&unsignedOnly, "unsigned-only", false, "")
	for _, tc := range []struct {
		args    []string
		refused bool
	}{
		{[]string{"--progress", "false", "x.esdk"}, true},
		{[]string{"-k", "K", "--unsigned-only", "1"}, true},
		{[]string{"--no-clobber", "TRUE", "-o", "out"}, true},
		{[]string{"--progress=false", "x.esdk"}, false},
		{[]string{"--progress", "./false"}, false},
		{[]string{"--progress", "--", "false"}, false},
		{[]string{"--", "--progress", "false"}, false},
		{[]string{"-o", "--progress", "false"}, false}, // -o takes "--progress"; false is a FILE
		{[]string{"-c", "false", "x"}, false},
		{[]string{"-ofalse", "--progress"}, false},
		{[]string{"--context", "true"}, false},
		{[]string{"--unknown", "false"}, false}, // the parser reports the unknown flag
	} {
		err := checkBoolValues(fs, tc.args)
		var ee *exitError
		if refused := err != nil; refused != tc.refused || refused && (!errors.As(err, &ee) || ee.code != 2) {
			t.Errorf("checkBoolValues(%q) = %v; want refused %v (a usage error)", tc.args, err, tc.refused)
		}
	}
}
