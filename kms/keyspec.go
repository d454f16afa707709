package kms

import (
	"crypto"
	"crypto/rand"
	"slices"
	"strings"
)

// Key specs, key usages and algorithms, as AWS KMS names them.
const (
	SpecSymmetricDefault    = "SYMMETRIC_DEFAULT"
	SpecRSA2048             = "RSA_2048"
	SpecRSA3072             = "RSA_3072"
	SpecRSA4096             = "RSA_4096"
	SpecECCNISTP256         = "ECC_NIST_P256"
	SpecECCNISTP384         = "ECC_NIST_P384"
	SpecECCNISTP521         = "ECC_NIST_P521"
	SpecECCSECGP256K1       = "ECC_SECG_P256K1"
	SpecECCNISTEdwards25519 = "ECC_NIST_EDWARDS25519"
	SpecMLDSA44             = "ML_DSA_44"
	SpecMLDSA65             = "ML_DSA_65"
	SpecMLDSA87             = "ML_DSA_87"
	SpecHMAC224             = "HMAC_224"
	SpecHMAC256             = "HMAC_256"
	SpecHMAC384             = "HMAC_384"
	SpecHMAC512             = "HMAC_512"

	UsageEncryptDecrypt    = "ENCRYPT_DECRYPT"
	UsageSignVerify        = "SIGN_VERIFY"
	UsageGenerateVerifyMac = "GENERATE_VERIFY_MAC"
	UsageKeyAgreement      = "KEY_AGREEMENT"

	AlgSymmetricDefault = "SYMMETRIC_DEFAULT"
	AlgRSAOAEPSHA1      = "RSAES_OAEP_SHA_1"
	AlgRSAOAEPSHA256    = "RSAES_OAEP_SHA_256"

	AlgRSAPSSSHA256       = "RSASSA_PSS_SHA_256"
	AlgRSAPSSSHA384       = "RSASSA_PSS_SHA_384"
	AlgRSAPSSSHA512       = "RSASSA_PSS_SHA_512"
	AlgRSAPKCS1SHA256     = "RSASSA_PKCS1_V1_5_SHA_256"
	AlgRSAPKCS1SHA384     = "RSASSA_PKCS1_V1_5_SHA_384"
	AlgRSAPKCS1SHA512     = "RSASSA_PKCS1_V1_5_SHA_512"
	AlgECDSASHA256        = "ECDSA_SHA_256"
	AlgECDSASHA384        = "ECDSA_SHA_384"
	AlgECDSASHA512        = "ECDSA_SHA_512"
	AlgEd25519SHA512      = "ED25519_SHA_512"
	AlgEd25519PHSHA512    = "ED25519_PH_SHA_512"
	AlgMLDSASHAKE256      = "ML_DSA_SHAKE_256"
	AlgHMACSHA224         = "HMAC_SHA_224"
	AlgHMACSHA256         = "HMAC_SHA_256"
	AlgHMACSHA384         = "HMAC_SHA_384"
	AlgHMACSHA512         = "HMAC_SHA_512"
	AlgECDH               = "ECDH"
	MessageTypeRaw        = "RAW"
	MessageTypeDigest     = "DIGEST"
	MessageTypeExternalMu = "EXTERNAL_MU"
)

// family is a kind of key material: how it is made, stored and parsed, and
// which library implements its cryptography.
type family int

const (
	familySymmetric family = iota // 32 random bytes, AES-256-GCM blobs
	familyHMAC                    // random bytes of the spec's length
	familyRSA                     // PKCS #8, crypto/rsa
	familyNIST                    // PKCS #8, crypto/ecdsa and crypto/ecdh
	familySecp256k1               // PKCS #8, github.com/decred/dcrd/dcrec/secp256k1/v4
	familyEd25519                 // PKCS #8, crypto/ed25519
	familyMLDSA                   // PKCS #8 (seed form), filippo.io/mldsa
)

// keySpec describes a key spec: the usages AWS allows it and the
// algorithms of each, and how its material is made and stored. The
// operations read this table; a new spec is a new entry (and, for a new
// family, its parsed key type in asymmetric.go).
type keySpec struct {
	name   string
	family family
	// usages maps each key usage the spec allows to the algorithms the
	// key then supports (encryption, signing, MAC or key agreement
	// algorithms), in AWS's order.
	usages map[string][]string
	// usageOrder lists the usages in AWS's order (the first is the one
	// the CLI picks when none is given).
	usageOrder []string
	// rsaBits is the modulus size of RSA specs; hmacHash the hash of
	// HMAC specs, whose key is as long as its output.
	rsaBits  int
	hmacHash crypto.Hash
	// generate returns fresh key material in its stored form: 32 random
	// bytes (symmetric), the HMAC key's bytes, or a PKCS #8 DER private
	// key (asymmetric).
	generate func() ([]byte, error)
}

// symmetric reports whether the spec is the symmetric encryption spec.
func (ks *keySpec) symmetric() bool { return ks.family == familySymmetric }

// asymmetric reports whether the spec is a key pair.
func (ks *keySpec) asymmetric() bool { return ks.family != familySymmetric && ks.family != familyHMAC }

// class is the kind of key AWS requires an alias's new target to share
// with its old one: symmetric, HMAC or asymmetric.
func (ks *keySpec) class() string {
	switch ks.family {
	case familySymmetric:
		return "symmetric"
	case familyHMAC:
		return "HMAC"
	}
	return "asymmetric"
}

// algorithms returns the algorithms a key of this spec and usage supports.
func (ks *keySpec) algorithms(usage string) []string { return ks.usages[usage] }

