package format

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"
	"hash"
	"io"

	"github.com/envelopekms/envelope/suite"
)

// Reader decrypts a message body. A frame's plaintext is released only after
// its tag verifies; the last plaintext (the final frame, or the whole of a
// non-framed body) only after the signature of a signed message verifies and
// the message is known to end there. Errors are sticky.
type Reader struct {
	r       *bufio.Reader
	h       *Header
	aead    cipher.AEAD
	pub     *ecdsa.PublicKey
	digest  hash.Hash
	seq     uint32
	buf     []byte
	pending []byte
	aad, iv []byte
	scratch [12]byte
	done    bool
	err     error
}

// NewReader returns a Reader for the body that follows header h in r. h
// must already have been verified with the key aead; pub is the verification
// key of a signed suite, nil otherwise.
func NewReader(r *bufio.Reader, h *Header, aead cipher.AEAD, pub *ecdsa.PublicKey) (*Reader, error) {
	if h.Suite.Signed() != (pub != nil) {
		return nil, fmt.Errorf("format: a verification key is needed exactly for signed suites")
	}
	rd := &Reader{r: r, h: h, aead: aead, pub: pub}
	if pub != nil {
		rd.digest = h.Suite.SignatureHash.New()
		rd.digest.Write(h.Bytes())
	}
	return rd, nil
}

// Read returns decrypted, authenticated plaintext. It returns io.EOF only
// once the whole message has been verified.
func (rd *Reader) Read(p []byte) (int, error) {
	for len(rd.pending) == 0 {
		if rd.err != nil {
			return 0, rd.err
		}
		if rd.done {
			return 0, io.EOF
		}
		if rd.h.Framed {
			rd.err = rd.nextFrame()
		} else {
			rd.err = rd.nonFramed()
		}
	}
	n := copy(p, rd.pending)
	rd.pending = rd.pending[n:]
	return n, nil
}

// read fills b from the message, feeding the signature digest.
func (rd *Reader) read(b []byte, part string) error {
	if _, err := io.ReadFull(rd.r, b); err != nil {
		return readErr(err, part)
	}
	if rd.digest != nil {
		rd.digest.Write(b)
	}
	return nil
}

// readLarge reads n bytes into rd.buf, growing it only as data arrives so
// that a header claiming huge frames cannot make us allocate ahead of input.
func (rd *Reader) readLarge(n int, part string) ([]byte, error) {
	if cap(rd.buf) >= n {
		b := rd.buf[:n]
		return b, rd.read(b, part)
	}
	b := rd.buf[:0]
	for len(b) < n {
		want := min(n, max(2*len(b), 1<<20))
		if cap(b) < want {
			nb := make([]byte, len(b), want)
			copy(nb, b)
			b = nb
		}
		if err := rd.read(b[len(b):want], part); err != nil {
			return nil, err
		}
		b = b[:want]
	}
	rd.buf = b
	return b, nil
}

func (rd *Reader) u32(part string) (uint32, error) {
	b := rd.scratch[:4]
	if err := rd.read(b, part); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

// nextFrame reads, authenticates and decrypts the next frame.
func (rd *Reader) nextFrame() error {
	expected := rd.seq + 1
	part := fmt.Sprintf("frame %d", expected)
	seq, err := rd.u32(part)
	if err != nil {
		return err
	}
	final := seq == finalFrameMarker
	if final {
		part = fmt.Sprintf("final frame %d", expected)
		if seq, err = rd.u32(part); err != nil {
			return err
		}
	}
	if seq != expected || expected == 0 {
		return tampered("frame %d carries sequence number %d (frames reordered, dropped or repeated)", expected, seq)
	}
	iv := rd.scratch[:suite.IVLength]
	if err := rd.read(iv, part); err != nil {
		return err
	}
	rd.iv = frameIV(rd.iv, seq)
	if !bytes.Equal(iv, rd.iv) {
		return tampered("%s has IV %x, want %x", part, iv, rd.iv)
	}
	length := rd.h.FrameLength
	label := labelFrame
	if final {
		label = labelFinalFrame
		if length, err = rd.u32(part); err != nil {
			return err
		}
		if length > rd.h.FrameLength {
			return malformed("%s holds %d bytes, more than the frame length %d", part, length, rd.h.FrameLength)
		}
	}
	ct, err := rd.readLarge(int(length)+suite.TagLength, part)
	if err != nil {
		return err
	}
	rd.aad = bodyAAD(rd.aad, rd.h.MessageID, label, seq, uint64(length))
	pt, err := rd.aead.Open(ct[:0], rd.iv, ct, rd.aad)
	if err != nil {
		return tampered("the authentication tag of %s does not verify", part)
	}
	rd.seq = seq
	if final {
		if err := rd.finish(); err != nil {
			clear(pt)
			return err
		}
		rd.done = true
	}
	rd.pending = pt
	return nil
}

// nonFramed reads, authenticates and decrypts a legacy non-framed body. The
// whole body is held in memory, as it has a single tag.
func (rd *Reader) nonFramed() error {
	const part = "non-framed body"
	iv := rd.scratch[:suite.IVLength]
	if err := rd.read(iv, part); err != nil {
		return err
	}
	rd.iv = frameIV(rd.iv, 1)
	if !bytes.Equal(iv, rd.iv) {
		return tampered("the non-framed body has IV %x, want %x", iv, rd.iv)
	}
	lb := rd.scratch[:8]
	if err := rd.read(lb, part); err != nil {
		return err
	}
	length := binary.BigEndian.Uint64(lb)
	if length > maxNonFramedLength {
		return malformed("non-framed body declares %d bytes, more than the %d allowed", length, uint64(maxNonFramedLength))
	}
	ct, err := rd.readLarge(int(length)+suite.TagLength, part)
	if err != nil {
		return err
	}
	rd.aad = bodyAAD(rd.aad, rd.h.MessageID, labelSingleBlock, 1, length)
	pt, err := rd.aead.Open(ct[:0], rd.iv, ct, rd.aad)
	if err != nil {
		return tampered("the authentication tag of the non-framed body does not verify")
	}
	if err := rd.finish(); err != nil {
		clear(pt)
		return err
	}
	rd.done = true
	rd.pending = pt
	return nil
}

// finish verifies the signature footer of a signed message and that nothing
// follows the message.
func (rd *Reader) finish() error {
	if rd.pub != nil {
		sum := rd.digest.Sum(nil)
		rd.digest = nil // the footer is not signed
		n, err := rd.u16("signature footer")
		if err != nil {
			return err
		}
		sig := make([]byte, n)
		if err := rd.read(sig, "signature footer"); err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(rd.pub, sum, sig) {
			return tampered("the message signature does not verify")
		}
	}
	if _, err := rd.r.Peek(1); err == nil {
		return malformed("data follows the end of the message")
	} else if err != io.EOF {
		return fmt.Errorf("reading past the end of the message: %w", err)
	}
	return nil
}

func (rd *Reader) u16(part string) (int, error) {
	b := rd.scratch[:2]
	if err := rd.read(b, part); err != nil {
		return 0, err
	}
	return int(binary.BigEndian.Uint16(b)), nil
}
