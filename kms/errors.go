package kms

import (
	"context"
	"errors"
	"fmt"
)

// Error is a KMS error with an AWS KMS error name (Code), so that the
// server can answer with the exact exception AWS clients expect.
type Error struct {
	// Code is the AWS exception name, such as "NotFoundException".
	Code string
	// Message is the human-readable explanation.
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, kms.ErrDisabled) works on any error of that kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == ""
}

// AWS KMS exception names.
const (
	CodeNotFound             = "NotFoundException"
	CodeDisabled             = "DisabledException"
	CodeInvalidState         = "KMSInvalidStateException"
	CodeInvalidCiphertext    = "InvalidCiphertextException"
	CodeIncorrectKey         = "IncorrectKeyException"
	CodeInvalidKeyUsage      = "InvalidKeyUsageException"
	CodeValidation           = "ValidationException"
	CodeAlreadyExists        = "AlreadyExistsException"
	CodeInvalidAliasName     = "InvalidAliasNameException"
	CodeInvalidArn           = "InvalidArnException"
	CodeInvalidGrantToken    = "InvalidGrantTokenException"
	CodeInvalidMarker        = "InvalidMarkerException"
	CodeLimitExceeded        = "LimitExceededException"
	CodeUnsupportedOperation = "UnsupportedOperationException"
	CodeMalformedPolicy      = "MalformedPolicyDocumentException"
	CodeTag                  = "TagException"
	CodeDryRun               = "DryRunOperationException"
	CodeAccessDenied         = "AccessDeniedException"
	CodeInternal             = "KMSInternalException"
)

// Sentinels for errors.Is; each matches every Error with its Code.
var (
	ErrNotFoundKey       = &Error{Code: CodeNotFound}
	ErrDisabled          = &Error{Code: CodeDisabled}
	ErrInvalidState      = &Error{Code: CodeInvalidState}
	ErrInvalidCiphertext = &Error{Code: CodeInvalidCiphertext}
	ErrIncorrectKey      = &Error{Code: CodeIncorrectKey}
	ErrInvalidKeyUsage   = &Error{Code: CodeInvalidKeyUsage}
	ErrValidation        = &Error{Code: CodeValidation}
	ErrAlreadyExists     = &Error{Code: CodeAlreadyExists}
	ErrUnsupported       = &Error{Code: CodeUnsupportedOperation}
)

func newError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func validationf(format string, args ...any) *Error {
	return newError(CodeValidation, format, args...)
}

// internal wraps an unexpected failure (storage, randomness) as a
// KMSInternalException, keeping the cause for errors.Unwrap but out of the
// message clients see.
type internalError struct{ cause error }

func (e *internalError) Error() string { return CodeInternal + ": " + e.cause.Error() }
func (e *internalError) Unwrap() error { return e.cause }

// CodeOf returns the AWS exception name of err: its Code if it is an
// *Error, KMSInternalException otherwise.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

func internal(err error) error {
	var e *Error
	var ie *internalError
	if err == nil || errors.As(err, &e) || errors.As(err, &ie) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &internalError{cause: err}
}
