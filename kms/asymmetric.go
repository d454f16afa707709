package kms

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"filippo.io/mldsa"
	mldsax509 "filippo.io/mldsa/x509"
)

// The private keys of asymmetric keys, parsed from their stored form (PKCS
// #8 DER) once and kept by the key cache. One type per family; the
// operations see them only through the small interfaces below, so that
// Sign, Verify, DeriveSharedSecret and GetPublicKey never branch on the
// library behind a family.

// privateKey is the parsed private key of an asymmetric key. It is never
// changed once parsed, and is safe for concurrent use.
type privateKey interface {
	// publicKey returns the public key as a DER SubjectPublicKeyInfo, the
	// form GetPublicKey returns.
	publicKey() []byte
}

// signer is a private key that signs: ECDSA on the NIST curves, ECDSA on
// secp256k1, Ed25519, RSA and ML-DSA each implement it.
type signer interface {
	privateKey
	// sign signs in (see signInput) with alg, one of the key's signing
	// algorithms.
	sign(alg *signingAlgorithm, in signInput) ([]byte, error)
	// verify reports whether sig is a valid signature of in with alg.
	verify(alg *signingAlgorithm, in signInput, sig []byte) bool
}

// agreer is a private key that derives ECDH shared secrets (the NIST
// curves).
type agreer interface {
	privateKey
	// agree returns the raw shared secret (the x-coordinate) with the
	// peer's public key, a DER SubjectPublicKeyInfo; its error says why
	// the public key cannot be used, without quoting it.
	agree(peer []byte) ([]byte, error)
}

// generatePrivateKey makes a key pair of the asymmetric spec name and
// returns its private key as PKCS #8 DER.
func generatePrivateKey(name string) ([]byte, error) {
	ks := keySpecs[name]
	if ks == nil {
		return nil, fmt.Errorf("kms: no key spec %q", name)
	}
	var key any
	var err error
	switch ks.family {
	case familyRSA:
		key, err = rsa.GenerateKey(rand.Reader, ks.rsaBits)
	case familyNIST:
		key, err = ecdsa.GenerateKey(nistCurve(name), rand.Reader)
	case familySecp256k1:
		return generateSecp256k1()
	case familyEd25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case familyMLDSA:
		key, err = mldsa.GenerateKey(mldsaParameters(name))
	default:
		return nil, fmt.Errorf("kms: key spec %s has no key pair", name)
	}
	if err != nil {
		return nil, err
	}
	return mldsax509.MarshalPKCS8PrivateKey(key) // the standard library's, for all but ML-DSA
}

// parsePrivateKey parses the stored private key (PKCS #8 DER) of a key of
// spec ks, and checks it is of that spec.
func parsePrivateKey(ks *keySpec, der []byte) (privateKey, error) {
	if ks.family == familySecp256k1 {
		return parseSecp256k1PKCS8(der)
	}
	key, err := mldsax509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	var pk privateKey
	var pub any
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if ks.family != familyRSA || k.N.BitLen() != ks.rsaBits {
			break
		}
		pk, pub = &rsaKey{priv: k}, &k.PublicKey
	case *ecdsa.PrivateKey:
		if ks.family != familyNIST || k.Curve != nistCurve(ks.name) {
			break
		}
		e, err := k.ECDH()
		if err != nil {
			return nil, err
		}
		pk, pub = &nistKey{priv: k, ecdh: e}, &k.PublicKey
	case ed25519.PrivateKey:
		if ks.family != familyEd25519 {
			break
		}
		pk, pub = &ed25519Key{priv: k}, k.Public()
	case *mldsa.PrivateKey:
		if ks.family != familyMLDSA || k.PublicKey().Parameters() != mldsaParameters(ks.name) {
			break
		}
		pk, pub = &mldsaKey{priv: k}, k.PublicKey()
	}
	if pk == nil {
		return nil, fmt.Errorf("the stored private key is not a %s key", ks.name)
	}
	spki, err := mldsax509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	switch k := pk.(type) {
	case *rsaKey:
		k.spki = spki
	case *nistKey:
		k.spki = spki
	case *ed25519Key:
		k.spki = spki
	case *mldsaKey:
		k.spki = spki
	}
	return pk, nil
}

func nistCurve(spec string) elliptic.Curve {
	switch spec {
	case SpecECCNISTP256:
		return elliptic.P256()
	case SpecECCNISTP384:
		return elliptic.P384()
	case SpecECCNISTP521:
		return elliptic.P521()
	}
	return nil
}

