package keyring

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	// The OAEP hashes must be linked in.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// Padding is an RSA encryption padding scheme for wrapping data keys.
type Padding int

// The RSA paddings of the ESDK's raw RSA keyring. OAEP uses the same hash for
// MGF1 and an empty label.
const (
	OAEPSHA256 Padding = iota
	OAEPSHA1
	OAEPSHA384
	OAEPSHA512
	// PKCS1 is PKCS #1 v1.5 encryption. It is read and written for
	// compatibility only: prefer OAEP. (Node 20 refuses to decrypt it
	// without --security-revert=CVE-2023-46809.)
	PKCS1
)

var paddingNames = [...]string{
	OAEPSHA256: "oaep-sha256",
	OAEPSHA1:   "oaep-sha1",
	OAEPSHA384: "oaep-sha384",
	OAEPSHA512: "oaep-sha512",
	PKCS1:      "pkcs1",
}

// String returns the padding's CLI name, such as "oaep-sha256".
func (p Padding) String() string {
	if p < 0 || int(p) >= len(paddingNames) {
		return fmt.Sprintf("Padding(%d)", int(p))
	}
	return paddingNames[p]
}

// ParsePadding parses a padding name: pkcs1, oaep-sha1, oaep-sha256,
// oaep-sha384 or oaep-sha512.
func ParsePadding(s string) (Padding, error) {
	p, err := parsePadding(s)
	if err != nil {
		return 0, fmt.Errorf("keyring: %w", err)
	}
	return p, nil
}

// parsePadding is ParsePadding without the "keyring: " prefix on errors.
func parsePadding(s string) (Padding, error) {
	for p, name := range paddingNames {
		if strings.EqualFold(s, name) {
			return Padding(p), nil
		}
	}
	return 0, fmt.Errorf("unknown RSA padding %q (want pkcs1, oaep-sha1, oaep-sha256, oaep-sha384 or oaep-sha512)", s)
}

func (p Padding) hash() crypto.Hash {
	switch p {
	case OAEPSHA1:
		return crypto.SHA1
	case OAEPSHA256:
		return crypto.SHA256
	case OAEPSHA384:
		return crypto.SHA384
	case OAEPSHA512:
		return crypto.SHA512
	}
	return 0
}

// MinRSABits is the smallest RSA modulus accepted for wrapping data keys.
const MinRSABits = 2048

// RawRSA wraps data keys with an RSA key held by the caller: the public key
// wraps, the private key unwraps. Unlike [RawAES] it does not bind the
// encryption context; the message's header tag still does.
type RawRSA struct {
	namespace, name string
	padding         Padding
	pub             *rsa.PublicKey
	priv            *rsa.PrivateKey
}

var _ Keyring = (*RawRSA)(nil)

