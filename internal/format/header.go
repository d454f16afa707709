// Package format reads and writes messages in the AWS Encryption SDK message
// format: the header, its authentication, framed and non-framed bodies and the
// signature footer. It knows nothing of keyrings or KMSs: callers hand it the
// data key, and it derives keys, checks commitment and tags, and streams.
//
// Everything here handles untrusted bytes. Every length is bounded; every
// failure of a message wraps [ErrMalformed], [ErrTruncated], [ErrTampered]
// or [ErrTooLarge] (or is a *[TooManyEDKsError]) and names the part of the
// message at fault, while a failure to read the source wraps the reader's
// error; and no plaintext is released before the tag that covers it (and,
// for the final frame of a signed message, the signature) verifies.
package format

import (
	"bytes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/envelopekms/envelope/suite"
)

// Content types of a message body.
const (
	ContentNonFramed = 0x01
	ContentFramed    = 0x02
)

// Message ID lengths of the two header versions.
const (
	messageIDLenV1 = 16
	messageIDLenV2 = 32
)

// commitKeyLen is the length of the key commitment in a version 2 header.
const commitKeyLen = 32

// EDK is an encrypted data key as it appears in a header (the fields of
// keyring.EncryptedDataKey, which converts to and from it).
type EDK struct {
	// ProviderID names the kind or namespace of the wrapping key.
	ProviderID string
	// ProviderInfo identifies the wrapping key within the provider.
	ProviderInfo []byte
	// Ciphertext is the wrapped data key.
	Ciphertext []byte
}

// Header is a parsed or to-be-written message header.
type Header struct {
	// Suite is the message's algorithm suite; its MessageVersion is the
	// header's version.
	Suite *suite.Suite
	// MessageID is the message's random identifier: 16 bytes in version
	// 1, 32 in version 2.
	MessageID []byte
	// Context is the encryption context stored in the header.
	Context map[string]string
	// AAD is Context's serialization as it stands in the header. Callers
	// building a header leave it nil; Seal fills it in.
	AAD []byte
	// EDKs are the encrypted data keys, at least one.
	EDKs []EDK
	// Framed is false for the legacy non-framed body, which is read but
	// never written.
	Framed bool
	// FrameLength is the plaintext length of each regular frame, 0 when
	// not framed.
	FrameLength uint32
	// CommitKey is the key commitment of a version 2 header.
	CommitKey []byte
	// IV and Tag are the header authentication (IV only in version 1).
	IV, Tag []byte
	// Raw is the serialized header body, the bytes the tag authenticates.
	Raw []byte
	// AuthOnly is the serialized encryption context that the tag
	// authenticates after Raw but that the header does not store: the
	// pairs of the ESDK's required encryption context, which the reader
	// supplies. Empty (no bytes) for messages that store their whole
	// context.
	AuthOnly []byte
}

// authData returns what the header tag authenticates: the header body,
// then the context that is authenticated but not stored.
func (h *Header) authData() []byte {
	if len(h.AuthOnly) == 0 {
		return h.Raw
	}
	return append(bytes.Clone(h.Raw), h.AuthOnly...)
}

// Version returns the header's format version, 1 or 2.
func (h *Header) Version() int { return h.Suite.MessageVersion }

// Bytes returns the whole serialized header: body and authentication.
func (h *Header) Bytes() []byte {
	b := append([]byte(nil), h.Raw...)
	if h.Version() == 1 {
		b = append(b, h.IV...)
	}
	return append(b, h.Tag...)
}

// marshalBody serializes the header body.
func (h *Header) marshalBody() ([]byte, error) {
	if len(h.EDKs) == 0 {
		return nil, errors.New("format: a message needs at least one encrypted data key")
	}
	if len(h.EDKs) > 1<<16-1 {
		return nil, errors.New("format: a message holds at most 65535 encrypted data keys")
	}
	var b []byte
	v := h.Version()
	if v == 1 {
		b = append(b, 0x01, 0x80)
	} else {
		b = append(b, 0x02)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(h.Suite.ID))
	b = append(b, h.MessageID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.AAD)))
	b = append(b, h.AAD...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.EDKs)))
	for i, k := range h.EDKs {
		if len(k.ProviderID) > 1<<16-1 || len(k.ProviderInfo) > 1<<16-1 || len(k.Ciphertext) > 1<<16-1 {
			return nil, fmt.Errorf("format: encrypted data key %d has a field longer than 65535 bytes", i+1)
		}
		b = appendField16(b, []byte(k.ProviderID))
		b = appendField16(b, k.ProviderInfo)
		b = appendField16(b, k.Ciphertext)
	}
	if h.Framed {
		b = append(b, ContentFramed)
	} else {
		b = append(b, ContentNonFramed)
	}
	if v == 1 {
		b = append(b, 0, 0, 0, 0, suite.IVLength)
	}
	b = binary.BigEndian.AppendUint32(b, h.FrameLength)
	if v == 2 {
		b = append(b, h.CommitKey...)
	}
	return b, nil
}

