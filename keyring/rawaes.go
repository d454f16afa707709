package keyring

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/envelopekms/envelope/internal/format"
	"github.com/envelopekms/envelope/suite"
)

// rawAESInfoSuffix is what follows the key name in a raw AES provider info:
// tag length in bits (4 bytes), IV length (4 bytes) and the IV.
const rawAESInfoSuffix = 4 + 4 + suite.IVLength

// RawAES wraps data keys with an AES-GCM key held by the caller. The wrap
// binds the encryption context, so a wrapped key only unwraps with the same
// context.
type RawAES struct {
	namespace, name string
	aead            cipher.AEAD
}

var _ Keyring = (*RawAES)(nil)

// NewRawAES returns a keyring for a 16-, 24- or 32-byte wrapping key known as
// name within namespace. Messages record namespace and name; decryption needs
// a keyring with the same two. The key is copied.
func NewRawAES(namespace, name string, key []byte) (*RawAES, error) {
	if err := checkNames(namespace, name); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	switch len(key) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("keyring: raw AES wrapping key is %d bytes; want 16, 24 or 32", len(key))
	}
	block, err := aes.NewCipher(bytes.Clone(key))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &RawAES{namespace: namespace, name: name, aead: aead}, nil
}

// checkNames checks the namespace and name of a raw keyring. Its errors,
// like those of this package's other unexported functions, have no
// "keyring: " prefix: the exported function that returns them adds it.
func checkNames(namespace, name string) error {
	if namespace == "" || name == "" {
		return errors.New("a raw keyring needs a non-empty namespace and name")
	}
	if namespace == "aws-kms" || len(namespace) >= 7 && namespace[:7] == "aws-kms" {
		return fmt.Errorf("key namespace %q is reserved for KMS keys", namespace)
	}
	if len(namespace) > 1<<16-1 || len(name) > 1<<16-1-rawAESInfoSuffix {
		return errors.New("key namespace or name is too long")
	}
	return nil
}

// String describes the keyring by namespace and name.
func (k *RawAES) String() string {
	return fmt.Sprintf("raw AES key namespace=%q name=%q", k.namespace, k.name)
}

// OnEncrypt implements [Keyring].
func (k *RawAES) OnEncrypt(_ context.Context, m *EncryptionMaterials) error {
	if m.DataKey == nil {
		m.DataKey = make([]byte, m.Suite.KeyLength)
		rand.Read(m.DataKey)
	}
	aad, err := format.MarshalContext(m.Context)
	if err != nil {
		return err
	}
	iv := make([]byte, suite.IVLength)
	rand.Read(iv)
	info := make([]byte, 0, len(k.name)+rawAESInfoSuffix)
	info = append(info, k.name...)
	info = binary.BigEndian.AppendUint32(info, suite.TagLength*8)
	info = binary.BigEndian.AppendUint32(info, suite.IVLength)
	info = append(info, iv...)
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, EncryptedDataKey{
		ProviderID:   k.namespace,
		ProviderInfo: info,
		Ciphertext:   k.aead.Seal(nil, iv, m.DataKey, aad),
	})
	return nil
}

// OnDecrypt implements [Keyring].
func (k *RawAES) OnDecrypt(_ context.Context, m *DecryptionMaterials, edks []EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	aad, err := format.MarshalContext(m.Context)
	if err != nil {
		return err
	}
	mine := func(edk EncryptedDataKey) bool {
		name, ok := rawAESKeyName(edk.ProviderInfo)
		return edk.ProviderID == k.namespace && ok && name == k.name
	}
	open := func(edk EncryptedDataKey) ([]byte, error) {
		iv := edk.ProviderInfo[len(edk.ProviderInfo)-suite.IVLength:]
		return k.aead.Open(nil, iv, edk.Ciphertext, aad)
	}
	return unwrapOwn(k.String(), m, edks, mine, open,
		"the data key wrapped under this name does not open with this key (a different key, or a different encryption context)")
}
