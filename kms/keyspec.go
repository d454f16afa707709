package kms

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"slices"
	"strings"
)

// Key specs, key usages and encryption algorithms, as AWS KMS names them.
const (
	SpecSymmetricDefault = "SYMMETRIC_DEFAULT"
	SpecRSA2048          = "RSA_2048"
	SpecRSA3072          = "RSA_3072"
	SpecRSA4096          = "RSA_4096"

	UsageEncryptDecrypt = "ENCRYPT_DECRYPT"

	AlgSymmetricDefault = "SYMMETRIC_DEFAULT"
	AlgRSAOAEPSHA1      = "RSAES_OAEP_SHA_1"
	AlgRSAOAEPSHA256    = "RSAES_OAEP_SHA_256"
)

// keySpec describes what a key spec is and how its material is made. New
// specs (a post-quantum hybrid, say) slot in as a new entry with their own
// encrypt and decrypt paths keyed on the spec.
type keySpec struct {
	name      string
	symmetric bool
	rsaBits   int
	// algorithms are the encryption algorithms the key supports.
	algorithms []string
	// generate returns fresh key material in its stored form (32 random
	// bytes; PKCS #8 DER for RSA).
	generate func() ([]byte, error)
}

var keySpecs = map[string]*keySpec{
	SpecSymmetricDefault: {name: SpecSymmetricDefault, symmetric: true, algorithms: []string{AlgSymmetricDefault},
		generate: func() ([]byte, error) { b := make([]byte, 32); rand.Read(b); return b, nil }},
	SpecRSA2048: rsaSpec(SpecRSA2048, 2048),
	SpecRSA3072: rsaSpec(SpecRSA3072, 3072),
	SpecRSA4096: rsaSpec(SpecRSA4096, 4096),
}

func rsaSpec(name string, bits int) *keySpec {
	return &keySpec{name: name, rsaBits: bits, algorithms: []string{AlgRSAOAEPSHA1, AlgRSAOAEPSHA256},
		generate: func() ([]byte, error) {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				return nil, err
			}
			return x509.MarshalPKCS8PrivateKey(k)
		}}
}

// rsaMaxPlaintext returns the largest plaintext RSAES-OAEP can encrypt with
// a modulus of bits and the given hash length.
func rsaMaxPlaintext(bits, hashLen int) int { return bits/8 - 2*hashLen - 2 }

// The values of AWS's enums: a value outside them is a ValidationException;
// a value inside them that this KMS does not implement is an
// UnsupportedOperationException.
var (
	awsKeySpecs = []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
		"ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512", "SM2",
		"ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ECC_NIST_EDWARDS25519"}
	awsKeyUsages           = []string{"SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"}
	awsEncryptionAlgorithm = []string{"SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"}
)

// checkAlgorithm refuses an EncryptionAlgorithm outside AWS's enum.
func checkAlgorithm(alg string) error {
	if alg != "" && !slices.Contains(awsEncryptionAlgorithm, alg) {
		return validationf("EncryptionAlgorithm %q is not one of %s", alg, strings.Join(awsEncryptionAlgorithm, ", "))
	}
	return nil
}