func mldsaParameters(spec string) mldsa.Parameters {
	switch spec {
	case SpecMLDSA44:
		return mldsa.MLDSA44()
	case SpecMLDSA65:
		return mldsa.MLDSA65()
	}
	return mldsa.MLDSA87()
}

// errBadSignature is what a signer's sign returns for input it cannot
// sign; the operations check lengths before, so it means a bug.
var errBadSignature = errors.New("kms: cannot sign this input")

// --- RSA ---------------------------------------------------------------------

// rsaKey is an RSA private key (encryption or signing).
type rsaKey struct {
	priv *rsa.PrivateKey
	spki []byte
}

var _ signer = (*rsaKey)(nil)

func (k *rsaKey) publicKey() []byte { return k.spki }

// pssOptions: AWS's RSASSA-PSS uses MGF1 with the message hash and a salt as
// long as the hash.
var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}

func (k *rsaKey) sign(alg *signingAlgorithm, in signInput) ([]byte, error) {
	if alg.pss {
		return rsa.SignPSS(rand.Reader, k.priv, alg.hash, in.data, pssOptions)
	}
	return rsa.SignPKCS1v15(nil, k.priv, alg.hash, in.data)
}

func (k *rsaKey) verify(alg *signingAlgorithm, in signInput, sig []byte) bool {
	if alg.pss {
		return rsa.VerifyPSS(&k.priv.PublicKey, alg.hash, in.data, sig, pssOptions) == nil
	}
	return rsa.VerifyPKCS1v15(&k.priv.PublicKey, alg.hash, in.data, sig) == nil
}

// --- ECDSA and ECDH on the NIST curves ----------------------------------------

// nistKey is a P-256, P-384 or P-521 private key: ECDSA signatures (DER,
// as AWS returns them) or ECDH.
type nistKey struct {
	priv *ecdsa.PrivateKey
	ecdh *ecdh.PrivateKey
	spki []byte
}

var (
	_ signer = (*nistKey)(nil)
	_ agreer = (*nistKey)(nil)
)

func (k *nistKey) publicKey() []byte { return k.spki }

func (k *nistKey) sign(_ *signingAlgorithm, in signInput) ([]byte, error) {
	return ecdsa.SignASN1(rand.Reader, k.priv, in.data)
}

func (k *nistKey) verify(_ *signingAlgorithm, in signInput, sig []byte) bool {
	return ecdsa.VerifyASN1(&k.priv.PublicKey, in.data, sig)
}

func (k *nistKey) agree(peer []byte) ([]byte, error) {
	pub, err := x509.ParsePKIXPublicKey(peer)
	if err != nil {
		return nil, errors.New("PublicKey is not a DER-encoded SubjectPublicKeyInfo of an elliptic curve key")
	}
	ep, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("PublicKey is a %s key, not an elliptic curve key", publicKeyKind(pub))
	}
	if ep.Curve != k.priv.Curve {
		return nil, fmt.Errorf("PublicKey is on curve %s; this key is on %s: both must be on the same curve", ep.Curve.Params().Name, k.priv.Curve.Params().Name)
	}
	e, err := ep.ECDH()
	if err != nil {
		return nil, errors.New("PublicKey is not a valid point of its curve")
	}
	return k.ecdh.ECDH(e)
}

func publicKeyKind(pub any) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case ed25519.PublicKey:
		return "Ed25519"
	case *ecdh.PublicKey:
		return "X25519"
	}
	return fmt.Sprintf("%T", pub)
}

// --- Ed25519 -----------------------------------------------------------------

// ed25519Key is an Ed25519 private key: pure Ed25519 (ED25519_SHA_512) of
// the message, or Ed25519ph (ED25519_PH_SHA_512) of a SHA-512 digest.
type ed25519Key struct {
	priv ed25519.PrivateKey
	spki []byte
}

var _ signer = (*ed25519Key)(nil)

func (k *ed25519Key) publicKey() []byte { return k.spki }

func (k *ed25519Key) options(alg *signingAlgorithm) *ed25519.Options {
	if alg.name == AlgEd25519PHSHA512 {
		return &ed25519.Options{Hash: crypto.SHA512}
	}
	return &ed25519.Options{}
}

func (k *ed25519Key) sign(alg *signingAlgorithm, in signInput) ([]byte, error) {
	return k.priv.Sign(nil, in.data, k.options(alg))
}

func (k *ed25519Key) verify(alg *signingAlgorithm, in signInput, sig []byte) bool {
	return ed25519.VerifyWithOptions(k.priv.Public().(ed25519.PublicKey), in.data, sig, k.options(alg)) == nil
}
