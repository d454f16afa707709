package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"

	"github.com/envelopekms/envelope/internal/format"
)

// The symmetric ciphertext blob:
//
//	version  1 byte (0x01)
//	key ID   16 bytes (the key's UUID)
//	material version u32
//	nonce    32 bytes (random per call)
//	ciphertext ‖ tag (16)
//
// A fresh AES-256-GCM key is derived per call with HKDF-SHA256 from the
// version's material, salted with the nonce and bound to the header, so
// AES-GCM's per-key limits never bind and the IV can be fixed. The AAD is
// the header and the canonical, length-prefixed serialization of the
// encryption context, which is authenticated but not stored.
const (
	blobVersion   = 0x01
	blobHeaderLen = 1 + 16 + 4 + 32
	blobMaxLen    = 6144
	blobKDFInfo   = "envelope kms blob v1"
)

type blobHeader struct {
	keyID   string // canonical UUID form
	version int
}

func uuidBytes(id string) ([]byte, bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return nil, false
	}
	h := id[0:8] + id[9:13] + id[14:18] + id[19:23] + id[24:]
	b, err := hex.DecodeString(h)
	return b, err == nil
}

func uuidString(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func blobAEAD(material, header []byte) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, material, header[21:], blobKDFInfo+string(header[:21]), 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

var zeroIV = make([]byte, 12)

// sealBlob encrypts plaintext under one version of a symmetric key.
func sealBlob(keyID string, version int, material, plaintext []byte, ec map[string]string) ([]byte, error) {
	id, ok := uuidBytes(keyID)
	if !ok {
		return nil, errors.New("kms: key id is not a UUID")
	}
	aad, err := format.MarshalContext(ec)
	if err != nil {
		return nil, validationf("encryption context: %v", err)
	}
	b := make([]byte, 0, blobHeaderLen+len(plaintext)+16)
	b = append(b, blobVersion)
	b = append(b, id...)
	b = binary.BigEndian.AppendUint32(b, uint32(version))
	nonce := make([]byte, 32)
	rand.Read(nonce)
	b = append(b, nonce...)
	aead, err := blobAEAD(material, b)
	if err != nil {
		return nil, err
	}
	return aead.Seal(b, zeroIV, plaintext, append(b[:blobHeaderLen:blobHeaderLen], aad...)), nil
}

// parseBlobHeader reads the header of a symmetric blob without decrypting.
func parseBlobHeader(blob []byte) (*blobHeader, bool) {
	if len(blob) < blobHeaderLen+16 || blob[0] != blobVersion {
		return nil, false
	}
	v := binary.BigEndian.Uint32(blob[17:21])
	if v == 0 || v > 1<<20 {
		return nil, false
	}
	return &blobHeader{keyID: uuidString(blob[1:17]), version: int(v)}, true
}

// openBlob decrypts a symmetric blob with the material of its version.
func openBlob(blob, material []byte, ec map[string]string) ([]byte, error) {
	aad, err := format.MarshalContext(ec)
	if err != nil {
		return nil, validationf("encryption context: %v", err)
	}
	header := blob[:blobHeaderLen]
	aead, err := blobAEAD(material, header)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, zeroIV, blob[blobHeaderLen:], append(header[:blobHeaderLen:blobHeaderLen], aad...))
	if err != nil {
		return nil, newError(CodeInvalidCiphertext, "the ciphertext does not decrypt: it is damaged, or the encryption context differs from the one it was encrypted with")
	}
	return pt, nil
}

// CiphertextKeyID returns the id of the key a symmetric ciphertext blob of
// this KMS was made with, without decrypting it (for authorization before a
// Decrypt that names no key).
func CiphertextKeyID(blob []byte) (string, bool) {
	h, ok := parseBlobHeader(blob)
	if !ok {
		return "", false
	}
	return h.keyID, true
}
