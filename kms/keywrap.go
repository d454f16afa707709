package kms

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// AES Key Wrap with Padding (KWP, RFC 5649; NIST SP 800-38F's KWP), the
// second half of the RSA_AES_KEY_WRAP wrapping algorithms of
// ImportKeyMaterial, written from the RFC on top of crypto/aes: the
// standard library has the block cipher but not this mode. The key
// material is wrapped under a one-time AES key, which RSA-OAEP wraps.

// kwpAIVPrefix is the first half of KWP's Alternative Initial Value; the
// second half is the plaintext's length (the Message Length Indicator).
var kwpAIVPrefix = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// kwpMaxPlaintext bounds what keyWrapPad takes and keyUnwrapPad returns:
// far above any key material (ImportKeyMaterial's whole input is at most
// 6144 bytes), and far below KWP's 2³² − 1.
const kwpMaxPlaintext = 1 << 16

// errKeyUnwrap is keyUnwrapPad's one answer for a ciphertext that does not
// unwrap: which check failed is not told.
var errKeyUnwrap = errors.New("kms: the wrapped key does not unwrap with this key (AES key wrap with padding)")

// keyWrapPad wraps plaintext (1 to kwpMaxPlaintext bytes) under the AES
// key kek (16, 24 or 32 bytes) with AES Key Wrap with Padding, RFC 5649
// section 4.1. The result is 8 bytes longer than plaintext rounded up to a
// multiple of 8.
func keyWrapPad(kek, plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 || len(plaintext) > kwpMaxPlaintext {
		return nil, errors.New("kms: AES key wrap takes 1 to 65536 bytes")
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := (len(plaintext) + 7) / 8 // 64-bit semiblocks of the padded plaintext
	out := make([]byte, 8*(n+1))
	copy(out[:4], kwpAIVPrefix[:])
	binary.BigEndian.PutUint32(out[4:8], uint32(len(plaintext)))
	copy(out[8:], plaintext) // zero padding: out is zeroed
	if n == 1 {
		// One semiblock: a single AES encryption of AIV ‖ P.
		block.Encrypt(out, out)
		return out, nil
	}
	// RFC 3394's W with the AIV as its initial value: 6n steps, each
	// encrypting A ‖ R[i] and XORing the step number t into A.
	var b [16]byte
	a := out[:8]
	for j := range 6 {
		for i := 1; i <= n; i++ {
			r := out[8*i : 8*i+8]
			copy(b[:8], a)
			copy(b[8:], r)
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a, binary.BigEndian.Uint64(b[:8])^t)
			copy(r, b[8:])
		}
	}
	clear(b[:])
	return out, nil
}

// keyUnwrapPad unwraps what keyWrapPad wraps (RFC 5649 section 4.2): it
// checks the AIV, the length it declares and the zero padding, and fails
// with errKeyUnwrap, saying nothing more, if any check fails. No part of
// the plaintext is returned on failure.
func keyUnwrapPad(kek, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < 16 || len(ciphertext)%8 != 0 || len(ciphertext) > kwpMaxPlaintext+16 {
		return nil, errKeyUnwrap
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(ciphertext)/8 - 1
	buf := make([]byte, len(ciphertext))
	if n == 1 {
		block.Decrypt(buf, ciphertext)
	} else {
		copy(buf, ciphertext)
		var b [16]byte
		a := buf[:8]
		for j := 5; j >= 0; j-- {
			for i := n; i >= 1; i-- {
				r := buf[8*i : 8*i+8]
				t := uint64(n*j + i)
				binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(a)^t)
				copy(b[8:], r)
				block.Decrypt(b[:], b[:])
				copy(a, b[:8])
				copy(r, b[8:])
			}
		}
		clear(b[:])
	}
	// The checks, without branching on secret data until the verdict:
	// the AIV's constant half, 8(n−1) < MLI ≤ 8n, and zero padding.
	ok := subtle.ConstantTimeCompare(buf[:4], kwpAIVPrefix[:])
	mli := binary.BigEndian.Uint32(buf[4:8])
	ok &= subtle.ConstantTimeLessOrEq(8*(n-1)+1, int(mli&0x7fffffff)) & subtle.ConstantTimeLessOrEq(int(mli&0x7fffffff), 8*n)
	ok &= subtle.ConstantTimeEq(int32(mli>>31), 0)
	var nonzero byte
	for i := 8; i < len(buf); i++ {
		// Bytes past the declared length must be zero.
		past := byte(subtle.ConstantTimeLessOrEq(int(mli&0x7fffffff)+1, i-7))
		nonzero |= buf[i] & -past
	}
	ok &= subtle.ConstantTimeByteEq(nonzero, 0)
	if ok != 1 {
		clear(buf)
		return nil, errKeyUnwrap
	}
	plaintext := make([]byte, mli)
	copy(plaintext, buf[8:])
	clear(buf)
	return plaintext, nil
}