// Seal serializes the header body into Raw and computes its authentication
// tag with aead, the key derived from the data key, over Raw and AuthOnly.
// For version 2 suites CommitKey must already be set.
func (h *Header) Seal(aead cipher.AEAD) error {
	aad, err := MarshalContext(h.Context)
	if err != nil {
		return err
	}
	h.AAD = aad
	raw, err := h.marshalBody()
	if err != nil {
		return err
	}
	h.Raw = raw
	h.IV = make([]byte, suite.IVLength)
	h.Tag = aead.Seal(nil, h.IV, nil, h.authData())
	return nil
}

// Reseal recomputes the header after its EDKs changed, keeping everything
// else (message ID, context bytes, commitment) as it was. aead must be the
// key derived from the same data key.
func (h *Header) Reseal(aead cipher.AEAD) error {
	raw, err := h.marshalBody()
	if err != nil {
		return err
	}
	h.Raw = raw
	h.Tag = aead.Seal(nil, h.IV, nil, h.authData())
	return nil
}

// Verify checks the key commitment (version 2) and the header tag against the
// key derived from the data key, the tag over Raw and AuthOnly. commitKey is
// the commitment computed from the data key, nil for non-committing suites.
func (h *Header) Verify(aead cipher.AEAD, commitKey []byte) error {
	if h.Suite.Committing && subtle.ConstantTimeCompare(commitKey, h.CommitKey) != 1 {
		return tampered("the header's key commitment does not match the data key")
	}
	if _, err := aead.Open(nil, h.IV, h.Tag, h.authData()); err != nil {
		return tampered("the header authentication tag does not verify")
	}
	return nil
}

// headerReader reads header fields, keeping a copy of every byte read. It
// refuses to read past max bytes (0: no limit) before allocating for them.
type headerReader struct {
	r   io.Reader
	raw bytes.Buffer
	n   int // bytes read, authentication included
	max int
	err error
}

func (hr *headerReader) read(n int, part string) []byte {
	if hr.err != nil {
		return nil
	}
	if hr.max > 0 && hr.n+n > hr.max {
		hr.err = fmt.Errorf("%w: the header is longer than the %d bytes allowed (at the %s)", ErrTooLarge, hr.max, part)
		return nil
	}
	hr.n += n
	b := make([]byte, n)
	if _, err := io.ReadFull(hr.r, b); err != nil {
		hr.err = readErr(err, part)
		return nil
	}
	hr.raw.Write(b)
	return b
}

func (hr *headerReader) u8(part string) byte {
	if b := hr.read(1, part); b != nil {
		return b[0]
	}
	return 0
}

