package format

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/envelopekms/envelope/suite"
)

// PublicKeyContextKey is the encryption context key under which a signed
// message carries its verification key.
const PublicKeyContextKey = "aws-crypto-public-key"

// ReservedContextPrefix starts every context key that the format reserves
// for itself; callers may not use such keys.
const ReservedContextPrefix = "aws-crypto-"

// NewSigningKey returns a fresh signing key for a signed suite and its public
// key in the form stored in the encryption context: the compressed point,
// base64-encoded.
func NewSigningKey(s *suite.Suite) (*ecdsa.PrivateKey, string, error) {
	curve := s.Curve()
	if curve == nil {
		return nil, "", fmt.Errorf("format: suite %s is not signed", s.ID)
	}
	priv, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		return nil, "", err
	}
	pub, err := compressPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, "", err
	}
	return priv, base64.StdEncoding.EncodeToString(pub), nil
}

// compressPublicKey returns the SEC 1 compressed form of a public key.
func compressPublicKey(pub *ecdsa.PublicKey) ([]byte, error) {
	u, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, err
	}
	n := (len(u) - 1) / 2
	c := make([]byte, 1+n)
	c[0] = 0x02 | u[len(u)-1]&1
	copy(c[1:], u[1:1+n])
	return c, nil
}

// ParseVerificationKey decodes the public key a signed message carries in its
// encryption context.
func ParseVerificationKey(s *suite.Suite, encoded string) (*ecdsa.PublicKey, error) {
	curve := s.Curve()
	if curve == nil {
		return nil, fmt.Errorf("format: suite %s is not signed", s.ID)
	}
	c, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, malformed("the %s in the encryption context is not base64", PublicKeyContextKey)
	}
	x, y := elliptic.UnmarshalCompressed(curve, c)
	if x == nil {
		return nil, malformed("the %s in the encryption context is not a compressed %s point", PublicKeyContextKey, curve.Params().Name)
	}
	n := (curve.Params().BitSize + 7) / 8
	u := make([]byte, 1+2*n)
	u[0] = 0x04
	x.FillBytes(u[1 : 1+n])
	y.FillBytes(u[1+n:])
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, u)
	if err != nil {
		return nil, malformed("the %s in the encryption context is not a valid %s public key", PublicKeyContextKey, curve.Params().Name)
	}
	return pub, nil
}
