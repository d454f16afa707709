// Package ecdhwire is the wire format shared by the AWS Encryption SDK's
// ECDH keyrings (the raw ECDH keyring, provider "raw-ecdh", and the KMS
// ECDH keyring, provider "aws-kms-ecdh"): curves and their compressed
// points, the key provider information, the key derivation and the wrapped
// data key. Both keyrings write the same bytes, and each reads the other's.
//
// The facts come from the ESDK specification (framework/raw-ecdh-keyring.md,
// aws-kms/aws-kms-ecdh-keyring.md, key-agreement-schemas.md) and, where it
// leaves a byte open, from the Material Providers Library that implements it:
//
//   - provider info: version 0x01, then the recipient's and the sender's
//     SEC 1 compressed public keys, each after a 4-byte big-endian length;
//   - the KDF: NIST SP 800-108 counter mode with HMAC-SHA384 keyed with the
//     shared secret Z, each block HMAC(counter ‖ FixedInfo ‖ 0x00 ‖ salt ‖
//     L), counter and L (512) 4-byte big-endian, the salt 32 random bytes;
//     the first 32 bytes of the output are a commitment key, the next 32 the
//     AES-256-GCM wrapping key;
//   - FixedInfo: "ecdh-key-derivation" 0x00 curve 0x00 "HMAC_SHA384" 0x00
//     sender ‖ recipient (compressed) 0x00 0x01 0x00 encryption context
//     (the header's serialization), with curve "p256", "p384" or "p521";
//   - the wrapped key: salt ‖ commitment key ‖ AES-GCM ciphertext ‖ 16-byte
//     tag, sealed under a zero IV with FixedInfo as the AAD.
//
// Its errors are bare reasons: the keyrings that call it say which keyring
// and which key they are about.
package ecdhwire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/envelopekms/envelope/internal/format"
)

// The provider ids of the two ECDH keyrings. Either keyring unwraps the
// encrypted data keys of both.
const (
	RawProviderID = "raw-ecdh"
	KMSProviderID = "aws-kms-ecdh"
)

// IsECDH reports whether a provider id is one of the ECDH keyrings'.
func IsECDH(providerID string) bool {
	return providerID == RawProviderID || providerID == KMSProviderID
}

// Curve is one of the curves the ECDH keyrings allow: NIST P-256, P-384 and
// P-521. (The specification also names SM2, which envelope does not
// support; secp256k1 is not allowed.)
type Curve int

// The curves, in the specification's order. The zero Curve is none.
const (
	P256 Curve = iota + 1
	P384
	P521
)

// Curves lists every curve.
var Curves = []Curve{P256, P384, P521}

type curveInfo struct {
	name, spec, kdf string
	ecdh            ecdh.Curve
	elliptic        elliptic.Curve
	secretLen       int // bytes of the shared secret, the x-coordinate
}

var curveInfos = [...]curveInfo{
	P256: {"P-256", "ECC_NIST_P256", "p256", ecdh.P256(), elliptic.P256(), 32},
	P384: {"P-384", "ECC_NIST_P384", "p384", ecdh.P384(), elliptic.P384(), 48},
	P521: {"P-521", "ECC_NIST_P521", "p521", ecdh.P521(), elliptic.P521(), 66},
}

func (c Curve) valid() bool { return c >= P256 && c <= P521 }

func (c Curve) info() *curveInfo {
	if !c.valid() {
		panic(fmt.Sprintf("ecdhwire: invalid Curve(%d)", int(c)))
	}
	return &curveInfos[c]
}

// String returns the curve's common name: "P-256", "P-384" or "P-521".
func (c Curve) String() string {
	if !c.valid() {
		return fmt.Sprintf("Curve(%d)", int(c))
	}
	return c.info().name
}

// KeySpec returns the curve's AWS KMS key spec, such as "ECC_NIST_P256".
func (c Curve) KeySpec() string { return c.info().spec }

// ECDH returns the curve of crypto/ecdh.
func (c Curve) ECDH() ecdh.Curve { return c.info().ecdh }

