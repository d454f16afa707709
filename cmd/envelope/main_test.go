package main

import (
	"errors"
	"testing"
)

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
