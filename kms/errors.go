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
	// KeyARN is the ARN of the key the error is about, when there is one
	// and it is known: the key that is disabled, pending deletion, of the
	// wrong usage or spec, not the one a ciphertext was made with, or
	// that does not exist (a key id or key ARN that names none). It is ""
	// for errors about no particular key, and for an alias that does not
	// exist. The AWS API carries it only in Message; its clients recover
	// what they can from there.
	KeyARN string
}

// Error returns the Code and the Message.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is reports whether target is a sentinel (an *Error with only a Code) with
// the same Code, so that errors.Is(err, kms.ErrDisabled) works on any
// error of that kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == "" && t.KeyARN == ""
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
	CodeInvalidSignature     = "KMSInvalidSignatureException"
	CodeInvalidMac           = "KMSInvalidMacException"
	CodeIncorrectKeyMaterial = "IncorrectKeyMaterialException"
	CodeInvalidImportToken   = "InvalidImportTokenException"
	CodeExpiredImportToken   = "ExpiredImportTokenException"
)

// Sentinels for errors.Is; each matches every Error with its Code.
// ErrKeyNotFound matches every NotFoundException: of a key, of an alias,
// of a key policy (it is not the [Store]'s [ErrNoRecord]).
var (
	ErrKeyNotFound       = &Error{Code: CodeNotFound}
	ErrDisabled          = &Error{Code: CodeDisabled}
	ErrInvalidState      = &Error{Code: CodeInvalidState}
	ErrInvalidCiphertext = &Error{Code: CodeInvalidCiphertext}
	ErrIncorrectKey      = &Error{Code: CodeIncorrectKey}
	ErrInvalidKeyUsage   = &Error{Code: CodeInvalidKeyUsage}
	ErrValidation        = &Error{Code: CodeValidation}
	ErrAlreadyExists     = &Error{Code: CodeAlreadyExists}
	ErrUnsupported       = &Error{Code: CodeUnsupportedOperation}
	// ErrInvalidSignature is Verify's answer for a signature that does
	// not verify, ErrInvalidMac VerifyMac's for a MAC.
	ErrInvalidSignature = &Error{Code: CodeInvalidSignature}
	ErrInvalidMac       = &Error{Code: CodeInvalidMac}
	// ErrIncorrectKeyMaterial is ImportKeyMaterial's answer for material
	// that is not what the key takes (another key's material, or material
	// of the wrong length or kind); ErrInvalidImportToken and
	// ErrExpiredImportToken its answers for an import token that is not
	// one of this KMS for this key, or is past its 24 hours.
	ErrIncorrectKeyMaterial = &Error{Code: CodeIncorrectKeyMaterial}
	ErrInvalidImportToken   = &Error{Code: CodeInvalidImportToken}
	ErrExpiredImportToken   = &Error{Code: CodeExpiredImportToken}
)

func newError(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// keyError is newError for an error about the key with the given id.
func (s *Service) keyError(id, code, format string, args ...any) *Error {
	e := newError(code, format, args...)
	e.KeyARN = s.KeyARN(id)
	return e
}

func validationf(format string, args ...any) *Error {
	return newError(CodeValidation, format, args...)
}

// internalError is an unexpected failure (storage, randomness) as a
// KMSInternalException. It keeps the cause, for errors.Unwrap and the
// logs: a server answers its clients with no more than the Code.
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

// internal wraps an unexpected failure as an internalError; nil, an
// *Error, a cancelled context and an error already wrapped are returned
// as they are.
func internal(err error) error {
	var e *Error
	var ie *internalError
	if err == nil || errors.As(err, &e) || errors.As(err, &ie) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &internalError{cause: err}
}