// SecretLen is the length of the curve's ECDH shared secret.
func (c Curve) SecretLen() int { return c.info().secretLen }

// CompressedLen is the length of a compressed point of the curve.
func (c Curve) CompressedLen() int { return 1 + c.info().secretLen }

// ParseCurve accepts a curve's common name ("P-256"), its KMS key spec
// ("ECC_NIST_P256") or the specification's short name ("p256"), in any
// case.
func ParseCurve(s string) (Curve, error) {
	for _, c := range Curves {
		ci := c.info()
		if strings.EqualFold(s, ci.name) || strings.EqualFold(s, ci.spec) || strings.EqualFold(s, ci.kdf) {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown curve %q (want P-256, P-384 or P-521)", s)
}

// CurveOf returns the curve of a crypto/ecdh key, or false for curves the
// ECDH keyrings do not allow (X25519).
func CurveOf(c ecdh.Curve) (Curve, bool) {
	for _, k := range Curves {
		if k.info().ecdh == c {
			return k, true
		}
	}
	return 0, false
}

// Compress returns the SEC 1 compressed form of a public key of one of the
// curves: 0x02 or 0x03 (the parity of y), then x.
func Compress(pub *ecdh.PublicKey) []byte {
	u := pub.Bytes() // 0x04 ‖ x ‖ y
	n := (len(u) - 1) / 2
	out := make([]byte, 1+n)
	out[0] = 2 | u[len(u)-1]&1
	copy(out[1:], u[1:1+n])
	return out
}

// Decompress parses a SEC 1 compressed point of curve c into a public key,
// refusing anything that is not a point of the curve (nor the point at
// infinity).
func Decompress(c Curve, b []byte) (*ecdh.PublicKey, error) {
	ci := c.info()
	if len(b) != c.CompressedLen() || b[0] != 2 && b[0] != 3 {
		return nil, fmt.Errorf("not a compressed %s point", ci.name)
	}
	x, y := elliptic.UnmarshalCompressed(ci.elliptic, b)
	if x == nil {
		return nil, fmt.Errorf("not a point of %s", ci.name)
	}
	n := ci.secretLen
	u := make([]byte, 1+2*n)
	u[0] = 4
	x.FillBytes(u[1 : 1+n])
	y.FillBytes(u[1+n:])
	return ci.ecdh.NewPublicKey(u)
}

// Version is the only version of the ECDH keyrings' provider info and key
// derivation.
const Version = 0x01

// ProviderInfo is the key provider information of an ECDH encrypted data
// key: the sender's and the recipient's public keys, compressed.
type ProviderInfo struct {
	Curve             Curve
	Sender, Recipient []byte
}

// NewProviderInfo returns the provider info of a wrap from sender to
// recipient, two keys of curve c.
func NewProviderInfo(c Curve, sender, recipient *ecdh.PublicKey) ProviderInfo {
	return ProviderInfo{Curve: c, Sender: Compress(sender), Recipient: Compress(recipient)}
}

// Marshal serializes the provider info: version, recipient length and key,
// sender length and key.
func (p ProviderInfo) Marshal() []byte {
	b := make([]byte, 0, 1+4+len(p.Recipient)+4+len(p.Sender))
	b = append(b, Version)
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.Recipient)))
	b = append(b, p.Recipient...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.Sender)))
	return append(b, p.Sender...)
}

