// Package keyring defines how data keys are wrapped and unwrapped, and
// provides the raw keyrings of the AWS Encryption SDK: [RawAES], [RawRSA],
// [RawECDH] and [Multi]. Keyrings backed by a KMS satisfy the same [Keyring] interface.
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

	"github.com/envelopekms/envelope/keyring/internal/ecdhwire"
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
	// "aws-kms" for symmetric KMS keys, "aws-kms-rsa" for RSA KMS keys,
	// the key namespace for raw keys.
	ProviderID string
	// ProviderInfo identifies the wrapping key within the provider (a key
	// ARN, or a raw key's name and wrapping parameters).
	ProviderInfo []byte
	// Ciphertext is the wrapped data key.
	Ciphertext []byte
}

// String describes the wrapping key, never the data key. Names longer than
// 100 bytes are cut short (a message may hold names of 64 KiB).
func (k EncryptedDataKey) String() string {
	id := clip(k.ProviderID)
	switch k.ProviderID {
	case "aws-kms", "aws-kms-rsa":
		return fmt.Sprintf("%s key %q", id, clip(string(k.ProviderInfo)))
	case ecdhwire.RawProviderID, ecdhwire.KMSProviderID:
		kind := "raw ECDH"
		if k.ProviderID == ecdhwire.KMSProviderID {
			kind = "KMS ECDH"
		}
		p, err := ecdhwire.ParseProviderInfo(k.ProviderInfo)
		if err != nil {
			return fmt.Sprintf("%s key with malformed provider info (%d bytes)", kind, len(k.ProviderInfo))
		}
		return fmt.Sprintf("%s key %s", kind, p.Describe())
	}
	if name, ok := rawAESKeyName(k.ProviderInfo); ok {
		return fmt.Sprintf("raw AES key namespace=%q name=%q", id, clip(name))
	}
	return fmt.Sprintf("raw key namespace=%q name=%q", id, clip(string(k.ProviderInfo)))
}

// maxNameText is the most bytes of a name from a message that an error or
// a description quotes.
const maxNameText = 100

// clip cuts s to maxNameText bytes, marking the cut.
func clip(s string) string {
	if len(s) <= maxNameText {
		return s
	}
	return fmt.Sprintf("%s…(%d bytes)", strings.ToValidUTF8(s[:maxNameText], ""), len(s))
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
	// Suite is the message's algorithm suite; it sets the data key's
	// length.
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
	// RequiredContextKeys are the keys of Context whose pairs the message
	// authenticates but does not store (the ESDK's required encryption
	// context): a reader must supply them. Keyrings bind the whole
	// Context, these pairs included.
	RequiredContextKeys []string
}

// DecryptionMaterials is what a message is decrypted with.
type DecryptionMaterials struct {
	// Suite is the message's algorithm suite.
	Suite *suite.Suite
	// Context is the encryption context the keyrings unwrap with: the
	// one the message stores, and the caller's pairs it does not store
	// (RequiredContextKeys).
	Context map[string]string
	// DataKey is the plaintext data key, nil until a keyring unwraps it.
	DataKey []byte
	// VerificationKey checks the signature of signed suites.
	VerificationKey *ecdsa.PublicKey
	// RequiredContextKeys are the keys of Context that the message does
	// not store but authenticates: the caller supplied their pairs
	// (the ESDK's reproduced encryption context), and the header tag is
	// checked over them.
	RequiredContextKeys []string
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
	// Skipped counts the encrypted data keys that a keyring did not try
	// because it had given up on their wrapping key ([UnwrapBudget]).
	Skipped int
}

// maxListed is how many keys and failures the text of an UnwrapError
// lists; it counts the rest.
const maxListed = 5

