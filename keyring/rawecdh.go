package keyring

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/envelopekms/envelope/keyring/internal/ecdhwire"
)

// ECDHProviderID is the provider id of the encrypted data keys that
// [RawECDH] writes. It reads those of the KMS ECDH keyring too
// ("aws-kms-ecdh"), which have the same form.
const ECDHProviderID = ecdhwire.RawProviderID

// ECDHMode is the key agreement schema of a [RawECDH] keyring.
type ECDHMode int

// The key agreement schemas of the ESDK's raw ECDH keyring.
const (
	// ECDHStatic (RawPrivateKeyToStaticPublicKey) agrees the sender's
	// static private key with the recipient's public key. It encrypts, and
	// decrypts the messages between the two key pairs, either way round.
	ECDHStatic ECDHMode = iota + 1
	// ECDHEphemeral (EphemeralPrivateKeyToStaticPublicKey) makes a fresh
	// key pair for every message. It only encrypts: only the recipient's
	// private key can read what it wrote.
	ECDHEphemeral
	// ECDHDiscovery (PublicKeyDiscovery) decrypts, with the recipient's
	// private key, whatever was wrapped for its public key, whoever the
	// sender. It cannot encrypt.
	ECDHDiscovery
)

var ecdhModeNames = [...]string{ECDHStatic: "static", ECDHEphemeral: "ephemeral", ECDHDiscovery: "discovery"}

// String returns "static", "ephemeral" or "discovery".
func (m ECDHMode) String() string {
	if m < ECDHStatic || m > ECDHDiscovery {
		return fmt.Sprintf("ECDHMode(%d)", int(m))
	}
	return ecdhModeNames[m]
}

// RawECDH is the ESDK's raw ECDH keyring, on NIST P-256, P-384 or P-521:
// the data key is wrapped under a key derived from the ECDH shared secret of
// a sender's private key and a recipient's public key, bound to both public
// keys and to the encryption context. Its encrypted data keys (provider
// "raw-ecdh") name no key: they carry the two public keys, compressed.
// Messages move between envelope and the official SDKs' raw and KMS ECDH
// keyrings.
type RawECDH struct {
	mode  ECDHMode
	curve ecdhwire.Curve
	// priv is the sender's key (static) or the recipient's (discovery).
	priv *ecdh.PrivateKey
	// self is priv's public key compressed, peer the recipient's
	// (static, ephemeral) compressed; either may be nil.
	self, peer []byte
	peerKey    *ecdh.PublicKey
}

var _ Keyring = (*RawECDH)(nil)

// NewRawECDH returns a static keyring (RawPrivateKeyToStaticPublicKey):
// the sender's private key priv and the recipient's public key recipient,
// on the same curve. It encrypts from priv to recipient, and decrypts what
// priv's owner sent to recipient or recipient's owner sent to priv's.
func NewRawECDH(priv *ecdh.PrivateKey, recipient *ecdh.PublicKey) (*RawECDH, error) {
	k, err := newRawECDH(ECDHStatic, priv, recipient)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return k, nil
}

// NewEphemeralECDH returns a keyring that encrypts to recipient with a
// fresh sender key pair each time (EphemeralPrivateKeyToStaticPublicKey).
// It cannot decrypt.
func NewEphemeralECDH(recipient *ecdh.PublicKey) (*RawECDH, error) {
	k, err := newRawECDH(ECDHEphemeral, nil, recipient)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return k, nil
}

// NewDiscoveryECDH returns a keyring that decrypts whatever was wrapped
// for priv's public key, by any sender (PublicKeyDiscovery). It cannot
// encrypt. Its messages prove nothing about who sent them.
func NewDiscoveryECDH(priv *ecdh.PrivateKey) (*RawECDH, error) {
	k, err := newRawECDH(ECDHDiscovery, priv, nil)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return k, nil
}

