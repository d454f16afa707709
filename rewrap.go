package envelope

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"

	"github.com/envelopekms/envelope/internal/format"
	"github.com/envelopekms/envelope/keyring"
)

// Rewrap copies the message in src to dst with its data key wrapped anew by
// to instead of the keys it had: the data key is unwrapped with from (or the
// manager given with [WithMaterialsManager], from nil), wrapped by to, the
// header is rebuilt and its tag recomputed, and the body is copied byte for
// byte without being decrypted. Cryptographic work is proportional to the
// header, except for signed messages: their signature covers the header, so
// the body is hashed to check the old signature and to sign again with a
// fresh signing key (whose public key replaces the old one in the
// encryption context).
//
// Options: [WithCommitmentPolicy], [WithMaxEncryptedDataKeys], and
// [WithContext] for pairs the message must carry.
//
// Security: the rewrapped message keeps the original's data key and message
// ID, and version 2 headers are authenticated with a fixed IV, so both
// headers carry AES-GCM tags under the same key and IV. Someone holding both
// the original and the rewrapped message could recover the GCM
// authentication key and forge messages under that data key. Keep only one
// of the two (rewrap in place); where copies of the original may survive
// elsewhere, decrypt and encrypt again instead.
func Rewrap(ctx context.Context, dst io.Writer, src io.Reader, from, to keyring.Keyring, opts ...Option) (*Header, error) {
	c, err := newConfig(from, opts)
	if err != nil {
		return nil, err
	}
	if to == nil {
		return nil, errors.New("rewrap: no keyring to wrap the data key with")
	}
	br := bufio.NewReaderSize(src, 1<<20)
	o, err := openMessage(ctx, br, c)
	if err != nil {
		return nil, err
	}
	h, dm, aead := o.h, o.m, o.aead

	// Wrap the same data key under the new keys.
	em := &keyring.EncryptionMaterials{Suite: h.Suite, Context: maps.Clone(h.Context), DataKey: bytes.Clone(dm.DataKey)}
	defer clear(em.DataKey)
	var signer *ecdsa.PrivateKey
	if h.Suite.Signed() {
		priv, pub, err := format.NewSigningKey(h.Suite)
		if err != nil {
			return nil, err
		}
		signer = priv
		em.Context[format.PublicKeyContextKey] = pub
	}
	if err := to.OnEncrypt(ctx, em); err != nil {
		return nil, err
	}
	if len(em.EncryptedDataKeys) == 0 {
		return nil, errors.New("rewrap: the new keyring produced no encrypted data key")
	}
	if c.maxEDKs > 0 && len(em.EncryptedDataKeys) > c.maxEDKs {
		return nil, fmt.Errorf("%w: the keyring made %d, the limit is %d", ErrTooManyEncryptedDataKeys, len(em.EncryptedDataKeys), c.maxEDKs)
	}
	nh := *h
	nh.EDKs = formatEDKs(em.EncryptedDataKeys)
	if signer != nil {
		nh.Context = em.Context
		if nh.AAD, err = format.MarshalContext(em.Context); err != nil {
			return nil, err
		}
	}
	if nh.Version() == 1 {
		// Version 1 headers store their IV: use a fresh one, so the two
		// headers' tags are not made under the same key and IV.
		nh.IV = make([]byte, len(h.IV))
		rand.Read(nh.IV[:8])
		nh.IV[0] |= 0x80 // never an IV of the body (eight zero bytes ‖ sequence number)
	}
	if err := nh.Reseal(aead); err != nil {
		return nil, err
	}

	var oldDigest, newDigest hash.Hash
	var sums []io.Writer
	if signer != nil {
		oldDigest, newDigest = h.Suite.SignatureHash.New(), h.Suite.SignatureHash.New()
		oldDigest.Write(h.Bytes())
		newDigest.Write(nh.Bytes())
		sums = []io.Writer{oldDigest, newDigest}
	}
	bw := bufio.NewWriterSize(dst, 1<<20)
	if _, err := bw.Write(nh.Bytes()); err != nil {
		return nil, err
	}
	if err := format.CopyBody(bw, br, h, sums...); err != nil {
		return nil, err
	}
	if signer != nil {
		sig, err := format.ReadFooter(br)
		if err != nil {
			return nil, err
		}
		if !ecdsa.VerifyASN1(dm.VerificationKey, oldDigest.Sum(nil), sig) {
			return nil, fmt.Errorf("%w: the message signature does not verify", ErrTampered)
		}
		nsig, err := ecdsa.SignASN1(rand.Reader, signer, newDigest.Sum(nil))
		if err != nil {
			return nil, err
		}
		footer := append([]byte{byte(len(nsig) >> 8), byte(len(nsig))}, nsig...)
		if _, err := bw.Write(footer); err != nil {
			return nil, err
		}
	} else if err := format.CheckEnd(br); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return publicHeader(&nh), nil
}
