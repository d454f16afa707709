// Package envelope encrypts and decrypts data of any size under a fresh data
// key, which is stored beside the ciphertext wrapped by one or more master
// keys (envelope encryption).
//
// Messages use the AWS Encryption SDK message format, so the official ESDKs
// in every language read what envelope writes and envelope reads what they
// write. [Encrypt] and [Decrypt] stream: memory stays bounded by the frame
// size whatever the size of the data.
//
// # Untrusted messages
//
// A message says how many wrapped keys it has, how long its header is and
// how much plaintext each frame holds, and a reader must hold a frame until
// its tag verifies. Decryption refuses, before trying any key, messages
// with more than [DefaultMaxEncryptedDataKeys] wrapped keys, headers over
// [DefaultMaxHeaderSize] and frames (or non-framed bodies) over
// [DefaultMaxFrameSize]; keyrings give up on a wrapping key after
// [keyring.MaxFailedUnwraps] failures; errors list a few wrapped keys and
// count the rest. With these defaults the memory one decryption holds is
// bounded whatever its input: at most about 24 MiB of frames in flight
// (with the default 64 KiB frames, 1 MiB per worker and 1 MiB more; see
// [WithWorkers]), the header (at most 1 MiB, held about twice while it is
// parsed) and a 256 KiB read buffer. Options raise each limit for trusted
// messages; memory then follows what the message declares (about four
// times its frame length, or its header).
//
// # Keys
//
// Master keys are reached through a [keyring.Keyring]: raw AES and RSA keys
// held by the caller ([keyring.NewRawAES], [keyring.NewRawRSA]), keys in a
// KMS, or several at once ([keyring.NewMulti]). A [materials.Manager] may
// stand between the facade and the keyring, to cache data keys for example.
//
// # Errors
//
// The failures a caller acts on are variables to test with errors.Is
// ([ErrTampered], [ErrNoDataKey], [ErrContextMismatch], …) or types to
// find with errors.As ([*keyring.UnwrapError], [*PolicyError]); never
// match an error's text. That text begins with the sentence of the
// variable it wraps, then says what was at fault: "message is tampered or
// corrupt: the authentication tag of frame 2 does not verify". Other
// errors begin with the name of the package that made them ("keyring: key
// file "k.pem": no PEM block found", "envelope: no keyring given"), and
// an error from below keeps its own name behind the context that is added
// to it.
//
// # What is promised
//
// Decryption releases a frame's plaintext only after the frame's tag
// verifies, and the last frame that carries plaintext only once the end of
// the message has been read and checked: for a signed message, after its
// signature verifies (also when the plaintext is an exact multiple of the
// frame length, and the final frame is empty). A reader that returns an
// error after some plaintext has nevertheless been given authenticated
// frames of a message that turned out to be incomplete or altered
// afterwards: callers that must not act on plaintext before the whole
// message is verified should buffer it (the CLI writes to a temporary file
// and renames it only on success), and callers that must act on streamed
// plaintext should refuse signed messages with [WithUnsignedOnly], whose
// frames are each authenticated on their own.
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
	"maps"
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

// Limits on what one message may cost a reader. Each has an option to
// change it; [NoLimit] lifts it. The writer keeps to the same limits, so
// that what it writes is read with the defaults.
const (
	// DefaultMaxEncryptedDataKeys is the most wrapped keys a message may
	// have: 10. A message wraps its data key once per wrapping key, and
	// few are wrapped for more than a handful; the ESDK advises a limit
	// for messages from untrusted sources, since each wrapped key can cost
	// a KMS call or an RSA decryption. Change it with
	// [WithMaxEncryptedDataKeys].
	DefaultMaxEncryptedDataKeys = 10
	// DefaultMaxHeaderSize is the most bytes a message's header may take:
	// 1 MiB. Headers are usually well under 4 KiB (the encryption context
	// is at most 64 KiB; a KMS-wrapped key takes about 300 bytes, an
	// RSA-4096 one about 550); the format allows 12 GiB. Change it with
	// [WithMaxHeaderSize].
	DefaultMaxHeaderSize = 1 << 20
	// DefaultMaxFrameSize is the most plaintext a reader holds before
	// the tag that covers it verifies: 4 MiB, 64 times the default frame
	// size. It bounds the frame length of framed messages and the length
	// of a (legacy) non-framed body, and on encrypt the frame size.
	// Change it with [WithMaxFrameSize].
	DefaultMaxFrameSize = 4 << 20
	// NoLimit, given to [WithMaxEncryptedDataKeys], [WithMaxHeaderSize] or
	// [WithMaxFrameSize], lifts that limit: the format's own bounds remain
	// (65535 wrapped keys, frames below 4 GiB, non-framed bodies below 64
	// GiB), and memory follows what the message declares.
	NoLimit = -1
)

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
	ErrContextMismatch = materials.ErrContextMismatch
	// ErrTooManyEncryptedDataKeys means a message has more wrapped keys than
	// [WithMaxEncryptedDataKeys] allows.
	ErrTooManyEncryptedDataKeys = errors.New("too many encrypted data keys")
	// ErrTooLarge means a message's header, frames or non-framed body are
	// longer than [WithMaxHeaderSize] or [WithMaxFrameSize] allow.
	ErrTooLarge = format.ErrTooLarge
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
// message does not carry: it stores another value, or neither stores nor
// authenticates the pair.
type ContextMismatchError = materials.ContextMismatchError

