package format

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/envelopekms/envelope/suite"
)

// NewMessageID returns a fresh random message ID of the length the suite's
// header version uses.
func NewMessageID(s *suite.Suite) []byte {
	n := messageIDLenV1
	if s.MessageVersion == 2 {
		n = messageIDLenV2
	}
	id := make([]byte, n)
	rand.Read(id)
	return id
}

// DeriveKey derives the message's AES-GCM key from the data key, as the
// suite prescribes, and for committing suites the key commitment that goes in
// (or is checked against) the header.
func DeriveKey(s *suite.Suite, dataKey, messageID []byte) (aead cipher.AEAD, commitKey []byte, err error) {
	if len(dataKey) != s.KeyLength {
		return nil, nil, fmt.Errorf("format: the data key is %d bytes, suite %s needs %d", len(dataKey), s.ID, s.KeyLength)
	}
	var idBytes [2]byte
	binary.BigEndian.PutUint16(idBytes[:], uint16(s.ID))
	var key []byte
	switch {
	case s.KDF == 0:
		key = dataKey
	case s.Committing:
		prk, err := hkdf.Extract(sha512.New, dataKey, messageID)
		if err != nil {
			return nil, nil, err
		}
		if key, err = hkdf.Expand(sha512.New, prk, string(idBytes[:])+"DERIVEKEY", s.KeyLength); err != nil {
			return nil, nil, err
		}
		if commitKey, err = hkdf.Expand(sha512.New, prk, "COMMITKEY", commitKeyLen); err != nil {
			return nil, nil, err
		}
		clear(prk)
	default:
		info := string(idBytes[:]) + string(messageID)
		if key, err = hkdf.Key(hashFunc(s.KDF), dataKey, nil, info, s.KeyLength); err != nil {
			return nil, nil, err
		}
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, err
	}
	if s.KDF != 0 {
		clear(key)
	}
	aead, err = cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return aead, commitKey, nil
}

func hashFunc(h crypto.Hash) func() hash.Hash { return h.New }
