// Package envelope encrypts and decrypts data of any size under a fresh data
// key, which is stored beside the ciphertext wrapped by one or more master
// keys (envelope encryption).
//
// Messages use the AWS Encryption SDK message format, so the official ESDKs
// in every language read what envelope writes and envelope reads what they
// write. [Encrypt] and [Decrypt] stream: memory stays bounded by the frame
// size whatever the size of the data.
//
// # Keys
//
// Master keys are reached through a [keyring.Keyring]: raw AES and RSA keys
// held by the caller ([keyring.NewRawAES], [keyring.NewRawRSA]), keys in a
// KMS, or several at once ([keyring.NewMulti]). A [materials.Manager] may
// stand between the facade and the keyring, to cache data keys for example.
//
// # What is promised
//
// Decryption releases a frame's plaintext only after the frame's tag
// verifies, and the last plaintext of a signed message only after its
// signature verifies. A reader that returns an error after some plaintext
// has nevertheless been given authenticated frames of a message that turned
// out to be incomplete or altered afterwards: callers that must not act on
// plaintext before the whole message is verified should buffer it (the CLI
// writes to a temporary file and renames it only on success), and callers
// that must act on streamed plaintext should refuse signed messages with
// [WithUnsignedOnly], whose frames are each authenticated on their own.
//
// The default commitment policy writes and reads only committing suites
// (0x0478 and 0x0578), so a message decrypts to at most one plaintext.
package envelope

import (
	"bufio"
	"bytes"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/envelopekms/envelope/internal/format"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/materials"
	"github.com/envelopekms/envelope/suite"
)

// DefaultFrameSize is the plaintext length of each frame when none is set:
// 64 KiB. Larger frames amortize the per-frame cost; every ESDK reads any
// frame length. (The ESDK writes 4096-byte frames by default.)
const DefaultFrameSize = 64 << 10

// DefaultMaxEncryptedDataKeys is the limit on wrapped keys per message when
// none is set: 0, no limit beyond the format's 65535. Set a limit with
// [WithMaxEncryptedDataKeys] when reading messages from untrusted sources, so
// that a message cannot make the keyring try thousands of keys.
const DefaultMaxEncryptedDataKeys = 0

// Errors callers can test for with errors.Is.
var (
	// ErrMalformed means the input is not a well-formed message.
	ErrMalformed = format.ErrMalformed
	// ErrTruncated means the message ends before it is complete.
	ErrTruncated = format.ErrTruncated
	// ErrTampered means an authentication check failed: the header tag, the
	// key commitment, a frame's tag or the signature.
	ErrTampered = format.ErrTampered
	// ErrNoDataKey means no keyring could unwrap the data key; the error is
	// usually a *[keyring.UnwrapError] naming the keys involved.
	ErrNoDataKey = keyring.ErrNoDataKey
	// ErrSignedMessage means a signed message was refused because of
	// [WithUnsignedOnly].
	ErrSignedMessage = errors.New("the message is signed, and signed messages were refused")
	// ErrContextMismatch means a required encryption context pair is absent
	// from the message or has another value; see [ContextMismatchError].
	ErrContextMismatch = errors.New("encryption context mismatch")
	// ErrTooManyEncryptedDataKeys means a message has more wrapped keys than
	// [WithMaxEncryptedDataKeys] allows.
	ErrTooManyEncryptedDataKeys = errors.New("too many encrypted data keys")
	// ErrPlaintextLimit means a message was given more plaintext than
	// declared with [WithPlaintextLength], or than its cached data key may
	// still encrypt ([materials.Caching]).
	ErrPlaintextLimit = materials.ErrPlaintextLimit
	// ErrReservedContextKey means a caller's encryption context used a key
	// starting with "aws-crypto-", which the format reserves.
	ErrReservedContextKey = materials.ErrReservedContextKey
)

// PolicyError reports a suite refused by the commitment policy.
type PolicyError = materials.PolicyError

// ContextMismatchError reports a required encryption context pair that the
// message does not carry.
type ContextMismatchError struct {
	Key string
	// Want is the required value, Got the message's; Missing is true when
	// the message has no such key.
	Want, Got string
	Missing   bool
}