// Option configures [Encrypt], [Decrypt], [Rewrap] and [ReadHeader]. An
// option that does not apply to a call, such as [WithSuite] given to
// Decrypt, has no effect.
type Option func(*config)

type config struct {
	context   map[string]string
	suite     suite.ID
	frameSize int
	policy    suite.CommitmentPolicy
	limits    format.Limits // 0: no limit
	manager   materials.Manager
	unsigned  bool
	workers   int
	length    int64
	err       error
}

// WithContext sets the encryption context. On encrypt it is stored in the
// message and bound to it (but for the keys of a
// [materials.RequiredContext] manager, which are bound and not stored). On
// decrypt every pair must be in the message with the same value, or be
// authenticated by it without being stored (the ESDK's reproduced
// encryption context): a pair the message does not store enters the
// header's authentication and the keyrings' unwrapping, and fails them
// with [ErrContextMismatch] if the message was not made with it. Keys
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
// 1 to 2³²−1 bytes; the default is [DefaultFrameSize]. Sizes above
// [DefaultMaxFrameSize] also need [WithMaxFrameSize], here and in readers.
// Memory use is a few frames.
func WithFrameSize(n int) Option {
	return func(c *config) {
		if n < 1 || n > format.MaxFrameLength {
			c.err = fmt.Errorf("envelope: frame size %d out of range: want 1 to %d", n, format.MaxFrameLength)
		}
		c.frameSize = n
	}
}

// WithCommitmentPolicy sets the commitment policy; the default is
// [suite.RequireEncryptRequireDecrypt].
func WithCommitmentPolicy(p suite.CommitmentPolicy) Option {
	return func(c *config) {
		if !p.Valid() {
			c.err = fmt.Errorf("envelope: invalid commitment policy %d", p)
		}
		c.policy = p
	}
}

// WithMaxEncryptedDataKeys limits the wrapped keys a message may have, on
// encrypt and on decrypt, to n (1 or more, or [NoLimit]); the default is
// [DefaultMaxEncryptedDataKeys]. On decrypt the limit is checked when the
// header is read, before any key is tried.
func WithMaxEncryptedDataKeys(n int) Option {
	return func(c *config) { c.limits.MaxEDKs = c.limit("WithMaxEncryptedDataKeys", n) }
}

// WithMaxHeaderSize limits a message's header to n bytes (1 or more, or
// [NoLimit]); the default is [DefaultMaxHeaderSize]. On decrypt a header is
// refused with [ErrTooLarge] at the field that would pass the limit, before
// anything is allocated for it; on encrypt a larger header is refused.
func WithMaxHeaderSize(n int) Option {
	return func(c *config) { c.limits.MaxHeaderSize = c.limit("WithMaxHeaderSize", n) }
}

// WithMaxFrameSize limits the plaintext held in memory before the tag that
// covers it verifies to n bytes (1 or more, or [NoLimit]); the default is
// [DefaultMaxFrameSize]. On decrypt it bounds a framed message's frame
// length (checked with the header, before any key is tried) and a
// non-framed body's length ([ErrTooLarge]); on encrypt, the frame size.
// Memory in a decryption is about 2·max(n, 256 KiB) per batch of frames in
// flight, at least two batches.
func WithMaxFrameSize(n int) Option {
	return func(c *config) { c.limits.MaxFrame = c.limit("WithMaxFrameSize", n) }
}

