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
	"os"
	"slices"

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
// When src is a regular file and the message is unsigned, the body is not
// looked at: after checking that the file ends where the body's final frame
// says it must, it is copied as is (copy_file_range, in the kernel, when dst
// is a file at a matching offset; else through one 1 MiB buffer), so the
// work in the process is the same whatever the size. The frames in between are copied unchecked, as their tags are
// checked when the message is decrypted; from a stream, every frame's
// sequence number and length are checked as the body is copied.
//
// Options: [WithCommitmentPolicy], [WithMaxEncryptedDataKeys],
// [WithMaxHeaderSize], and [WithContext] for pairs the message must carry;
// a message with a required encryption context (pairs it authenticates but
// does not store) needs them given with WithContext, and the rewrapped
// message keeps them required.
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
		return nil, errors.New("envelope: rewrap: no keyring to wrap the data key with")
	}
	br := bufio.NewReaderSize(src, 1<<20)
	o, err := openMessage(ctx, br, c, false)
	if err != nil {
		return nil, err
	}
	h, dm, aead := o.h, o.m, o.aead

	// Wrap the same data key under the new keys, bound to the whole
	// context: the stored pairs and the required ones.
	em := &keyring.EncryptionMaterials{
		Suite: h.Suite, Context: maps.Clone(dm.Context), DataKey: bytes.Clone(dm.DataKey),
		RequiredContextKeys: slices.Clone(dm.RequiredContextKeys),
	}
	clear(dm.DataKey)
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
		return nil, errors.New("envelope: rewrap: the new keyring produced no encrypted data key")
	}
	if max := c.limits.MaxEDKs; max > 0 && len(em.EncryptedDataKeys) > max {
		return nil, fmt.Errorf("%w: the keyring made %d, the limit is %d", ErrTooManyEncryptedDataKeys, len(em.EncryptedDataKeys), max)
	}
	nh := *h
	nh.EDKs = formatEDKs(em.EncryptedDataKeys)
	if signer != nil {
		stored, _, _, err := splitContext(em.Context, em.RequiredContextKeys)
		if err != nil {
			return nil, err
		}
		nh.Context = stored
		if nh.AAD, err = format.MarshalContext(stored); err != nil {
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
	if max := c.limits.MaxHeaderSize; max > 0 && len(nh.Bytes()) > max {
		return nil, fmt.Errorf("%w: the new header takes %d bytes, more than the %d readers accept by default", ErrTooLarge, len(nh.Bytes()), max)
	}
	newHeader := publicHeader(&nh)
	newHeader.RequiredContext = o.pub.RequiredContext

	if signer == nil {
		if f, start, size, ok := bodyFile(src, br); ok && format.BodyFits(f, start, size-start, h) {
			return newHeader, copyBodyFile(dst, nh.Bytes(), f, start, size-start)
		}
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
	return newHeader, nil
}

// bodyFile returns src as a regular file, where in it the body starts (what
// br read from it past the header is still buffered) and its size.
func bodyFile(src io.Reader, br *bufio.Reader) (f *os.File, start, size int64, ok bool) {
	f, ok = src.(*os.File)
	if !ok {
		return nil, 0, 0, false
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil, 0, 0, false
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, 0, false
	}
	start = pos - int64(br.Buffered())
	return f, start, st.Size(), start >= 0 && start <= st.Size()
}

// copyBodyFile writes header to dst, then the n bytes of f from offset
// start. When dst is a file whose offset then lines up with start within a
// page (the old and new headers have the same length mod 4096, as when
// rewrapping to a key of the same kind), the copy is copy_file_range, in
// the kernel: it costs less than a cp. Otherwise an in-kernel copy would
// straddle pages and cost twice as much as reading and writing the body
// through a 1 MiB buffer, which is then what is done.
func copyBodyFile(dst io.Writer, header []byte, f *os.File, start, n int64) error {
	if _, err := dst.Write(header); err != nil {
		return err
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	src := io.LimitReader(f, n)
	var copied int64
	var err error
	if df, ok := dst.(*os.File); ok && pageAligned(df, start) {
		copied, err = io.Copy(df, src)
	} else {
		// Hide ReaderFrom and WriterTo, so that the buffer is used.
		copied, err = io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, 1<<20))
	}
	if err != nil {
		return err
	}
	if copied != n {
		return fmt.Errorf("%w: the file shrank while it was being rewrapped", ErrTruncated)
	}
	return nil
}

// pageAligned reports whether f's offset is start's within a page.
func pageAligned(f *os.File, start int64) bool {
	off, err := f.Seek(0, io.SeekCurrent)
	return err == nil && (off-start)%4096 == 0
}
