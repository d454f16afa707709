package format

import (
	"errors"
	"fmt"
	"io"
)

// The kinds of failure a message can cause. An error for a message that
// does not parse or does not verify wraps one of them (but for the
// *[TooManyEDKsError] of [ReadHeader]), and its text is the sentinel's
// sentence followed by the part of the message at fault: "message is
// truncated: ends inside the frame 2".
var (
	// ErrMalformed means the bytes are not a well-formed message.
	ErrMalformed = errors.New("not a valid encrypted message")
	// ErrTruncated means the message ends before its last part.
	ErrTruncated = errors.New("message is truncated")
	// ErrTampered means an authentication check failed: a tag, the key
	// commitment or the signature. The message was altered or corrupted, or
	// was not made with the key that unwrapped it.
	ErrTampered = errors.New("message is tampered or corrupt")
	// ErrTooLarge means the message is larger than a limit the reader set:
	// a header longer than [Limits.MaxHeaderSize], or a frame or
	// non-framed body longer than [Limits.MaxFrame]. It is not in itself
	// a sign of tampering; a trusted message may be read with a higher
	// limit.
	ErrTooLarge = errors.New("message exceeds a size limit")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func tampered(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrTampered, fmt.Sprintf(format, args...))
}

// readErr turns an I/O error met while reading part of a message into the
// error callers see: an early end is ErrTruncated, anything else is passed on
// as an I/O failure.
func readErr(err error, part string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: ends inside the %s", ErrTruncated, part)
	}
	return fmt.Errorf("format: reading the %s: %w", part, err)
}