var (
	rsaEncryption = []string{AlgRSAOAEPSHA1, AlgRSAOAEPSHA256}
	rsaSigning    = []string{AlgRSAPSSSHA256, AlgRSAPSSSHA384, AlgRSAPSSSHA512, AlgRSAPKCS1SHA256, AlgRSAPKCS1SHA384, AlgRSAPKCS1SHA512}
)

var keySpecs = map[string]*keySpec{}

func init() {
	for _, ks := range []*keySpec{
		{name: SpecSymmetricDefault, family: familySymmetric,
			usages: map[string][]string{UsageEncryptDecrypt: {AlgSymmetricDefault}}, usageOrder: []string{UsageEncryptDecrypt},
			generate: randomBytes(32)},
		rsaSpec(SpecRSA2048, 2048), rsaSpec(SpecRSA3072, 3072), rsaSpec(SpecRSA4096, 4096),
		nistSpec(SpecECCNISTP256, AlgECDSASHA256),
		nistSpec(SpecECCNISTP384, AlgECDSASHA384),
		nistSpec(SpecECCNISTP521, AlgECDSASHA512),
		{name: SpecECCSECGP256K1, family: familySecp256k1,
			usages: map[string][]string{UsageSignVerify: {AlgECDSASHA256}}, usageOrder: []string{UsageSignVerify}},
		{name: SpecECCNISTEdwards25519, family: familyEd25519,
			usages:     map[string][]string{UsageSignVerify: {AlgEd25519SHA512, AlgEd25519PHSHA512}},
			usageOrder: []string{UsageSignVerify}},
		mldsaSpec(SpecMLDSA44), mldsaSpec(SpecMLDSA65), mldsaSpec(SpecMLDSA87),
		hmacSpec(SpecHMAC224, crypto.SHA224, AlgHMACSHA224),
		hmacSpec(SpecHMAC256, crypto.SHA256, AlgHMACSHA256),
		hmacSpec(SpecHMAC384, crypto.SHA384, AlgHMACSHA384),
		hmacSpec(SpecHMAC512, crypto.SHA512, AlgHMACSHA512),
	} {
		if ks.generate == nil {
			name := ks.name
			ks.generate = func() ([]byte, error) { return generatePrivateKey(name) }
		}
		keySpecs[ks.name] = ks
	}
}

func randomBytes(n int) func() ([]byte, error) {
	return func() ([]byte, error) {
		b := make([]byte, n)
		rand.Read(b)
		return b, nil
	}
}

func rsaSpec(name string, bits int) *keySpec {
	return &keySpec{name: name, family: familyRSA, rsaBits: bits,
		usages:     map[string][]string{UsageEncryptDecrypt: rsaEncryption, UsageSignVerify: rsaSigning},
		usageOrder: []string{UsageEncryptDecrypt, UsageSignVerify}}
}

func nistSpec(name, ecdsa string) *keySpec {
	return &keySpec{name: name, family: familyNIST,
		usages:     map[string][]string{UsageSignVerify: {ecdsa}, UsageKeyAgreement: {AlgECDH}},
		usageOrder: []string{UsageSignVerify, UsageKeyAgreement}}
}

func mldsaSpec(name string) *keySpec {
	return &keySpec{name: name, family: familyMLDSA,
		usages: map[string][]string{UsageSignVerify: {AlgMLDSASHAKE256}}, usageOrder: []string{UsageSignVerify}}
}

func hmacSpec(name string, h crypto.Hash, alg string) *keySpec {
	return &keySpec{name: name, family: familyHMAC, hmacHash: h,
		usages:     map[string][]string{UsageGenerateVerifyMac: {alg}},
		usageOrder: []string{UsageGenerateVerifyMac}, generate: randomBytes(h.Size())}
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
		"ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ECC_NIST_EDWARDS25519", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"}
	awsKeyUsages           = []string{"SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT", "ENCAPSULATE_DECAPSULATE"}
	awsEncryptionAlgorithm = []string{"SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"}
	awsSigningAlgorithms   = []string{"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
		"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
		"ECDSA_SHA_256", "ECDSA_SHA_384", "ECDSA_SHA_512", "SM2DSA", "ML_DSA_SHAKE_256", "ED25519_SHA_512", "ED25519_PH_SHA_512"}
	awsMessageTypes  = []string{"RAW", "DIGEST", "EXTERNAL_MU"}
	awsMacAlgorithms = []string{"HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512"}
	awsKeyAgreement  = []string{"ECDH"}
	awsKeyPairSpecs  = []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
		"ECC_SECG_P256K1", "SM2", "ECC_NIST_EDWARDS25519", "ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"}
)

// checkEnum refuses a value of member outside AWS's enum values (a value
// of "" is left to the caller: some members are optional).
func checkEnum(member, value string, values []string) error {
	if value != "" && !slices.Contains(values, value) {
		return validationf("%s %q is not one of %s", member, value, strings.Join(values, ", "))
	}
	return nil
}

// checkAlgorithm refuses an EncryptionAlgorithm outside AWS's enum.
func checkAlgorithm(alg string) error {
	return checkEnum("EncryptionAlgorithm", alg, awsEncryptionAlgorithm)
}

// unsupportedSpec explains a KeySpec AWS has and this KMS does not.
func unsupportedSpec(spec string) string {
	switch {
	case spec == "SM2":
		return "KeySpec SM2 exists only in AWS's China Regions; it is not supported here"
	case strings.HasPrefix(spec, "ML_KEM_"):
		return "KeySpec " + spec + " (ENCAPSULATE_DECAPSULATE) is not supported here yet"
	}
	return "KeySpec " + spec + " is not supported here"
}
