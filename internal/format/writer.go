package format

import (
	"bufio"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/envelopekms/envelope/suite"
)

// outputBuffer is the size of the buffer between the frame sealer and the
// destination, so that small frames do not cost a write each.
const outputBuffer = 256 << 10

// Writer encrypts a stream into framed message body frames. It holds at most
// one frame of plaintext.
type Writer struct {
	w        *bufio.Writer
	h        *Header
	aead     cipher.AEAD
	signer   *ecdsa.PrivateKey
	digest   hash.Hash
	frameLen int
	buf      []byte // plaintext of the frame being filled, len < frameLen
	out      []byte // a sealed frame
	aad, iv  []byte
	seq      uint32
	err      error
	closed   bool
}

// NewWriter writes the sealed header h to dst and returns a Writer for the
// body. signer is the message's signing key for signed suites, nil otherwise.
// The header must be framed.
func NewWriter(dst io.Writer, h *Header, aead cipher.AEAD, signer *ecdsa.PrivateKey) (*Writer, error) {
	if !h.Framed || h.FrameLength == 0 {
		return nil, errors.New("format: only framed messages are written")
	}
	if h.Suite.Signed() != (signer != nil) {
		return nil, errors.New("format: a signing key is needed exactly for signed suites")
	}
	w := &Writer{
		w:        bufio.NewWriterSize(dst, outputBuffer),
		h:        h,
		aead:     aead,
		signer:   signer,
		frameLen: int(h.FrameLength),
	}
	if signer != nil {
		w.digest = h.Suite.SignatureHash.New()
	}
	w.buf = make([]byte, 0, min(w.frameLen, 1<<20))
	w.emit(h.Bytes())
	return w, w.err
}

func (w *Writer) emit(b []byte) {
	if w.err != nil {
		return
	}
	if w.digest != nil {
		w.digest.Write(b)
	}
	if _, err := w.w.Write(b); err != nil {
		w.err = err
	}
}

// Write encrypts p. Whole frames are sealed and written as they fill.
func (w *Writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("write to a closed encrypting writer")
	}
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	for len(p) > 0 {
		if len(w.buf) == 0 && len(p) >= w.frameLen {
			// A whole frame straight from the caller's buffer.
			w.sealFrame(p[:w.frameLen], false)
			p = p[w.frameLen:]
		} else {
			k := min(len(p), w.frameLen-len(w.buf))
			w.buf = append(w.buf, p[:k]...)
			p = p[k:]
			if len(w.buf) == w.frameLen {
				w.sealFrame(w.buf, false)
				w.buf = w.buf[:0]
			}
		}
		if w.err != nil {
			return 0, w.err
		}
	}
	return n, nil
}

// sealFrame seals one frame and writes it.
func (w *Writer) sealFrame(pt []byte, final bool) {
	if w.err != nil {
		return
	}
	if w.seq == finalFrameMarker-1 && !final || w.seq == finalFrameMarker {
		w.err = fmt.Errorf("message too large: more than %d frames of %d bytes; use a larger frame size", uint32(finalFrameMarker), w.frameLen)
		return
	}
	w.seq++
	label := labelFrame
	out := w.out[:0]
	if final {
		label = labelFinalFrame
		out = binary.BigEndian.AppendUint32(out, finalFrameMarker)
	}
	out = binary.BigEndian.AppendUint32(out, w.seq)
	w.iv = frameIV(w.iv, w.seq)
	out = append(out, w.iv...)
	if final {
		out = binary.BigEndian.AppendUint32(out, uint32(len(pt)))
	}
	w.aad = bodyAAD(w.aad, w.h.MessageID, label, w.seq, uint64(len(pt)))
	out = w.aead.Seal(out, w.iv, pt, w.aad)
	w.emit(out)
	w.out = out[:0]
}

// Close seals the final frame, writes the signature footer of a signed
// message, and flushes. It does not close the destination. The message is
// complete and valid only once Close returns nil.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	w.sealFrame(w.buf, true)
	clear(w.buf)
	w.buf = nil
	if w.err == nil && w.signer != nil {
		sig, err := ecdsa.SignASN1(rand.Reader, w.signer, w.digest.Sum(nil))
		if err != nil {
			w.err = err
			return err
		}
		footer := binary.BigEndian.AppendUint16(nil, uint16(len(sig)))
		footer = append(footer, sig...)
		w.digest = nil // the footer is not signed
		w.emit(footer)
	}
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return w.err
}

// MaxFrames is the largest number of frames, the final one included, that a
// message body can hold.
const MaxFrames = finalFrameMarker

// FrameOverhead returns the bytes a framed body adds to each regular frame.
func FrameOverhead() int { return 4 + suite.IVLength + suite.TagLength }