// newRawECDH checks the keys a mode needs and makes the keyring.
func newRawECDH(mode ECDHMode, priv *ecdh.PrivateKey, recipient *ecdh.PublicKey) (*RawECDH, error) {
	k := &RawECDH{mode: mode, priv: priv, peerKey: recipient}
	if (mode == ECDHEphemeral) != (priv == nil) {
		return nil, fmt.Errorf("the %s ECDH keyring needs a private key", mode)
	}
	if (mode == ECDHDiscovery) != (recipient == nil) {
		return nil, fmt.Errorf("the %s ECDH keyring needs the recipient's public key", mode)
	}
	var c ecdh.Curve
	if priv != nil {
		c = priv.Curve()
	} else {
		c = recipient.Curve()
	}
	curve, ok := ecdhwire.CurveOf(c)
	if !ok {
		return nil, fmt.Errorf("ECDH keys on %v are not allowed; use P-256, P-384 or P-521", c)
	}
	k.curve = curve
	if priv != nil {
		k.self = ecdhwire.Compress(priv.PublicKey())
	}
	if recipient != nil {
		if recipient.Curve() != c {
			other, _ := ecdhwire.CurveOf(recipient.Curve())
			return nil, fmt.Errorf("the private key is on %s and the recipient's public key on %s; they must share a curve", curve, other)
		}
		k.peer = ecdhwire.Compress(recipient)
	}
	return k, nil
}

// Mode returns the keyring's key agreement schema.
func (k *RawECDH) Mode() ECDHMode { return k.mode }

// String describes the keyring by mode, curve and keys (the start of each
// public key's x-coordinate, as [EncryptedDataKey.String] shows them).
func (k *RawECDH) String() string {
	switch k.mode {
	case ECDHStatic:
		return fmt.Sprintf("raw ECDH %s key %s with %s", k.curve, ecdhwire.Fingerprint(k.self), ecdhwire.Fingerprint(k.peer))
	case ECDHEphemeral:
		return fmt.Sprintf("raw ECDH %s recipient %s (ephemeral sender)", k.curve, ecdhwire.Fingerprint(k.peer))
	}
	return fmt.Sprintf("raw ECDH %s key %s (discovery)", k.curve, ecdhwire.Fingerprint(k.self))
}

// OnEncrypt implements [Keyring].
func (k *RawECDH) OnEncrypt(_ context.Context, m *EncryptionMaterials) error {
	if k.mode == ECDHDiscovery {
		return fmt.Errorf("keyring: %s cannot encrypt; give the recipient's public key", k)
	}
	priv := k.priv
	if k.mode == ECDHEphemeral {
		var err error
		if priv, err = k.curve.ECDH().GenerateKey(rand.Reader); err != nil {
			return fmt.Errorf("keyring: %s: %v", k, err)
		}
	}
	z, err := priv.ECDH(k.peerKey)
	if err != nil {
		return fmt.Errorf("keyring: %s: %v", k, err)
	}
	defer clear(z)
	info := ecdhwire.ProviderInfo{Curve: k.curve, Sender: ecdhwire.Compress(priv.PublicKey()), Recipient: k.peer}
	dk := m.DataKey
	if dk == nil {
		dk = make([]byte, m.Suite.KeyLength)
		rand.Read(dk)
	}
	ct, err := ecdhwire.Wrap(z, info, m.Context, dk)
	if err != nil {
		if m.DataKey == nil {
			clear(dk)
		}
		return fmt.Errorf("keyring: %s: %v", k, err)
	}
	m.DataKey = dk
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, EncryptedDataKey{
		ProviderID: ECDHProviderID, ProviderInfo: info.Marshal(), Ciphertext: ct,
	})
	return nil
}

// OnDecrypt implements [Keyring]. It tries the "raw-ecdh" and
// "aws-kms-ecdh" keys whose public keys are the keyring's: in static mode,
// its two keys, either as sender or as recipient; in discovery mode, its
// key as the recipient.
func (k *RawECDH) OnDecrypt(_ context.Context, m *DecryptionMaterials, edks []EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	if k.mode == ECDHEphemeral {
		err := fmt.Errorf("%s: an ephemeral sender keeps no private key and cannot decrypt; give the recipient's private key", k)
		return &UnwrapError{Keys: edks, Tried: []string{k.String()}, Errs: []error{err}}
	}
	mine := func(edk EncryptedDataKey) bool {
		if !ecdhwire.IsECDH(edk.ProviderID) {
			return false
		}
		p, err := ecdhwire.ParseProviderInfo(edk.ProviderInfo)
		if err != nil || p.Curve != k.curve {
			return false
		}
		if k.mode == ECDHDiscovery {
			return bytes.Equal(p.Recipient, k.self)
		}
		return bytes.Equal(p.Sender, k.self) && bytes.Equal(p.Recipient, k.peer) ||
			bytes.Equal(p.Sender, k.peer) && bytes.Equal(p.Recipient, k.self)
	}
	open := func(edk EncryptedDataKey) ([]byte, error) {
		p, err := ecdhwire.ParseProviderInfo(edk.ProviderInfo)
		if err != nil {
			return nil, err
		}
		// Static: the peer is the configured recipient, whichever side of
		// the message it stands on. Discovery: the message's sender.
		peer := k.peerKey
		if k.mode == ECDHDiscovery {
			if peer, err = ecdhwire.Decompress(k.curve, p.Sender); err != nil {
				return nil, err
			}
		}
		z, err := k.priv.ECDH(peer)
		if err != nil {
			return nil, err
		}
		defer clear(z)
		return ecdhwire.Unwrap(z, p, m.Context, edk.Ciphertext, m.Suite.KeyLength)
	}
	return unwrapOwn(k.String(), m, edks, mine, open,
		"the data key wrapped for these public keys does not unwrap (another key pair, a tampered sender key or wrapped key, or another encryption context)")
}