// NewRawRSA returns a keyring for an RSA key known as name within namespace.
// A public key alone can only encrypt; a private key can do both.
func NewRawRSA(namespace, name string, padding Padding, pub *rsa.PublicKey, priv *rsa.PrivateKey) (*RawRSA, error) {
	k, err := newRawRSA(namespace, name, padding, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return k, nil
}

// newRawRSA is NewRawRSA without the "keyring: " prefix on errors.
func newRawRSA(namespace, name string, padding Padding, pub *rsa.PublicKey, priv *rsa.PrivateKey) (*RawRSA, error) {
	if err := checkNames(namespace, name); err != nil {
		return nil, err
	}
	if padding < 0 || int(padding) >= len(paddingNames) {
		return nil, fmt.Errorf("unknown RSA padding %d", padding)
	}
	if pub == nil && priv != nil {
		pub = &priv.PublicKey
	}
	if pub == nil {
		return nil, errors.New("a raw RSA keyring needs a public or a private key")
	}
	if bits := pub.N.BitLen(); bits < MinRSABits {
		return nil, fmt.Errorf("RSA key of %d bits is too small; use at least %d", bits, MinRSABits)
	}
	if priv != nil && !priv.PublicKey.Equal(pub) {
		return nil, errors.New("the RSA public and private keys do not match")
	}
	return &RawRSA{namespace: namespace, name: name, padding: padding, pub: pub, priv: priv}, nil
}

// ParseRSAKey parses a PEM RSA key: a private key in PKCS #8 or PKCS #1
// form, or a public key in SPKI or PKCS #1 form. The DER inside is
// recognised by its content, whatever the PEM label says, as the other
// ESDKs do: their examples write SPKI public keys labelled "RSA PUBLIC KEY"
// and PKCS #8 private keys labelled "RSA PRIVATE KEY". A private label must
// hold a private key and a public label a public key. Exactly one of pub
// and priv is non-nil.
func ParseRSAKey(pemBytes []byte) (pub *rsa.PublicKey, priv *rsa.PrivateKey, err error) {
	if pub, priv, err = parseRSAKey(pemBytes); err != nil {
		return nil, nil, fmt.Errorf("keyring: %w", err)
	}
	return pub, priv, nil
}

// parseRSAKey is ParseRSAKey without the "keyring: " prefix on errors.
func parseRSAKey(pemBytes []byte) (pub *rsa.PublicKey, priv *rsa.PrivateKey, err error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, nil, errors.New("no PEM block found; want an RSA key in PEM form")
	}
	var private bool
	switch block.Type {
	case "PRIVATE KEY", "RSA PRIVATE KEY":
		private = true
	case "PUBLIC KEY", "RSA PUBLIC KEY":
	default:
		return nil, nil, fmt.Errorf("PEM block of type %q is not an RSA key", block.Type)
	}
	var key any
	if private {
		if key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			if k, err1 := x509.ParsePKCS1PrivateKey(block.Bytes); err1 == nil {
				key, err = k, nil
			}
		}
	} else {
		if key, err = x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			if k, err1 := x509.ParsePKCS1PublicKey(block.Bytes); err1 == nil {
				key, err = k, nil
			}
		}
	}
	if err != nil {
		form := "SPKI nor a PKCS #1 public key"
		if private {
			form = "PKCS #8 nor a PKCS #1 private key"
		}
		return nil, nil, fmt.Errorf("parsing %s: holds neither an %s", block.Type, form)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return nil, k, nil
	case *rsa.PublicKey:
		return k, nil, nil
	}
	return nil, nil, fmt.Errorf("the %s is a %T, not an RSA key", block.Type, key)
}

// String describes the keyring by namespace, name and padding.
func (k *RawRSA) String() string {
	return fmt.Sprintf("raw RSA key namespace=%q name=%q padding=%s", k.namespace, k.name, k.padding)
}

// OnEncrypt implements [Keyring].
func (k *RawRSA) OnEncrypt(_ context.Context, m *EncryptionMaterials) error {
	if m.DataKey == nil {
		m.DataKey = make([]byte, m.Suite.KeyLength)
		rand.Read(m.DataKey)
	}
	var ct []byte
	var err error
	if k.padding == PKCS1 {
		//lint:ignore SA1019 PKCS #1 v1.5 is one of the ESDK's raw RSA paddings; it is kept for interoperability.
		ct, err = rsa.EncryptPKCS1v15(rand.Reader, k.pub, m.DataKey)
	} else {
		ct, err = rsa.EncryptOAEP(k.padding.hash().New(), rand.Reader, k.pub, m.DataKey, nil)
	}
	if err != nil {
		return fmt.Errorf("keyring: %s: wrapping the data key: %v", k, err)
	}
	m.EncryptedDataKeys = append(m.EncryptedDataKeys, EncryptedDataKey{
		ProviderID:   k.namespace,
		ProviderInfo: []byte(k.name),
		Ciphertext:   ct,
	})
	return nil
}

// OnDecrypt implements [Keyring].
func (k *RawRSA) OnDecrypt(_ context.Context, m *DecryptionMaterials, edks []EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	if k.priv == nil {
		err := fmt.Errorf("%s: only a public key was given; decryption needs the private key", k)
		return &UnwrapError{Keys: edks, Tried: []string{k.String()}, Errs: []error{err}}
	}
	mine := func(edk EncryptedDataKey) bool {
		return edk.ProviderID == k.namespace && string(edk.ProviderInfo) == k.name
	}
	open := func(edk EncryptedDataKey) ([]byte, error) {
		if k.padding == PKCS1 {
			//lint:ignore SA1019 PKCS #1 v1.5 is one of the ESDK's raw RSA paddings; it is kept for interoperability.
			return rsa.DecryptPKCS1v15(nil, k.priv, edk.Ciphertext)
		}
		return rsa.DecryptOAEP(k.padding.hash().New(), nil, k.priv, edk.Ciphertext, nil)
	}
	return unwrapOwn(k.String(), m, edks, mine, open,
		"the data key wrapped under this name does not decrypt with this key and padding")
}
