// Package suite describes the algorithm suites of the AWS Encryption SDK
// message format and the commitment policy that chooses among them.
//
// Every suite encrypts with AES-GCM (12-byte IV, 16-byte tag). They differ in
// key length, key derivation, whether the message is signed, and whether the
// data key is committed to (so that a message can only ever decrypt to one
// plaintext). The two committing suites, [AES256GCMHKDFSHA512CommitKey] and
// [AES256GCMHKDFSHA512CommitKeyECDSAP384], are the only ones written by
// default; the others are read for compatibility and written only under
// [ForbidEncryptAllowDecrypt].
package suite

import (
	"crypto"
	"crypto/elliptic"
	"fmt"
	"strconv"
	"strings"
)

// ID is the two-byte identifier of an algorithm suite as it appears in a
// message header.
type ID uint16

// The algorithm suites of the ESDK message format.
const (
	AES128GCM                             ID = 0x0014
	AES192GCM                             ID = 0x0046
	AES256GCM                             ID = 0x0078
	AES128GCMHKDFSHA256                   ID = 0x0114
	AES192GCMHKDFSHA256                   ID = 0x0146
	AES256GCMHKDFSHA256                   ID = 0x0178
	AES128GCMHKDFSHA256ECDSAP256          ID = 0x0214
	AES192GCMHKDFSHA384ECDSAP384          ID = 0x0346
	AES256GCMHKDFSHA384ECDSAP384          ID = 0x0378
	AES256GCMHKDFSHA512CommitKey          ID = 0x0478
	AES256GCMHKDFSHA512CommitKeyECDSAP384 ID = 0x0578
	defaultCommitting                        = AES256GCMHKDFSHA512CommitKeyECDSAP384
	defaultNonCommitting                     = AES256GCMHKDFSHA384ECDSAP384
)

// Suite holds the parameters of one algorithm suite.
type Suite struct {
	// ID is the suite's identifier in a message header.
	ID ID
	// Name is the ESDK's name for the suite, such as
	// "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384".
	Name string
	// MessageVersion is the header version the suite is written with: 1 or 2.
	MessageVersion int
	// KeyLength is the length in bytes of the data key and of the derived
	// AES key: 16, 24 or 32.
	KeyLength int
	// KDF is the hash of the HKDF that derives the encryption key from the
	// data key, or 0 when the data key is used as it is.
	KDF crypto.Hash
	// SignatureHash is the hash signed by the message's ECDSA signature, or 0
	// for an unsigned suite.
	SignatureHash crypto.Hash
	// Committing reports whether the header commits to the data key.
	Committing bool
}

// IVLength is the AES-GCM nonce length of every suite, in bytes.
const IVLength = 12

// TagLength is the AES-GCM tag length of every suite, in bytes.
const TagLength = 16

// Signed reports whether messages of this suite end with an ECDSA signature.
func (s *Suite) Signed() bool { return s.SignatureHash != 0 }

// Curve returns the elliptic curve of the suite's signature, or nil for an
// unsigned suite.
func (s *Suite) Curve() elliptic.Curve {
	switch s.SignatureHash {
	case crypto.SHA256:
		return elliptic.P256()
	case crypto.SHA384:
		return elliptic.P384()
	}
	return nil
}

// String returns the suite's hex identifier and name, as
// "0x0578 AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384".
func (s *Suite) String() string { return s.ID.String() + " " + s.Name }

// String returns the identifier in the hex form used by the ESDK, "0x0578".
func (id ID) String() string { return fmt.Sprintf("0x%04X", uint16(id)) }

var suites = []*Suite{
	{AES128GCM, "AES_128_GCM_IV12_TAG16_NO_KDF", 1, 16, 0, 0, false},
	{AES192GCM, "AES_192_GCM_IV12_TAG16_NO_KDF", 1, 24, 0, 0, false},
	{AES256GCM, "AES_256_GCM_IV12_TAG16_NO_KDF", 1, 32, 0, 0, false},
	{AES128GCMHKDFSHA256, "AES_128_GCM_IV12_TAG16_HKDF_SHA256", 1, 16, crypto.SHA256, 0, false},
	{AES192GCMHKDFSHA256, "AES_192_GCM_IV12_TAG16_HKDF_SHA256", 1, 24, crypto.SHA256, 0, false},
	{AES256GCMHKDFSHA256, "AES_256_GCM_IV12_TAG16_HKDF_SHA256", 1, 32, crypto.SHA256, 0, false},
	{AES128GCMHKDFSHA256ECDSAP256, "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256", 1, 16, crypto.SHA256, crypto.SHA256, false},
	{AES192GCMHKDFSHA384ECDSAP384, "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 24, crypto.SHA384, crypto.SHA384, false},
	{AES256GCMHKDFSHA384ECDSAP384, "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 32, crypto.SHA384, crypto.SHA384, false},
	{AES256GCMHKDFSHA512CommitKey, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY", 2, 32, crypto.SHA512, 0, true},
	{AES256GCMHKDFSHA512CommitKeyECDSAP384, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", 2, 32, crypto.SHA512, crypto.SHA384, true},
}

// All returns every suite, in identifier order. The slice is a copy; the
// suites it points to must not be modified.
func All() []*Suite { return append([]*Suite(nil), suites...) }

// ByID returns the suite with the given identifier.
func ByID(id ID) (*Suite, bool) {
	for _, s := range suites {
		if s.ID == id {
			return s, true
		}
	}
	return nil, false
}

// Parse returns the suite named by s: a hex identifier ("0x0478", "0478") or
// an ESDK name ("AES_256_GCM_HKDF_SHA512_COMMIT_KEY"), case-insensitively.
func Parse(s string) (*Suite, error) {
	t := strings.TrimSpace(s)
	for _, su := range suites {
		if strings.EqualFold(t, su.Name) {
			return su, nil
		}
	}
	hex := t
	if len(hex) > 2 && (hex[:2] == "0x" || hex[:2] == "0X") {
		hex = hex[2:]
	}
	if n, err := strconv.ParseUint(hex, 16, 16); err == nil && len(hex) == 4 {
		if su, ok := ByID(ID(n)); ok {
			return su, nil
		}
	}
	return nil, fmt.Errorf("suite: unknown algorithm suite %q (want a hex id such as 0x0578 or a name such as AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384)", s)
}
