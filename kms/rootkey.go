package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// RootKey seals key material before it reaches the [Store], so that no key
// material is ever at rest in the clear. The aad binds each sealed value to
// where it belongs (key id and version), so values cannot be swapped.
type RootKey interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// AESRootKey is a RootKey from a 32-byte key, sealing with AES-256-GCM and
// a random 96-bit IV (sealed = IV ‖ ciphertext ‖ tag).
type AESRootKey struct{ aead cipher.AEAD }

// NewAESRootKey returns a root key for a 32-byte key. The key is not kept
// beyond the cipher's expanded schedule.
func NewAESRootKey(key []byte) (*AESRootKey, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("kms: root key is %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &AESRootKey{aead: aead}, nil
}

// Seal implements [RootKey].
func (k *AESRootKey) Seal(plaintext, aad []byte) ([]byte, error) {
	iv := make([]byte, 12, 12+len(plaintext)+16)
	rand.Read(iv)
	return k.aead.Seal(iv, iv, plaintext, aad), nil
}

// ErrWrongRootKey means sealed data does not open under the root key: the
// root key (file or passphrase) is not the one the keystore was made with.
var ErrWrongRootKey = errors.New("the root key does not open this keystore (wrong passphrase or root key file)")

// Open implements [RootKey].
func (k *AESRootKey) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 12+16 {
		return nil, ErrWrongRootKey
	}
	pt, err := k.aead.Open(nil, sealed[:12], sealed[12:], aad)
	if err != nil {
		return nil, ErrWrongRootKey
	}
	return pt, nil
}

// SealRootCheck returns the value that [New] stores under [RootCheckMeta]
// in a new keystore, sealed under root: a store holding it is opened by New
// with root alone, and refused ([ErrWrongRootKey]) with any other root key.
// A keystore written whole in one transaction (a copy) stores it itself,
// last, so that the keystore is complete when it commits.
func SealRootCheck(root RootKey) ([]byte, error) {
	return root.Seal(rootCheckPlaintext, []byte(rootCheckName))
}

// ResealMaterial moves one version of a key's material from one root key to
// another: sealed is the material as a [Service] stores it under from,
// bound to keyID and version, and the result is the same material sealed
// under to, bound to the same key and version, as a Service over to stores
// it. It is how a keystore is copied to a store with another root key
// without the material ever being written in the clear: the plaintext lives
// only in memory, and is cleared before ResealMaterial returns. An error
// wraps [ErrWrongRootKey] when from does not open sealed for that key and
// version (another root key, another key's material, or damage).
func ResealMaterial(from, to RootKey, keyID string, version int, sealed []byte) ([]byte, error) {
	aad := materialAAD(keyID, version)
	m, err := from.Open(sealed, aad)
	if err != nil {
		return nil, fmt.Errorf("kms: key %s version %d: %w", keyID, version, err)
	}
	defer clear(m)
	out, err := to.Seal(m, aad)
	if err != nil {
		return nil, fmt.Errorf("kms: key %s version %d: %v", keyID, version, err)
	}
	return out, nil
}