func (e *ContextMismatchError) Error() string {
	if e.Missing {
		return fmt.Sprintf("encryption context mismatch: the message has no key %q (required %q=%q)", e.Key, e.Key, e.Want)
	}
	return fmt.Sprintf("encryption context mismatch: %q is %q in the message, not %q", e.Key, e.Got, e.Want)
}

// Is reports whether target is [ErrContextMismatch].
func (e *ContextMismatchError) Is(target error) bool { return target == ErrContextMismatch }

// Option configures [Encrypt] and [Decrypt].
type Option func(*config)

type config struct {
	context   map[string]string
	suite     suite.ID
	frameSize int
	policy    suite.CommitmentPolicy
	maxEDKs   int
	manager   materials.Manager
	unsigned  bool
	workers   int
	length    int64
	err       error
}

// WithContext sets the encryption context. On encrypt it is stored in the
// message and bound to it; on decrypt every pair must be present in the
// message with the same value ([ErrContextMismatch] otherwise). Keys
// starting with "aws-crypto-" are reserved.
func WithContext(ec map[string]string) Option {
	return func(c *config) { c.context = ec }
}

// WithSuite sets the algorithm suite to encrypt with (encrypt only). The
// default is 0x0578 ([suite.AES256GCMHKDFSHA512CommitKeyECDSAP384]), or 0x0378
// under [suite.ForbidEncryptAllowDecrypt].
func WithSuite(id suite.ID) Option {
	return func(c *config) { c.suite = id }
}

// WithFrameSize sets the plaintext length of each frame (encrypt only), from
// 1 to 2³²−1 bytes; the default is [DefaultFrameSize]. Memory use is about
// one frame.
func WithFrameSize(n int) Option {
	return func(c *config) {
		if n < 1 || n > format.MaxFrameLength {
			c.err = fmt.Errorf("frame size %d out of range: want 1 to %d", n, format.MaxFrameLength)
		}
		c.frameSize = n
	}
}

// WithCommitmentPolicy sets the commitment policy; the default is
// [suite.RequireEncryptRequireDecrypt].
func WithCommitmentPolicy(p suite.CommitmentPolicy) Option {
	return func(c *config) {
		if !p.Valid() {
			c.err = fmt.Errorf("invalid commitment policy %d", p)
		}
		c.policy = p
	}
}

// WithMaxEncryptedDataKeys limits the wrapped keys a message may have, on
// encrypt and on decrypt; n ≤ 0 means no limit. On decrypt the limit is
// checked when the header is read, before any key is tried.
func WithMaxEncryptedDataKeys(n int) Option {
	return func(c *config) { c.maxEDKs = max(n, 0) }
}

// WithMaterialsManager supplies materials through m instead of the default
// manager over a keyring; the keyring argument must then be nil.
func WithMaterialsManager(m materials.Manager) Option {
	return func(c *config) { c.manager = m }
}

// WithPlaintextLength declares the length of the plaintext (encrypt only).
// The materials manager learns it (a caching manager can then reuse a data
// key within its byte limit), and the Writer refuses more plaintext than
// declared with [ErrPlaintextLimit].
func WithPlaintextLength(n int64) Option {
	return func(c *config) {
		if n < 0 {
			c.err = fmt.Errorf("plaintext length %d: want 0 or more", n)
		}
		c.length = n
	}
}

// WithWorkers sets how many goroutines seal or open frames in parallel; the
// default (n ≤ 0) is one per CPU (GOMAXPROCS), or one fewer (at least one)
// for signed suites, whose signature hash runs on a goroutine of its own
// and is the slowest stage. Frames are written and released in order
// whatever the number; 1 keeps the ciphers on one core.
// Messages that fit in one batch of frames (256 KiB) use no extra goroutine.
func WithWorkers(n int) Option {
	return func(c *config) { c.workers = n }
}

// WithUnsignedOnly makes [Decrypt] refuse signed messages with
// [ErrSignedMessage]. Every frame of an unsigned message is authenticated on
// its own, so a caller that acts on plaintext as it streams can trust each
// frame it reads; in a signed message, anyone able to decrypt could have
// forged frames that only the final signature check would catch.
func WithUnsignedOnly() Option {
	return func(c *config) { c.unsigned = true }
}

