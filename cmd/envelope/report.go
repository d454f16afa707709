package main

// How a command's failure reaches the user: the error types that carry an
// exit status, a hint or a plainer wording, and report, which prints them.

import (
	"errors"
	"fmt"
)

// errSilent is returned when the message was already printed.
var errSilent = errors.New("")

// report prints an error, and a hint when one helps, to stderr, without
// the secrets of the stores the command named.
func (c *cli) report(err error) {
	if errors.Is(err, errSilent) {
		return
	}
	fmt.Fprintf(c.stderr, "envelope: %s\n", c.redact(err.Error()))
	var h *hintError
	if errors.As(err, &h) {
		fmt.Fprintf(c.stderr, "hint: %s\n", c.redact(h.hint))
	}
}

// exitError carries an exit status other than 1 (usage errors exit 2).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf returns a usage error: its message, and exit status 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// hintError adds advice on how to fix an error.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// plainError is err told as msg.
type plainError struct {
	msg string
	err error
}

func (e *plainError) Error() string { return e.msg }
func (e *plainError) Unwrap() error { return e.err }