// ParseECDHPrivateKey parses a PEM elliptic curve private key on P-256,
// P-384 or P-521: PKCS #8 ("PRIVATE KEY", the specification's form) or
// SEC 1 ("EC PRIVATE KEY", what openssl ecparam writes).
func ParseECDHPrivateKey(pemBytes []byte) (*ecdh.PrivateKey, error) {
	k, err := parseECDHPrivateKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return k, nil
}

func parseECDHPrivateKey(pemBytes []byte) (*ecdh.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found; want an EC private key in PEM form (PKCS #8)")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PUBLIC KEY":
		return nil, errors.New("holds a public key; this needs the private key")
	default:
		return nil, fmt.Errorf("PEM block of type %q is not an EC private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: not an EC private key", block.Type)
	}
	return toECDHPrivate(key)
}

func toECDHPrivate(key any) (*ecdh.PrivateKey, error) {
	var k *ecdh.PrivateKey
	switch key := key.(type) {
	case *ecdsa.PrivateKey:
		var err error
		if k, err = key.ECDH(); err != nil {
			return nil, fmt.Errorf("EC key: %v", err)
		}
	case *ecdh.PrivateKey:
		k = key
	default:
		return nil, fmt.Errorf("holds a %s key, not an EC key", keyKind(key))
	}
	if _, ok := ecdhwire.CurveOf(k.Curve()); !ok {
		return nil, errors.New("holds an X25519 key; ECDH keyrings use P-256, P-384 or P-521")
	}
	return k, nil
}

// ParseECDHPublicKey parses an elliptic curve public key on P-256, P-384
// or P-521: an SPKI in PEM ("PUBLIC KEY") or DER, as the specification and
// AWS KMS GetPublicKey give it.
func ParseECDHPublicKey(data []byte) (*ecdh.PublicKey, error) {
	k, err := parseECDHPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return k, nil
}

func parseECDHPublicKey(data []byte) (*ecdh.PublicKey, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		switch block.Type {
		case "PUBLIC KEY":
		case "PRIVATE KEY", "EC PRIVATE KEY":
			return nil, errors.New("holds a private key; give the peer's public key (\"envelope keygen ecdh --public-out\" writes one)")
		default:
			return nil, fmt.Errorf("PEM block of type %q is not a public key", block.Type)
		}
		der = block.Bytes
	} else if bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, errors.New("the PEM block is damaged")
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errors.New("not an EC public key in SPKI form (PEM or DER)")
	}
	var k *ecdh.PublicKey
	switch key := key.(type) {
	case *ecdsa.PublicKey:
		if k, err = key.ECDH(); err != nil {
			return nil, fmt.Errorf("EC key: %v", err)
		}
	case *ecdh.PublicKey:
		k = key
	default:
		return nil, fmt.Errorf("holds a %s public key, not an EC key", keyKind(key))
	}
	if _, ok := ecdhwire.CurveOf(k.Curve()); !ok {
		return nil, errors.New("holds an X25519 key; ECDH keyrings use P-256, P-384 or P-521")
	}
	return k, nil
}

// keyKind names the algorithm of a parsed key for an error.
func keyKind(key any) string {
	switch key.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "RSA"
	case ed25519.PublicKey, ed25519.PrivateKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", key)
}

// ParseECDHCurve returns the curve named s: "P-256", "P-384" or "P-521",
// or their AWS KMS key specs ("ECC_NIST_P256" …), in any case.
func ParseECDHCurve(s string) (ecdh.Curve, error) {
	c, err := ecdhwire.ParseCurve(s)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return c.ECDH(), nil
}