func newConfig(kr keyring.Keyring, opts []Option) (*config, error) {
	c := &config{frameSize: DefaultFrameSize, maxEDKs: DefaultMaxEncryptedDataKeys, length: -1}
	for _, o := range opts {
		o(c)
	}
	if c.err != nil {
		return nil, c.err
	}
	switch {
	case c.manager != nil && kr != nil:
		return nil, errors.New("give either a keyring or WithMaterialsManager, not both")
	case c.manager == nil && kr == nil:
		return nil, errors.New("no keyring given")
	case c.manager == nil:
		c.manager = materials.NewDefault(kr)
	}
	for k := range c.context {
		if strings.HasPrefix(k, format.ReservedContextPrefix) {
			return nil, fmt.Errorf("%w: %q", ErrReservedContextKey, k)
		}
	}
	return c, nil
}

// Header describes a message: what [ReadHeader] parses and what the readers
// and writers of this package expose.
type Header struct {
	// Version is the message format version, 1 or 2.
	Version int
	Suite   *suite.Suite
	// MessageID is the message's random identifier (16 bytes in version 1,
	// 32 in version 2).
	MessageID []byte
	// Context is the encryption context, including the signing public key
	// ("aws-crypto-public-key") of signed messages.
	Context map[string]string
	// EncryptedDataKeys are the wrapped copies of the data key.
	EncryptedDataKeys []keyring.EncryptedDataKey
	// Framed is false for the legacy non-framed body.
	Framed bool
	// FrameLength is the plaintext length of each frame (0 if not framed).
	FrameLength int
}

func publicHeader(h *format.Header) *Header {
	edks := make([]keyring.EncryptedDataKey, len(h.EDKs))
	for i, k := range h.EDKs {
		edks[i] = keyring.EncryptedDataKey(k)
	}
	return &Header{
		Version:           h.Version(),
		Suite:             h.Suite,
		MessageID:         h.MessageID,
		Context:           h.Context,
		EncryptedDataKeys: edks,
		Framed:            h.Framed,
		FrameLength:       int(h.FrameLength),
	}
}

func formatEDKs(edks []keyring.EncryptedDataKey) []format.EDK {
	out := make([]format.EDK, len(edks))
	for i, k := range edks {
		out[i] = format.EDK(k)
	}
	return out
}

// ReadHeader parses the header of a message without decrypting anything. It
// needs no key and does not check the header's authentication.
func ReadHeader(src io.Reader) (*Header, error) {
	h, err := format.ReadHeader(src, 0)
	if err != nil {
		return nil, err
	}
	return publicHeader(h), nil
}

// Writer encrypts what is written to it. See [Encrypt].
type Writer struct {
	w     *format.Writer
	h     *Header
	lease *materials.Lease // nil unless the manager is a materials.Leaser
	limit int64            // the most plaintext the message may hold
	n     int64            // plaintext accepted so far
	err   error            // sticky ErrPlaintextLimit
}

func (w *Writer) limitError() error {
	w.err = fmt.Errorf("%w: the message may hold at most %d bytes", ErrPlaintextLimit, w.limit)
	return w.err
}

// Write encrypts p.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if int64(len(p)) > w.limit-w.n {
		return 0, w.limitError()
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom encrypts everything r yields (io.Copy uses it), reading
// straight into the frames being filled.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.limit == math.MaxInt64 {
		n, err := w.w.ReadFrom(r)
		w.n += n
		return n, err
	}
	n, err := w.w.ReadFrom(io.LimitReader(r, w.limit-w.n))
	w.n += n
	if err != nil || w.n < w.limit {
		return n, err
	}
	var probe [1]byte
	if k, _ := io.ReadFull(r, probe[:]); k > 0 {
		return n, w.limitError()
	}
	return n, nil
}

// Close writes the end of the message: the final frame and, for signed
// suites, the signature. It does not close the destination. The message is
// valid only once Close has returned nil. After [ErrPlaintextLimit] the
// message is left without its end, so that no reader accepts it.
func (w *Writer) Close() error {
	if err := w.lease.Done(w.n); err != nil && w.err == nil {
		w.err = err
	}
	if w.err != nil {
		w.w.Abort()
		return w.err
	}
	return w.w.Close()
}