// limit returns the internal form of a limit option's n: n itself, or 0
// for NoLimit.
func (c *config) limit(name string, n int) int {
	switch {
	case n == NoLimit:
		return 0
	case n < 1:
		c.err = fmt.Errorf("envelope: %s(%d): want 1 or more, or NoLimit", name, n)
	}
	return n
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
			c.err = fmt.Errorf("envelope: plaintext length %d: want 0 or more", n)
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

// applyOptions returns the configuration opts set over the defaults.
func applyOptions(opts []Option) (*config, error) {
	c := &config{
		frameSize: DefaultFrameSize,
		limits: format.Limits{
			MaxEDKs:       DefaultMaxEncryptedDataKeys,
			MaxHeaderSize: DefaultMaxHeaderSize,
			MaxFrame:      DefaultMaxFrameSize,
		},
		length: -1,
	}
	for _, o := range opts {
		o(c)
	}
	if c.err != nil {
		return nil, c.err
	}
	return c, nil
}

func newConfig(kr keyring.Keyring, opts []Option) (*config, error) {
	c, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	switch {
	case c.manager != nil && kr != nil:
		return nil, errors.New("envelope: give either a keyring or WithMaterialsManager, not both")
	case c.manager == nil && kr == nil:
		return nil, errors.New("envelope: no keyring given")
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
	// Suite is the message's algorithm suite.
	Suite *suite.Suite
	// MessageID is the message's random identifier (16 bytes in version 1,
	// 32 in version 2).
	MessageID []byte
	// Context is the encryption context stored in the message, including
	// the signing public key ("aws-crypto-public-key") of signed messages.
	Context map[string]string
	// RequiredContext holds the pairs the message authenticates without
	// storing them (the ESDK's required encryption context): on a
	// [Writer], the pairs of the required keys; on a [Reader], the
	// caller's pairs that the message does not store, which verified.
	// Nil when there are none, and always from [ReadHeader].
	RequiredContext map[string]string
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
// needs no key and does not check the header's authentication. The limits
// of [WithMaxEncryptedDataKeys] and [WithMaxHeaderSize] apply, with the
// same defaults as for [Decrypt]; other options are ignored.
func ReadHeader(src io.Reader, opts ...Option) (*Header, error) {
	c, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	h, err := readHeader(src, c)
	if err != nil {
		return nil, err
	}
	return publicHeader(h), nil
}

// readHeader reads a header within c's limits.
func readHeader(src io.Reader, c *config) (*format.Header, error) {
	h, err := format.ReadHeader(src, c.limits)
	if err != nil {
		var tm *format.TooManyEDKsError
		if errors.As(err, &tm) {
			return nil, fmt.Errorf("%w: the message has %d, the limit is %d", ErrTooManyEncryptedDataKeys, tm.Count, tm.Max)
		}
		return nil, err
	}
	return h, nil
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
			return nil, fmt.Errorf("envelope: unknown algorithm suite %s", c.suite)
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
	// Only the key derived from the data key encrypts: drop the data key.
	defer clear(m.DataKey)
	if c.length >= 0 {
		limit = min(limit, c.length)
	}
	if !c.policy.AllowsEncrypt(m.Suite) {
		return nil, &PolicyError{Suite: m.Suite, Policy: c.policy, Encrypt: true}
	}
	if max := c.limits.MaxEDKs; max > 0 && len(m.EncryptedDataKeys) > max {
		return nil, fmt.Errorf("%w: the keyring made %d, the limit is %d", ErrTooManyEncryptedDataKeys, len(m.EncryptedDataKeys), max)
	}
	if max := c.limits.MaxFrame; max > 0 && c.frameSize > max {
		return nil, fmt.Errorf("%w: frame size %d is above the %d bytes readers accept by default; raise the limit with WithMaxFrameSize here and where the message is read", ErrTooLarge, c.frameSize, max)
	}
	stored, required, authOnly, err := splitContext(m.Context, m.RequiredContextKeys)
	if err != nil {
		return nil, err
	}
	h := &format.Header{
		Suite:       m.Suite,
		MessageID:   format.NewMessageID(m.Suite),
		Context:     stored,
		EDKs:        formatEDKs(m.EncryptedDataKeys),
		Framed:      true,
		FrameLength: uint32(c.frameSize),
		AuthOnly:    authOnly,
	}
	aead, commit, err := format.DeriveKey(m.Suite, m.DataKey, h.MessageID)
	if err != nil {
		return nil, err
	}
	h.CommitKey = commit
	if err := h.Seal(aead); err != nil {
		return nil, err
	}
	if max := c.limits.MaxHeaderSize; max > 0 && len(h.Raw)+len(h.IV)+len(h.Tag) > max {
		return nil, fmt.Errorf("%w: the header takes %d bytes, more than the %d readers accept by default; raise the limit with WithMaxHeaderSize here and where the message is read", ErrTooLarge, len(h.Raw)+len(h.IV)+len(h.Tag), max)
	}
	fw, err := format.NewWriter(dst, h, aead, m.SigningKey, c.workers)
	if err != nil {
		return nil, err
	}
	if c.length >= 0 {
		fw.Grow(c.length)
	}
	ph := publicHeader(h)
	ph.RequiredContext = required
	return &Writer{w: fw, h: ph, limit: limit}, nil
}

// splitContext splits the full context of a message into the part its
// header stores and the required pairs, which it only authenticates, and
// returns the serialization of the latter (the header tag's extra data).
func splitContext(full map[string]string, requiredKeys []string) (stored, required map[string]string, authOnly []byte, err error) {
	if len(requiredKeys) == 0 {
		return full, nil, nil, nil
	}
	stored = maps.Clone(full)
	required = make(map[string]string, len(requiredKeys))
	for _, k := range requiredKeys {
		v, ok := full[k]
		if !ok {
			return nil, nil, nil, fmt.Errorf("envelope: required encryption context key %q has no value in the encryption context", k)
		}
		required[k] = v
		delete(stored, k)
	}
	if authOnly, err = format.MarshalContext(required); err != nil {
		return nil, nil, nil, err
	}
	return stored, required, authOnly, nil
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
	o, err := openMessage(ctx, br, c, true)
	if err != nil {
		return nil, err
	}
	clear(o.m.DataKey) // the body is opened with the derived key
	// The body is read straight from src into the decryptor's buffers,
	// after what the header's reader buffered.
	rest, _ := br.Peek(br.Buffered())
	fr, err := format.NewReader(rest, src, o.h, o.aead, o.m.VerificationKey, c.workers, c.limits.MaxFrame)
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

// openMessage reads a header from br, applies the caller's checks (limits,
// signed messages, commitment policy, required context), unwraps the data
// key and verifies the key commitment and the header tag: everything
// Decrypt and Rewrap do before the body. body says the body is to be
// decrypted, and so held frame by frame in memory (Rewrap copies it).
//
// The caller's context pairs that the header does not store are the
// ESDK's reproduced encryption context: the keyrings unwrap with them, and
// the header tag is checked over them. When either fails and the message
// opens without them, the error says the message lacks the pair.
func openMessage(ctx context.Context, br *bufio.Reader, c *config, body bool) (*openedMessage, error) {
	h, err := readHeader(br, c)
	if err != nil {
		return nil, err
	}
	if c.unsigned && h.Suite.Signed() {
		return nil, fmt.Errorf("%w (suite %s)", ErrSignedMessage, h.Suite)
	}
	if !c.policy.AllowsDecrypt(h.Suite) {
		return nil, &PolicyError{Suite: h.Suite, Policy: c.policy}
	}
	if body {
		if err := format.CheckFrameLength(h, c.limits.MaxFrame); err != nil {
			return nil, err
		}
	}
	_, missing, err := materials.ReproduceContext(h.Context, c.context)
	if err != nil {
		return nil, err
	}
	pub := publicHeader(h)
	req := materials.DecryptionRequest{
		Suite: h.Suite, Context: h.Context, EncryptedDataKeys: pub.EncryptedDataKeys, Policy: c.policy,
		ReproducedContext: c.context,
	}
	m, err := c.manager.DecryptionMaterials(ctx, req)
	if err != nil {
		if len(missing) > 0 && errors.Is(err, ErrNoDataKey) {
			if k, ok := culprit(missing, func(drop []string) bool { return opensWithout(ctx, c, req, drop) }); ok {
				return nil, &ContextMismatchError{Key: k, Want: c.context[k], Missing: true}
			}
			return nil, &reproducedError{err, missing}
		}
		return nil, err
	}
	// Every pair of the caller's must be stored, or authenticated by the
	// header tag (a manager that ignored the reproduced context would
	// otherwise let it pass unchecked).
	required := make(map[string]string, len(m.RequiredContextKeys))
	for _, k := range m.RequiredContextKeys {
		v, ok := m.Context[k]
		if !ok {
			clear(m.DataKey)
			return nil, fmt.Errorf("envelope: materials manager %T: required context key %q has no value", c.manager, k)
		}
		required[k] = v
	}
	for _, k := range missing {
		if v, ok := required[k]; !ok || v != c.context[k] {
			clear(m.DataKey)
			return nil, &ContextMismatchError{Key: k, Want: c.context[k], Missing: true}
		}
	}
	if len(required) > 0 {
		if h.AuthOnly, err = format.MarshalContext(required); err != nil {
			clear(m.DataKey)
			return nil, err
		}
		pub.RequiredContext = required
	}
	aead, commit, err := format.DeriveKey(h.Suite, m.DataKey, h.MessageID)
	if err != nil {
		clear(m.DataKey)
		return nil, err
	}
	if err := h.Verify(aead, commit); err != nil {
		clear(m.DataKey)
		if len(missing) > 0 && errors.Is(err, ErrTampered) {
			// Does the header verify without some of the caller's extra
			// pairs? Then it simply does not carry them.
			verifies := func(drop []string) bool {
				less := maps.Clone(required)
				for _, k := range drop {
					delete(less, k)
				}
				hh := *h
				hh.AuthOnly, _ = format.MarshalContext(less)
				return hh.Verify(aead, commit) == nil
			}
			if k, ok := culprit(missing, verifies); ok {
				return nil, &ContextMismatchError{Key: k, Want: c.context[k], Missing: true}
			}
			return nil, &reproducedError{err, missing}
		}
		return nil, err
	}
	return &openedMessage{h: h, pub: pub, m: m, aead: aead}, nil
}

// opensWithout reports whether the data key of req's message unwraps
// without the reproduced pairs of the keys missing (those the message does
// not store): then the message was made without them, and a failure with
// them is a context mismatch, not a missing key. The data key is dropped.
func opensWithout(ctx context.Context, c *config, req materials.DecryptionRequest, missing []string) bool {
	req.ReproducedContext = maps.Clone(req.ReproducedContext)
	for _, k := range missing {
		delete(req.ReproducedContext, k)
	}
	m, err := c.manager.DecryptionMaterials(ctx, req)
	if err != nil {
		return false
	}
	clear(m.DataKey)
	return true
}

// reproducedError is a failure to unwrap the data key or to verify the
// header of a message checked with pairs of the caller's context that it
// does not store: it says that a wrong value given for one of them fails
// the same way.
type reproducedError struct {
	err  error
	keys []string
}

func (e *reproducedError) Error() string {
	return fmt.Sprintf("%v (checked with the encryption context pairs the message does not store, %q: a wrong value for one of them fails alike)", e.err, e.keys)
}

func (e *reproducedError) Unwrap() error { return e.err }

// culprit finds which of the caller's pairs that a message does not store
// it does not authenticate either: opens reports whether the message opens
// without the pairs of some keys. All of them are tried together, then
// (for a few) each alone. It returns the key to blame.
func culprit(missing []string, opens func(drop []string) bool) (string, bool) {
	if opens(missing) {
		return missing[0], true
	}
	if len(missing) == 1 || len(missing) > maxCulprits {
		return "", false
	}
	for _, k := range missing {
		if opens([]string{k}) {
			return k, true
		}
	}
	return "", false
}

// maxCulprits bounds the retries culprit makes (each may call a KMS).
const maxCulprits = 4

// readBufferSize sizes the read buffer: 256 KiB for streams, less for a
// source that says it is small (a bytes.Reader, say).
func readBufferSize(src io.Reader) int {
	const large = 256 << 10
	if l, ok := src.(interface{ Len() int }); ok {
		return max(4096, min(large, l.Len()+1))
	}
	return large
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