// ParseProviderInfo parses the provider info of an ECDH encrypted data
// key. The curve follows from the keys' length; both keys must have it,
// and nothing may follow. The points are not checked to lie on the curve
// ([Decompress] does that).
func ParseProviderInfo(b []byte) (ProviderInfo, error) {
	if len(b) < 1+4 || b[0] != Version {
		if len(b) > 0 && b[0] != Version {
			return ProviderInfo{}, fmt.Errorf("ECDH provider info of version %d; only version %d exists", b[0], Version)
		}
		return ProviderInfo{}, errors.New("ECDH provider info too short")
	}
	rlen := binary.BigEndian.Uint32(b[1:5])
	var c Curve
	for _, k := range Curves {
		if int64(rlen) == int64(k.CompressedLen()) {
			c = k
		}
	}
	if c == 0 {
		return ProviderInfo{}, fmt.Errorf("ECDH provider info holds a %d-byte recipient key; want 33, 49 or 67 (a compressed P-256, P-384 or P-521 point)", rlen)
	}
	n := int(rlen)
	if len(b) != 1+4+n+4+n {
		return ProviderInfo{}, fmt.Errorf("ECDH provider info is %d bytes; a %s one is %d", len(b), c, 1+4+n+4+n)
	}
	if slen := binary.BigEndian.Uint32(b[5+n:]); slen != rlen {
		return ProviderInfo{}, fmt.Errorf("ECDH provider info holds a %d-byte recipient key and a %d-byte sender key", rlen, slen)
	}
	return ProviderInfo{
		Curve:     c,
		Recipient: append([]byte(nil), b[5:5+n]...),
		Sender:    append([]byte(nil), b[5+n+4:]...),
	}, nil
}

// Describe names the sender and recipient keys of p for an error or a
// listing, by the start of their x-coordinates.
func (p ProviderInfo) Describe() string {
	return fmt.Sprintf("%s sender=%s recipient=%s", p.Curve, Fingerprint(p.Sender), Fingerprint(p.Recipient))
}

// Fingerprint names a compressed public key by the first 8 bytes of its
// x-coordinate, in hex.
func Fingerprint(compressed []byte) string {
	if len(compressed) < 9 {
		return hex.EncodeToString(compressed)
	}
	return hex.EncodeToString(compressed[1:9]) + "…"
}

// Sizes of the wrapped data key's parts.
const (
	SaltLen       = 32
	CommitmentLen = 32
	TagLen        = 16
	kdfLen        = 64 // commitment key ‖ wrapping key
)

// fixedInfo is the KDF's FixedInfo, and the AAD of the data key's wrap.
func fixedInfo(p ProviderInfo, ec []byte) []byte {
	const prefix = "ecdh-key-derivation"
	const prf = "HMAC_SHA384"
	kdfCurve := p.Curve.info().kdf
	b := make([]byte, 0, len(prefix)+len(kdfCurve)+len(prf)+len(p.Sender)+len(p.Recipient)+len(ec)+6)
	b = append(b, prefix...)
	b = append(b, 0)
	b = append(b, kdfCurve...)
	b = append(b, 0)
	b = append(b, prf...)
	b = append(b, 0)
	b = append(b, p.Sender...)
	b = append(b, p.Recipient...)
	b = append(b, 0, Version, 0)
	return append(b, ec...)
}

// kdf derives the 64 bytes of a wrap: SP 800-108 counter mode with
// HMAC-SHA384 keyed with z, whose fixed input is the label FixedInfo, a
// zero byte, the context (the salt) and L, the output length in bits.
func kdf(z, info, salt []byte) []byte {
	fixed := make([]byte, 0, len(info)+1+len(salt)+4)
	fixed = append(fixed, info...)
	fixed = append(fixed, 0)
	fixed = append(fixed, salt...)
	fixed = binary.BigEndian.AppendUint32(fixed, kdfLen*8)
	return counterKDF(z, fixed, kdfLen)
}

// counterKDF is SP 800-108 KDF in counter mode with HMAC-SHA384: n bytes
// of HMAC(key, i ‖ fixed) for i = 1, 2, … as a 4-byte big-endian counter
// placed before the fixed input.
func counterKDF(key, fixed []byte, n int) []byte {
	mac := hmac.New(sha512.New384, key)
	out := make([]byte, 0, n+sha512.Size384)
	for i := uint32(1); len(out) < n; i++ {
		mac.Reset()
		mac.Write(binary.BigEndian.AppendUint32(nil, i))
		mac.Write(fixed)
		out = mac.Sum(out)
	}
	clear(out[n:cap(out)])
	return out[:n]
}