// Header returns the header of the message being written.
func (w *Writer) Header() *Header { return w.h }

// Encrypt starts a message on dst and returns a Writer for its plaintext.
// The header is written at once; each frame as it fills; the final frame
// and signature on Close.
//
// The data key comes from kr, through the default materials manager, or
// from the manager given with [WithMaterialsManager] (kr nil).
func Encrypt(ctx context.Context, dst io.Writer, kr keyring.Keyring, opts ...Option) (*Writer, error) {
	c, err := newConfig(kr, opts)
	if err != nil {
		return nil, err
	}
	var s *suite.Suite
	if c.suite != 0 {
		var ok bool
		if s, ok = suite.ByID(c.suite); !ok {
			return nil, fmt.Errorf("unknown algorithm suite %s", c.suite)
		}
	}
	req := materials.EncryptionRequest{Context: c.context, Suite: s, Policy: c.policy, PlaintextLength: c.length}
	var (
		m     *keyring.EncryptionMaterials
		lease *materials.Lease
	)
	if l, ok := c.manager.(materials.Leaser); ok {
		m, lease, err = l.LeaseEncryptionMaterials(ctx, req)
	} else {
		m, err = c.manager.EncryptionMaterials(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	w, err := encryptWith(dst, c, m, lease.Limit())
	if err != nil {
		lease.Done(0)
		return nil, err
	}
	w.lease = lease
	return w, nil
}

// encryptWith writes the header of a message encrypted with m and returns
// its Writer.
func encryptWith(dst io.Writer, c *config, m *keyring.EncryptionMaterials, limit int64) (*Writer, error) {
	if c.length >= 0 {
		limit = min(limit, c.length)
	}
	if !c.policy.AllowsEncrypt(m.Suite) {
		return nil, &PolicyError{Suite: m.Suite, Policy: c.policy, Encrypt: true}
	}
	if c.maxEDKs > 0 && len(m.EncryptedDataKeys) > c.maxEDKs {
		return nil, fmt.Errorf("%w: the keyring made %d, the limit is %d", ErrTooManyEncryptedDataKeys, len(m.EncryptedDataKeys), c.maxEDKs)
	}
	h := &format.Header{
		Suite:       m.Suite,
		MessageID:   format.NewMessageID(m.Suite),
		Context:     m.Context,
		EDKs:        formatEDKs(m.EncryptedDataKeys),
		Framed:      true,
		FrameLength: uint32(c.frameSize),
	}
	aead, commit, err := format.DeriveKey(m.Suite, m.DataKey, h.MessageID)
	if err != nil {
		return nil, err
	}
	h.CommitKey = commit
	if err := h.Seal(aead); err != nil {
		return nil, err
	}
	fw, err := format.NewWriter(dst, h, aead, m.SigningKey, c.workers)
	if err != nil {
		return nil, err
	}
	if c.length >= 0 {
		fw.Grow(c.length)
	}
	return &Writer{w: fw, h: publicHeader(h), limit: limit}, nil
}

// Reader decrypts a message. See [Decrypt].
type Reader struct {
	r *format.Reader
	h *Header
}

// Read returns authenticated plaintext. It returns io.EOF only after the
// whole message, signature included, has been verified and nothing follows
// it; any other error means the message must be discarded.
func (r *Reader) Read(p []byte) (int, error) { return r.r.Read(p) }

// WriteTo writes the rest of the plaintext to w (io.Copy uses it), with the
// same guarantees as Read.
func (r *Reader) WriteTo(w io.Writer) (int64, error) { return r.r.WriteTo(w) }

// Close releases the goroutines and buffers of a Reader abandoned before
// the end of its message; reading to io.EOF or to an error releases them
// too. It does not close the source.
func (r *Reader) Close() error { return r.r.Close() }

// Header returns the message's header. Its authenticity has been verified.
func (r *Reader) Header() *Header { return r.h }

// Decrypt reads a message's header from src, unwraps its data key with kr
// (or the manager given with [WithMaterialsManager]), verifies the header,
// and returns a Reader for the plaintext.
func Decrypt(ctx context.Context, src io.Reader, kr keyring.Keyring, opts ...Option) (*Reader, error) {
	c, err := newConfig(kr, opts)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(src, readBufferSize(src))
	o, err := openMessage(ctx, br, c)
	if err != nil {
		return nil, err
	}
	// The body is read straight from src into the decryptor's buffers,
	// after what the header's reader buffered.
	rest, _ := br.Peek(br.Buffered())
	fr, err := format.NewReader(rest, src, o.h, o.aead, o.m.VerificationKey, c.workers)
	if err != nil {
		return nil, err
	}
	return &Reader{r: fr, h: o.pub}, nil
}

// openedMessage is a message whose header was read and verified with the
// data key the materials manager unwrapped.
type openedMessage struct {
	h    *format.Header
	pub  *Header
	m    *keyring.DecryptionMaterials
	aead cipher.AEAD
}

// openMessage reads a header from br, applies the caller's checks (EDK
// limit, signed messages, commitment policy, required context), unwraps the
// data key and verifies the key commitment and the header tag: everything
// Decrypt and Rewrap do before the body.
func openMessage(ctx context.Context, br *bufio.Reader, c *config) (*openedMessage, error) {
	h, err := format.ReadHeader(br, c.maxEDKs)
	if err != nil {
		var tm *format.TooManyEDKsError
		if errors.As(err, &tm) {
			return nil, fmt.Errorf("%w: the message has %d, the limit is %d", ErrTooManyEncryptedDataKeys, tm.Count, tm.Max)
		}
		return nil, err
	}
	if c.unsigned && h.Suite.Signed() {
		return nil, fmt.Errorf("%w (suite %s)", ErrSignedMessage, h.Suite)
	}
	if !c.policy.AllowsDecrypt(h.Suite) {
		return nil, &PolicyError{Suite: h.Suite, Policy: c.policy}
	}
	if err := checkRequiredContext(h.Context, c.context); err != nil {
		return nil, err
	}
	pub := publicHeader(h)
	m, err := c.manager.DecryptionMaterials(ctx, materials.DecryptionRequest{
		Suite: h.Suite, Context: h.Context, EncryptedDataKeys: pub.EncryptedDataKeys, Policy: c.policy,
	})
	if err != nil {
		return nil, err
	}
	aead, commit, err := format.DeriveKey(h.Suite, m.DataKey, h.MessageID)
	if err != nil {
		return nil, err
	}
	if err := h.Verify(aead, commit); err != nil {
		return nil, err
	}
	return &openedMessage{h: h, pub: pub, m: m, aead: aead}, nil
}

// readBufferSize sizes the read buffer: 256 KiB for streams, less for a
// source that says it is small (a bytes.Reader, say).
func readBufferSize(src io.Reader) int {
	const large = 256 << 10
	if l, ok := src.(interface{ Len() int }); ok {
		return max(4096, min(large, l.Len()+1))
	}
	return large
}

func checkRequiredContext(have, want map[string]string) error {
	for k, v := range want {
		got, ok := have[k]
		if !ok {
			return &ContextMismatchError{Key: k, Want: v, Missing: true}
		}
		if got != v {
			return &ContextMismatchError{Key: k, Want: v, Got: got}
		}
	}
	return nil
}

// EncryptBytes encrypts plaintext into one message held in memory.
func EncryptBytes(ctx context.Context, plaintext []byte, kr keyring.Keyring, opts ...Option) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(plaintext) + len(plaintext)/DefaultFrameSize*32 + 1024) // most messages: one allocation
	opts = append(opts[:len(opts):len(opts)], WithPlaintextLength(int64(len(plaintext))))
	w, err := Encrypt(ctx, &buf, kr, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecryptBytes decrypts a message held in memory. It returns the plaintext
// only if the whole message verifies.
func DecryptBytes(ctx context.Context, message []byte, kr keyring.Keyring, opts ...Option) ([]byte, *Header, error) {
	r, err := Decrypt(ctx, bytes.NewReader(message), kr, opts...)
	if err != nil {
		return nil, nil, err
	}
	pt, err := io.ReadAll(r)
	if err != nil {
		clear(pt)
		return nil, nil, err
	}
	return pt, r.Header(), nil
}