func (hr *headerReader) u16(part string) int {
	if b := hr.read(2, part); b != nil {
		return int(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (hr *headerReader) u32(part string) uint32 {
	if b := hr.read(4, part); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (hr *headerReader) field16(part string) []byte {
	n := hr.u16(part)
	if hr.err != nil {
		return nil
	}
	return hr.read(n, part)
}

// Limits bound what reading a message may cost. A zero field sets no
// limit beyond the format's own.
type Limits struct {
	// MaxEDKs is the most encrypted data keys a header may declare; a
	// header declaring more is refused before any of them is read.
	MaxEDKs int
	// MaxHeaderSize is the most bytes a header, authentication included,
	// may take; reading stops at the field that would pass it.
	MaxHeaderSize int
	// MaxFrame is the most plaintext a reader holds before the tag that
	// covers it verifies: the frame length of a framed message, the whole
	// body of a non-framed one.
	MaxFrame int
}

// ReadHeader reads a message header, body and authentication, from r,
// within lim's MaxEDKs and MaxHeaderSize (MaxFrame is the body reader's).
// It checks the structure only: the tag is checked by [Header.Verify] once
// the data key is known.
func ReadHeader(r io.Reader, lim Limits) (*Header, error) {
	maxEDKs := lim.MaxEDKs
	hr := &headerReader{r: r, max: lim.MaxHeaderSize}
	h := &Header{}
	version := hr.u8("header version")
	if hr.err != nil {
		return nil, hr.err
	}
	switch version {
	case 0x01:
		if t := hr.u8("header type"); hr.err == nil && t != 0x80 {
			return nil, malformed("header type is 0x%02X, want 0x80", t)
		}
	case 0x02:
	default:
		return nil, malformed("unknown message format version 0x%02X (want 0x01 or 0x02)", version)
	}
	id := suite.ID(hr.u16("algorithm suite"))
	if hr.err != nil {
		return nil, hr.err
	}
	s, ok := suite.ByID(id)
	if !ok {
		return nil, malformed("unknown algorithm suite %s", id)
	}
	if s.MessageVersion != int(version) {
		return nil, malformed("suite %s belongs in a version %d header, not version %d", id, s.MessageVersion, version)
	}
	h.Suite = s
	idLen := messageIDLenV1
	if version == 2 {
		idLen = messageIDLenV2
	}
	h.MessageID = hr.read(idLen, "message ID")
	h.AAD = hr.field16("encryption context")
	if hr.err != nil {
		return nil, hr.err
	}
	ec, err := UnmarshalContext(h.AAD)
	if err != nil {
		return nil, err
	}
	h.Context = ec
	n := hr.u16("encrypted data key count")
	if hr.err != nil {
		return nil, hr.err
	}
	if n == 0 {
		return nil, malformed("the header has no encrypted data keys")
	}
	if maxEDKs > 0 && n > maxEDKs {
		return nil, &TooManyEDKsError{Count: n, Max: maxEDKs}
	}
	h.EDKs = make([]EDK, 0, min(n, 64))
	for i := range n {
		part := fmt.Sprintf("encrypted data key %d of %d", i+1, n)
		pid := hr.field16(part)
		info := hr.field16(part)
		ct := hr.field16(part)
		if hr.err != nil {
			return nil, hr.err
		}
		if !utf8.Valid(pid) {
			return nil, malformed("%s: provider ID is not valid UTF-8", part)
		}
		h.EDKs = append(h.EDKs, EDK{ProviderID: string(pid), ProviderInfo: info, Ciphertext: ct})
	}
	ct := hr.u8("content type")
	if version == 1 {
		if res := hr.u32("reserved field"); hr.err == nil && res != 0 {
			return nil, malformed("reserved header field is 0x%08X, want 0", res)
		}
		if ivLen := hr.u8("IV length"); hr.err == nil && ivLen != suite.IVLength {
			return nil, malformed("IV length is %d, want %d", ivLen, suite.IVLength)
		}
	}
	h.FrameLength = hr.u32("frame length")
	if version == 2 {
		h.CommitKey = hr.read(commitKeyLen, "key commitment")
	}
	if hr.err != nil {
		return nil, hr.err
	}
	switch ct {
	case ContentFramed:
		h.Framed = true
		if h.FrameLength == 0 {
			return nil, malformed("framed content with a frame length of 0")
		}
	case ContentNonFramed:
		if h.FrameLength != 0 {
			return nil, malformed("non-framed content with a frame length of %d, want 0", h.FrameLength)
		}
	default:
		return nil, malformed("unknown content type 0x%02X", ct)
	}
	h.Raw = bytes.Clone(hr.raw.Bytes())
	if version == 1 {
		h.IV = hr.read(suite.IVLength, "header authentication")
	} else {
		h.IV = make([]byte, suite.IVLength)
	}
	h.Tag = hr.read(suite.TagLength, "header authentication")
	if hr.err != nil {
		return nil, hr.err
	}
	return h, nil
}

// TooManyEDKsError reports a message with more encrypted data keys than the
// caller allows ([Limits.MaxEDKs]).
type TooManyEDKsError struct {
	// Count is how many the header declares, Max the limit.
	Count, Max int
}

// Error says how many encrypted data keys the message has, and the limit.
func (e *TooManyEDKsError) Error() string {
	return fmt.Sprintf("format: the message has %d encrypted data keys, more than the %d allowed", e.Count, e.Max)
}
