package kms

import (
	"crypto/sha256"
	"encoding/asn1"
	"errors"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ECDSA on secp256k1 (ECC_SECG_P256K1) through
// github.com/decred/dcrd/dcrec/secp256k1/v4: the standard library has no
// such curve. Signatures are DER (as AWS returns them) with RFC 6979
// nonces and a low S; any valid signature verifies, a high S included.
// The key encodings are the standard ones (RFC 5915 inside PKCS #8, and a
// SubjectPublicKeyInfo with id-ecPublicKey and the curve's OID), which
// crypto/x509 does not know for this curve: they are written and read
// here.

var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// secp256k1Key is a secp256k1 private key.
type secp256k1Key struct {
	priv *secp256k1.PrivateKey
	pub  *secp256k1.PublicKey
	spki []byte
}

var _ signer = (*secp256k1Key)(nil)

func (k *secp256k1Key) publicKey() []byte { return k.spki }

func (k *secp256k1Key) sign(_ *signingAlgorithm, in signInput) ([]byte, error) {
	if len(in.data) != sha256.Size {
		return nil, errBadSignature
	}
	return secpecdsa.Sign(k.priv, in.data).Serialize(), nil
}

func (k *secp256k1Key) verify(_ *signingAlgorithm, in signInput, sig []byte) bool {
	s, err := secpecdsa.ParseDERSignature(sig)
	return err == nil && s.Verify(in.data, k.pub)
}

func generateSecp256k1() ([]byte, error) {
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		return nil, err
	}
	defer priv.Zero()
	return marshalSecp256k1PKCS8(priv), nil
}

// marshalSecp256k1PKCS8 encodes a private key as PKCS #8 DER (RFC 5208)
// holding an ECPrivateKey (RFC 5915) with its public key.
func marshalSecp256k1PKCS8(priv *secp256k1.PrivateKey) []byte {
	scalar := priv.Key.Bytes()
	defer clear(scalar[:])
	var ec cryptobyte.Builder
	ec.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddASN1OctetString(scalar[:])
		b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			addBitString(b, priv.PubKey().SerializeUncompressed())
		})
	})
	inner := ec.BytesOrPanic()
	defer clear(inner)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		addSecp256k1Algorithm(b)
		b.AddASN1OctetString(inner)
	})
	return b.BytesOrPanic()
}

// marshalSecp256k1SPKI encodes a public key as a SubjectPublicKeyInfo with
// the uncompressed point, as AWS KMS returns it.
func marshalSecp256k1SPKI(pub *secp256k1.PublicKey) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addSecp256k1Algorithm(b)
		addBitString(b, pub.SerializeUncompressed())
	})
	return b.BytesOrPanic()
}

func addSecp256k1Algorithm(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidECPublicKey)
		b.AddASN1ObjectIdentifier(oidSecp256k1)
	})
}

func addBitString(b *cryptobyte.Builder, data []byte) {
	b.AddASN1(cbasn1.BIT_STRING, func(b *cryptobyte.Builder) {
		b.AddUint8(0) // no unused bits
		b.AddBytes(data)
	})
}

var errSecp256k1Encoding = errors.New("not a DER-encoded secp256k1 private key (PKCS #8 holding an RFC 5915 ECPrivateKey)")

// parseSecp256k1PKCS8 parses what marshalSecp256k1PKCS8 writes, and the
// other valid forms of it: the curve's parameters and the public key are
// optional in the ECPrivateKey, and checked when present.
func parseSecp256k1PKCS8(der []byte) (*secp256k1Key, error) {
	in := cryptobyte.String(der)
	var info, alg, inner cryptobyte.String
	var version int64
	var oid, curve asn1.ObjectIdentifier
	if !in.ReadASN1(&info, cbasn1.SEQUENCE) || !in.Empty() ||
		!info.ReadASN1Integer(&version) || version != 0 ||
		!info.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidECPublicKey) ||
		!alg.ReadASN1ObjectIdentifier(&curve) || !curve.Equal(oidSecp256k1) || !alg.Empty() ||
		!info.ReadASN1(&inner, cbasn1.OCTET_STRING) {
		return nil, errSecp256k1Encoding
	}
	// Attributes and a public key may follow in info (RFC 5958): ignored.
	var ec, scalar cryptobyte.String
	if !inner.ReadASN1(&ec, cbasn1.SEQUENCE) || !inner.Empty() ||
		!ec.ReadASN1Integer(&version) || version != 1 ||
		!ec.ReadASN1(&scalar, cbasn1.OCTET_STRING) || len(scalar) != 32 {
		return nil, errSecp256k1Encoding
	}
	var params, pubField cryptobyte.String
	var hasParams, hasPub bool
	if !ec.ReadOptionalASN1(&params, &hasParams, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!ec.ReadOptionalASN1(&pubField, &hasPub, cbasn1.Tag(1).Constructed().ContextSpecific()) || !ec.Empty() {
		return nil, errSecp256k1Encoding
	}
	if hasParams && (!params.ReadASN1ObjectIdentifier(&curve) || !curve.Equal(oidSecp256k1) || !params.Empty()) {
		return nil, errSecp256k1Encoding
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(scalar); overflow || s.IsZero() {
		return nil, errors.New("the secp256k1 private key is out of range")
	}
	priv := secp256k1.NewPrivateKey(&s)
	pub := priv.PubKey()
	if hasPub {
		var bits asn1.BitString
		if !pubField.ReadASN1BitString(&bits) || bits.BitLength%8 != 0 || !pubField.Empty() {
			return nil, errSecp256k1Encoding
		}
		given, err := secp256k1.ParsePubKey(bits.Bytes)
		if err != nil || !given.IsEqual(pub) {
			return nil, errors.New("the secp256k1 private key's public key does not match it")
		}
	}
	return &secp256k1Key{priv: priv, pub: pub, spki: marshalSecp256k1SPKI(pub)}, nil
}

// parseSecp256k1SPKI parses a SubjectPublicKeyInfo of a secp256k1 key (the
// point compressed or not).
func parseSecp256k1SPKI(der []byte) (*secp256k1.PublicKey, error) {
	in := cryptobyte.String(der)
	var spki, alg cryptobyte.String
	var oid, curve asn1.ObjectIdentifier
	var bits asn1.BitString
	if !in.ReadASN1(&spki, cbasn1.SEQUENCE) || !in.Empty() ||
		!spki.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidECPublicKey) ||
		!alg.ReadASN1ObjectIdentifier(&curve) || !curve.Equal(oidSecp256k1) || !alg.Empty() ||
		!spki.ReadASN1BitString(&bits) || bits.BitLength%8 != 0 || !spki.Empty() {
		return nil, errors.New("not a DER-encoded secp256k1 SubjectPublicKeyInfo")
	}
	return secp256k1.ParsePubKey(bits.Bytes)
}
