// Package keyring defines how data keys are wrapped and unwrapped, and
// provides the raw keyrings of the AWS Encryption SDK: [RawAES], [RawRSA] and
// [Multi]. Keyrings backed by a KMS satisfy the same [Keyring] interface.
//
// A keyring sees materials: on encrypt it generates the data key if none is
// there yet (it is then the generator) and adds one encrypted data key; on
// decrypt it tries to unwrap one of the message's encrypted data keys and, on
// success, sets the plaintext data key. The wire form of each keyring's
// encrypted data keys is the ESDK's, so messages move between envelope and
// the official SDKs.
package keyring

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/envelopekms/envelope/suite"
)

// Keyring wraps and unwraps data keys.
type Keyring interface {
	// OnEncrypt generates the data key if m has none, then adds an
	// encrypted data key that wraps it.
	OnEncrypt(ctx context.Context, m *EncryptionMaterials) error
	// OnDecrypt sets m.DataKey from one of edks, if m has no data key yet.
	// When none can be unwrapped it returns an error that wraps
	// [ErrNoDataKey], usually an *[UnwrapError].
	OnDecrypt(ctx context.Context, m *DecryptionMaterials, edks []EncryptedDataKey) error
}

// EncryptedDataKey is a data key wrapped by one keyring, as stored in a
// message header.
type EncryptedDataKey struct {
	// ProviderID names the kind or namespace of the wrapping key:
	// "aws-kms" for KMS keys, the key namespace for raw keys.
	ProviderID string
	// ProviderInfo identifies the wrapping key within the provider (a key
	// ARN, or a raw key's name and wrapping parameters).
	ProviderInfo []byte
	// Ciphertext is the wrapped data key.
	Ciphertext []byte
}

// String describes the wrapping key, never the data key.
func (k EncryptedDataKey) String() string {
	switch k.ProviderID {
	case "aws-kms", "aws-kms-rsa":
		return fmt.Sprintf("%s key %q", k.ProviderID, k.ProviderInfo)
	}
	if name, ok := rawAESKeyName(k.ProviderInfo); ok {
		return fmt.Sprintf("raw AES key namespace=%q name=%q", k.ProviderID, name)
	}
	return fmt.Sprintf("raw key namespace=%q name=%q", k.ProviderID, k.ProviderInfo)
}

// rawAESKeyName recovers the key name from a raw AES provider info: the name
// followed by the tag length (128 bits), IV length (12) and a 12-byte IV.
func rawAESKeyName(info []byte) (string, bool) {
	if len(info) < rawAESInfoSuffix {
		return "", false
	}
	tail := info[len(info)-rawAESInfoSuffix:]
	if binary.BigEndian.Uint32(tail) != 128 || binary.BigEndian.Uint32(tail[4:]) != 12 {
		return "", false
	}
	return string(info[:len(info)-rawAESInfoSuffix]), true
}

// EncryptionMaterials is what a message is encrypted with.
type EncryptionMaterials struct {
	Suite *suite.Suite
	// Context is the full encryption context, including the signing
	// public key of a signed suite. Keyrings bind it where they can.
	Context map[string]string
	// DataKey is the plaintext data key, nil until a generator sets it.
	DataKey []byte
	// EncryptedDataKeys are the wrapped copies of DataKey.
	EncryptedDataKeys []EncryptedDataKey
	// SigningKey signs the message for signed suites.
	SigningKey *ecdsa.PrivateKey
}

// DecryptionMaterials is what a message is decrypted with.
type DecryptionMaterials struct {
	Suite   *suite.Suite
	Context map[string]string
	// DataKey is the plaintext data key, nil until a keyring unwraps it.
	DataKey []byte
	// VerificationKey checks the signature of signed suites.
	VerificationKey *ecdsa.PublicKey
}

// ErrNoDataKey is wrapped by every error that says no keyring could produce
// the plaintext data key.
var ErrNoDataKey = errors.New("no key could unwrap the data key")

// UnwrapError reports that no encrypted data key of a message could be
// unwrapped. It lists the message's wrapping keys and the keyrings tried, so
// that a person can see which key they are missing.
type UnwrapError struct {
	// Keys are the message's encrypted data keys.
	Keys []EncryptedDataKey
	// Tried describes each keyring that was tried.
	Tried []string
	// Errs holds the failures of unwrap attempts that matched a key but
	// failed (a wrong key of the same name, a KMS refusal).
	Errs []error
}

func (e *UnwrapError) Error() string {
	var b strings.Builder
	b.WriteString(ErrNoDataKey.Error())
	b.WriteString("; the message's data key is wrapped by: ")
	for i, k := range e.Keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k.String())
	}
	b.WriteString("; tried: ")
	if len(e.Tried) == 0 {
		b.WriteString("no keyring")
	}
	b.WriteString(strings.Join(e.Tried, ", "))
	for _, err := range e.Errs {
		b.WriteString("; ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns ErrNoDataKey and the attempts' errors.
func (e *UnwrapError) Unwrap() []error { return append([]error{ErrNoDataKey}, e.Errs...) }

// describe names a keyring for an error message.
func describe(k Keyring) string {
	if s, ok := k.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", k)
}
