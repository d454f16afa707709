package main

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// errSilent is returned when the message was already printed.
var errSilent = errors.New("")

// report prints an error, and a hint when one helps, to stderr.
func (c *cli) report(err error) {
	if errors.Is(err, errSilent) {
		return
	}
	fmt.Fprintf(c.stderr, "envelope: %v\n", err)
	var h *hintError
	if errors.As(err, &h) {
		fmt.Fprintf(c.stderr, "hint: %s\n", h.hint)
	}
}

// version returns the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
