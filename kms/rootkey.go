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