// Error summarises the failure: the first few wrapping keys and failed
// attempts, and how many more there are, so that a message with thousands
// of encrypted data keys cannot make an error of megabytes.
func (e *UnwrapError) Error() string {
	var b strings.Builder
	b.WriteString(ErrNoDataKey.Error())
	if len(e.Keys) <= maxListed {
		b.WriteString("; the message's data key is wrapped by: ")
	} else {
		fmt.Fprintf(&b, "; the message's data key is wrapped %d times, by: ", len(e.Keys))
	}
	for i, k := range e.Keys[:min(len(e.Keys), maxListed)] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k.String())
	}
	if n := len(e.Keys) - maxListed; n > 0 {
		fmt.Fprintf(&b, " and %d more", n)
	}
	b.WriteString("; tried: ")
	if len(e.Tried) == 0 {
		b.WriteString("no keyring")
	}
	b.WriteString(strings.Join(e.Tried, ", ")) // the caller's keyrings: as many as they gave
	for _, err := range e.Errs[:min(len(e.Errs), maxListed)] {
		b.WriteString("; ")
		b.WriteString(err.Error())
	}
	if n := len(e.Errs) - maxListed; n > 0 {
		fmt.Fprintf(&b, "; and %d more failed attempts", n)
	}
	if e.Skipped > 0 {
		fmt.Fprintf(&b, "; %d more wrapped keys not tried (a keyring gives up on a key after %d failures, and on a message after failing with %d keys)", e.Skipped, MaxFailedUnwraps, MaxFailedUnwrapKeys)
	}
	return b.String()
}

// Unwrap returns ErrNoDataKey and the attempts' errors.
func (e *UnwrapError) Unwrap() []error { return append([]error{ErrNoDataKey}, e.Errs...) }

// MaxFailedUnwraps is how many of a message's encrypted data keys a
// keyring tries with one wrapping key, and fails to unwrap, before it gives
// up on that key for the message. A legitimate message wraps its data key
// once per wrapping key, so a second failure under one key already means a
// mistake or a forgery; three allow for keys renamed or reused under one
// name. Without it, a forged message naming an RSA key in 65,535 wrapped
// keys would cost as many RSA decryptions (minutes of CPU).
const MaxFailedUnwraps = 3

// MaxFailedUnwrapKeys is how many different wrapping keys a keyring that
// tries whatever keys a message names (a KMS discovery keyring) fails with
// before it gives up on the message.
const MaxFailedUnwrapKeys = 10

// UnwrapBudget counts one keyring's failed unwrap attempts on one message
// and says when to give up: after [MaxFailedUnwraps] failures with one
// wrapping key, or failures with [MaxFailedUnwrapKeys] keys. The zero
// value is ready to use.
type UnwrapBudget struct {
	failed map[string]int
}

// Allow reports whether an encrypted data key wrapped by key (a key ARN, a
// raw key's namespace and name) may still be tried.
func (b *UnwrapBudget) Allow(key string) bool {
	n, seen := b.failed[key]
	return n < MaxFailedUnwraps && (seen || len(b.failed) < MaxFailedUnwrapKeys)
}

// Failed records a failed attempt with key.
func (b *UnwrapBudget) Failed(key string) {
	if b.failed == nil {
		b.failed = make(map[string]int)
	}
	b.failed[key]++
}

// describe names a keyring for an error message.
func describe(k Keyring) string {
	if s, ok := k.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", k)
}

// unwrapOwn is the decrypt loop of a raw keyring named name, which holds one
// wrapping key: it tries each EDK that mine says is the keyring's with open,
// within an [UnwrapBudget], and sets m.DataKey to the first that opens to a
// data key of the suite's length. notOpened says why an EDK that fails to
// open did.
func unwrapOwn(name string, m *DecryptionMaterials, edks []EncryptedDataKey, mine func(EncryptedDataKey) bool,
	open func(EncryptedDataKey) ([]byte, error), notOpened string) error {
	var errs []error
	var budget UnwrapBudget
	skipped := 0
	for _, edk := range edks {
		if !mine(edk) {
			continue
		}
		if !budget.Allow("") {
			skipped++
			continue
		}
		dk, err := open(edk)
		if err != nil {
			budget.Failed("")
			errs = append(errs, fmt.Errorf("%s: %s", name, notOpened))
			continue
		}
		if len(dk) != m.Suite.KeyLength {
			clear(dk)
			budget.Failed("")
			errs = append(errs, fmt.Errorf("%s: unwrapped a %d-byte data key, suite %s needs %d", name, len(dk), m.Suite.ID, m.Suite.KeyLength))
			continue
		}
		m.DataKey = dk
		return nil
	}
	return &UnwrapError{Keys: edks, Tried: []string{name}, Errs: errs, Skipped: skipped}
}
