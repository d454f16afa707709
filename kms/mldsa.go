package kms

import (
	"crypto/sha3"
	"crypto/subtle"
	"fmt"
	"io"

	"filippo.io/mldsa"
	"filippo.io/mldsa/mldsacrypto"
	mldsax509 "filippo.io/mldsa/x509"
)

// ML-DSA (FIPS 204) through filippo.io/mldsa: the Go standard library's
// implementation (crypto/mldsa from Go 1.27, which that module then
// wraps), the one Go implementation that signs an external μ.
//
// Signatures are made with the empty context string, as AWS KMS makes
// them, and deterministically (FIPS 204's deterministic variant, rnd = 0):
// a message (RAW) and its μ (EXTERNAL_MU) then give the same signature, and
// Verify of a μ is done by signing it again and comparing in constant time,
// since no Go implementation verifies from μ. That recognizes every
// signature this KMS makes; a signature of the same key made elsewhere
// (hedged) verifies with RAW, or offline with the public key.

// mldsaMuLen is the length of μ, the message representative ML-DSA signs.
const mldsaMuLen = 64

// mldsaKey is an ML-DSA-44, -65 or -87 private key.
type mldsaKey struct {
	priv *mldsa.PrivateKey
	spki []byte
}

var _ signer = (*mldsaKey)(nil)

func (k *mldsaKey) publicKey() []byte { return k.spki }

func (k *mldsaKey) sign(_ *signingAlgorithm, in signInput) ([]byte, error) {
	if in.mu {
		return k.priv.SignDeterministic(in.data, mldsacrypto.MLDSAMu)
	}
	return k.priv.SignDeterministic(in.data, nil)
}

func (k *mldsaKey) verify(alg *signingAlgorithm, in signInput, sig []byte) bool {
	if !in.mu {
		return mldsa.Verify(k.priv.PublicKey(), in.data, sig, nil) == nil
	}
	want, err := k.sign(alg, in)
	return err == nil && subtle.ConstantTimeCompare(want, sig) == 1
}

// ExternalMu returns μ, the 64-byte message representative ML-DSA signs
// (FIPS 204 section 6.2, with the empty context string AWS KMS signs
// with), of the message read from r until EOF, for the ML-DSA public key
// spki (a DER SubjectPublicKeyInfo, as GetPublicKey returns it): what Sign
// and Verify take with MessageType EXTERNAL_MU, to sign messages longer
// than 4096 bytes. The message is hashed as it is read.
func ExternalMu(spki []byte, r io.Reader) ([]byte, error) {
	key, err := mldsax509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("kms: not an ML-DSA public key: %v", err)
	}
	pub, ok := key.(*mldsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("kms: a %s public key, not an ML-DSA one", publicKeyKind(key))
	}
	tr := sha3.SumSHAKE256(pub.Bytes(), 64)
	h := sha3.NewSHAKE256()
	h.Write(tr)
	h.Write([]byte{0, 0}) // pure ML-DSA, empty context: 0 ‖ len(ctx) ‖ ctx
	if _, err := io.Copy(h, r); err != nil {
		return nil, err
	}
	mu := make([]byte, mldsaMuLen)
	h.Read(mu)
	return mu, nil
}