// Wrap wraps dataKey for the wrap that p describes, with shared secret z
// (the x-coordinate of the ECDH point, of the curve's length) and the
// encryption context ec, and returns the encrypted data key's ciphertext.
func Wrap(z []byte, p ProviderInfo, ec map[string]string, dataKey []byte) ([]byte, error) {
	salt := make([]byte, SaltLen)
	rand.Read(salt)
	return wrapWithSalt(z, p, ec, dataKey, salt)
}

// wrapWithSalt is Wrap with a given salt, for known-answer tests.
func wrapWithSalt(z []byte, p ProviderInfo, ec map[string]string, dataKey, salt []byte) ([]byte, error) {
	if len(z) != p.Curve.SecretLen() {
		return nil, fmt.Errorf("a %s shared secret is %d bytes, got %d", p.Curve, p.Curve.SecretLen(), len(z))
	}
	ecb, err := format.MarshalContext(ec)
	if err != nil {
		return nil, err
	}
	info := fixedInfo(p, ecb)
	okm := kdf(z, info, salt)
	defer clear(okm)
	aead := newGCM(okm[CommitmentLen:])
	out := make([]byte, 0, SaltLen+CommitmentLen+len(dataKey)+TagLen)
	out = append(out, salt...)
	out = append(out, okm[:CommitmentLen]...)
	return aead.Seal(out, make([]byte, aead.NonceSize()), dataKey, info), nil
}

// ErrCommitment is returned by [Unwrap] when the derived commitment key
// differs from the stored one: the shared secret, the keys or the
// encryption context differ from the wrap's.
var ErrCommitment = errors.New("the derived commitment key does not match the wrapped key's (another key pair, tampered public keys or another encryption context)")

// ErrOpen is returned by [Unwrap] when the wrapped data key fails to
// authenticate.
var ErrOpen = errors.New("the wrapped data key does not authenticate")

// Unwrap unwraps an ECDH encrypted data key's ciphertext of a keyLen-byte
// data key, with shared secret z, the parsed provider info p and the
// encryption context ec. The commitment key is compared in constant time
// before the data key is opened.
func Unwrap(z []byte, p ProviderInfo, ec map[string]string, ciphertext []byte, keyLen int) ([]byte, error) {
	if len(z) != p.Curve.SecretLen() {
		return nil, fmt.Errorf("a %s shared secret is %d bytes, got %d", p.Curve, p.Curve.SecretLen(), len(z))
	}
	if len(ciphertext) != SaltLen+CommitmentLen+keyLen+TagLen {
		return nil, fmt.Errorf("wrapped data key is %d bytes; with a %d-byte data key it is %d", len(ciphertext), keyLen, SaltLen+CommitmentLen+keyLen+TagLen)
	}
	ecb, err := format.MarshalContext(ec)
	if err != nil {
		return nil, err
	}
	salt := ciphertext[:SaltLen]
	commitment := ciphertext[SaltLen : SaltLen+CommitmentLen]
	info := fixedInfo(p, ecb)
	okm := kdf(z, info, salt)
	defer clear(okm)
	if subtle.ConstantTimeCompare(okm[:CommitmentLen], commitment) != 1 {
		return nil, ErrCommitment
	}
	aead := newGCM(okm[CommitmentLen:])
	dk, err := aead.Open(nil, make([]byte, aead.NonceSize()), ciphertext[SaltLen+CommitmentLen:], info)
	if err != nil {
		return nil, ErrOpen
	}
	return dk, nil
}

// newGCM returns AES-256-GCM with a 12-byte nonce and a 16-byte tag.
func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("ecdhwire: " + err.Error()) // the key is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("ecdhwire: " + err.Error())
	}
	return aead
}

// SharedSecret computes the raw ECDH shared secret of priv and pub, the
// x-coordinate of the shared point, as AWS KMS DeriveSharedSecret returns
// it.
func SharedSecret(priv *ecdh.PrivateKey, pub *ecdh.PublicKey) ([]byte, error) {
	return priv.ECDH(pub)
}
