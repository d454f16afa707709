package format

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/envelopekms/envelope/suite"
)

// CopyBody copies the body that follows header h from src to dst without
// decrypting it, checking only its structure (sequence numbers, lengths).
// Every byte copied is also written to each of sums (signature digests).
// It stops at the end of the body: a signed message's footer is left in src.
func CopyBody(dst io.Writer, src *bufio.Reader, h *Header, sums ...io.Writer) error {
	w := dst
	if len(sums) > 0 {
		w = io.MultiWriter(append([]io.Writer{dst}, sums...)...)
	}
	var hdr [4 + 4 + suite.IVLength + 4]byte
	copyN := func(n int64, part string) error {
		if _, err := io.CopyN(w, src, n); err != nil {
			if err == io.EOF {
				return readErr(io.ErrUnexpectedEOF, part)
			}
			return readErr(err, part)
		}
		return nil
	}
	read := func(b []byte, part string) error {
		if _, err := io.ReadFull(src, b); err != nil {
			return readErr(err, part)
		}
		_, err := w.Write(b)
		return err
	}
	if !h.Framed {
		b := hdr[:suite.IVLength+8]
		if err := read(b, "non-framed body"); err != nil {
			return err
		}
		n := binary.BigEndian.Uint64(b[suite.IVLength:])
		if n > maxNonFramedLength {
			return malformed("non-framed body declares %d bytes, more than the %d allowed", n, uint64(maxNonFramedLength))
		}
		return copyN(int64(n)+suite.TagLength, "non-framed body")
	}
	for seq := uint32(1); ; seq++ {
		part := fmt.Sprintf("frame %d", seq)
		b := hdr[:4]
		if err := read(b, part); err != nil {
			return err
		}
		final := binary.BigEndian.Uint32(b) == finalFrameMarker
		if final {
			if err := read(b, part); err != nil {
				return err
			}
		}
		if got := binary.BigEndian.Uint32(b); got != seq {
			return tampered("frame %d carries sequence number %d", seq, got)
		}
		length := int64(h.FrameLength)
		if final {
			b = hdr[:suite.IVLength+4]
		} else {
			b = hdr[:suite.IVLength]
		}
		if err := read(b, part); err != nil {
			return err
		}
		if final {
			length = int64(binary.BigEndian.Uint32(b[suite.IVLength:]))
			if length > int64(h.FrameLength) {
				return malformed("final frame %d holds %d bytes, more than the frame length %d", seq, length, h.FrameLength)
			}
		}
		if err := copyN(length+suite.TagLength, part); err != nil {
			return err
		}
		if final {
			return nil
		}
		if seq == finalFrameMarker-1 {
			return malformed("no final frame")
		}
	}
}

// ReadFooter reads a signed message's footer and returns the signature. It
// checks that nothing follows the message.
func ReadFooter(src io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(src, n[:]); err != nil {
		return nil, readErr(err, "signature footer")
	}
	sig := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(src, sig); err != nil {
		return nil, readErr(err, "signature footer")
	}
	return sig, CheckEnd(src)
}

// CheckEnd returns an error if src holds anything more.
func CheckEnd(src io.Reader) error {
	var b [1]byte
	for range 100 {
		n, err := src.Read(b[:])
		switch {
		case n > 0:
			return malformed("data follows the end of the message")
		case err == io.EOF:
			return nil
		case err != nil:
			return fmt.Errorf("format: reading past the end of the message: %w", err)
		}
	}
	return fmt.Errorf("format: reading past the end of the message: %w", io.ErrNoProgress)
}

// BodyFits reports whether the size bytes of r from offset start can be
// exactly the body of an unsigned message with header h: for a framed
// body, whole regular frames then a final frame, with the first and last
// regular frames and the final frame numbered and sized as they must be
// there; for a non-framed body, the length it declares. It reads only those
// frame headers, so it costs the same for any size; the frames between are
// not looked at (their tags, which decryption checks, cover them).
func BodyFits(r io.ReaderAt, start, size int64, h *Header) bool {
	if h.Suite.Signed() || size < 0 {
		return false
	}
	if !h.Framed {
		var b [suite.IVLength + 8]byte
		if _, err := r.ReadAt(b[:], start); err != nil {
			return false
		}
		n := binary.BigEndian.Uint64(b[suite.IVLength:])
		return bytes.Equal(b[:suite.IVLength], frameIV(nil, 1)) && n <= maxNonFramedLength &&
			int64(n)+int64(len(b))+suite.TagLength == size
	}
	slot := int64(frameSlot(int(h.FrameLength)))
	const finalOverhead = 4 + 4 + suite.IVLength + 4 + suite.TagLength
	if size < finalOverhead {
		return false
	}
	regular := (size - finalOverhead) / slot
	last := size - finalOverhead - regular*slot // the final frame's content
	if last > int64(h.FrameLength) || regular+1 > int64(MaxFrames) {
		return false
	}
	frameAt := func(seq uint32, off int64) bool {
		var b [4 + suite.IVLength]byte
		_, err := r.ReadAt(b[:], off)
		return err == nil && binary.BigEndian.Uint32(b[:]) == seq && bytes.Equal(b[4:], frameIV(nil, seq))
	}
	if regular > 0 && (!frameAt(1, start) || !frameAt(uint32(regular), start+(regular-1)*slot)) {
		return false
	}
	var b [4 + 4 + suite.IVLength + 4]byte
	if _, err := r.ReadAt(b[:], start+regular*slot); err != nil {
		return false
	}
	seq := uint32(regular + 1)
	return binary.BigEndian.Uint32(b[:]) == finalFrameMarker && binary.BigEndian.Uint32(b[4:]) == seq &&
		bytes.Equal(b[8:8+suite.IVLength], frameIV(nil, seq)) &&
		int64(binary.BigEndian.Uint32(b[8+suite.IVLength:])) == last
}
