package kms

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Imported key material (BYOK): keys of Origin EXTERNAL, created with no
// material (state PendingImport), GetParametersForImport,
// ImportKeyMaterial and DeleteImportedKeyMaterial, as AWS KMS has them.
//
// # The import token
//
// GetParametersForImport makes a fresh RSA wrapping key pair and stores
// nothing: the import token is the wrapping private key itself, sealed
// under the root key (AES-256-GCM) with the key's id as associated data,
// together with the wrapping algorithm, the wrapping key spec and the end
// of its 24 hours. So a token cannot be forged without the root key, is
// refused for any other key (InvalidImportTokenException), ties the
// wrapping key to the algorithm it was asked for, and works on every
// server of a shared store with nothing written; it may serve again for
// the same key until it expires (ExpiredImportTokenException), as AWS's
// do. Whoever holds the root key can open tokens, and could then read
// material wrapped for them in transit; that holder can read every key's
// material anyway.
//
// # Imported material
//
// The material is held sealed under the root key in the key's record
// ([KeyVersion].Sealed), not in the store's write-once material table, so
// that DeleteImportedKeyMaterial and expiry destroy it by rewriting the
// record. Its KeyMaterialId is a check value of it for this key:
// HMAC-SHA256 keyed with the material for symmetric and HMAC keys, SHA-256
// of the public key for key pairs. Re-importing material is recognized by
// that value, which is also how ImportKeyMaterial tells the same material
// from other material (IncorrectKeyMaterialException). Like any check
// value, it lets a guess of the material be confirmed: import material
// from a good random source, as AWS asks.

// Origins, expiration models, import types and wrapping parameters, as AWS
// KMS names them.
const (
	OriginAWSKMS   = "AWS_KMS"
	OriginExternal = "EXTERNAL"

	ExpirationModelExpires       = "KEY_MATERIAL_EXPIRES"
	ExpirationModelDoesNotExpire = "KEY_MATERIAL_DOES_NOT_EXPIRE"

	ImportTypeNew      = "NEW_KEY_MATERIAL"
	ImportTypeExisting = "EXISTING_KEY_MATERIAL"

	WrapRSAOAEPSHA1         = "RSAES_OAEP_SHA_1"
	WrapRSAOAEPSHA256       = "RSAES_OAEP_SHA_256"
	WrapRSAAESKeyWrapSHA1   = "RSA_AES_KEY_WRAP_SHA_1"
	WrapRSAAESKeyWrapSHA256 = "RSA_AES_KEY_WRAP_SHA_256"

	WrappingKeyRSA2048 = "RSA_2048"
	WrappingKeyRSA3072 = "RSA_3072"
	WrappingKeyRSA4096 = "RSA_4096"
)

// ImportTokenTTL is how long a GetParametersForImport answer (its public
// key and import token) can be used, as in AWS.
const ImportTokenTTL = 24 * time.Hour

// maxValidTo bounds ImportKeyMaterial's ValidTo: at most 365 days ahead.
const maxValidTo = 365 * 24 * time.Hour

// The values of AWS's enums for imports.
var (
	awsWrappingAlgorithms = []string{"RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256",
		"RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "SM2PKE"}
	awsWrappingKeySpecs   = []string{"RSA_2048", "RSA_3072", "RSA_4096", "SM2"}
	awsExpirationModels   = []string{ExpirationModelExpires, ExpirationModelDoesNotExpire}
	awsImportTypes        = []string{ImportTypeNew, ImportTypeExisting}
	awsOrigins            = []string{"AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"}
	awsIncludeKeyMaterial = []string{"ALL_KEY_MATERIAL", "ROTATIONS_ONLY"}
)

// wrappingAlgorithm is one of the wrapping algorithms ImportKeyMaterial
// takes: RSA-OAEP of the material, or RSA-OAEP of a one-time AES-256 key
// followed by the material wrapped under it (AES key wrap with padding).
type wrappingAlgorithm struct {
	name    string
	code    byte // its number in import tokens
	hash    crypto.Hash
	aesWrap bool
}

var wrappingAlgorithms = []*wrappingAlgorithm{
	{name: WrapRSAOAEPSHA1, code: 1, hash: crypto.SHA1},
	{name: WrapRSAOAEPSHA256, code: 2, hash: crypto.SHA256},
	{name: WrapRSAAESKeyWrapSHA1, code: 3, hash: crypto.SHA1, aesWrap: true},
	{name: WrapRSAAESKeyWrapSHA256, code: 4, hash: crypto.SHA256, aesWrap: true},
}

// wrappingKeySpecs are the wrapping key specs, by their number in import
// tokens (index + 1).
var wrappingKeySpecs = []struct {
	name string
	bits int
}{{WrappingKeyRSA2048, 2048}, {WrappingKeyRSA3072, 3072}, {WrappingKeyRSA4096, 4096}}

// importAESKeyLen is the length of the one-time AES key of the
// RSA_AES_KEY_WRAP algorithms: AES-256, as AWS documents them.
const importAESKeyLen = 32

func wrappingAlgorithmNamed(name string) *wrappingAlgorithm {
	for _, a := range wrappingAlgorithms {
		if a.name == name {
			return a
		}
	}
	return nil
}

// newHash returns the hash of the algorithm's RSA-OAEP (and MGF1).
func (a *wrappingAlgorithm) newHash() hash.Hash {
	if a.hash == crypto.SHA1 {
		return sha1.New()
	}
	return sha256.New()
}

// newWrappingKey makes a wrapping key pair of GetParametersForImport.
func (s *Service) newWrappingKey(bits int) (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, bits)
}

// checkWrapping validates GetParametersForImport's algorithm and key spec.
func checkWrapping(alg, spec string) (*wrappingAlgorithm, int, error) {
	if alg == "" {
		return nil, 0, validationf("WrappingAlgorithm is required")
	}
	if spec == "" {
		return nil, 0, validationf("WrappingKeySpec is required")
	}
	if err := checkEnum("WrappingAlgorithm", alg, awsWrappingAlgorithms); err != nil {
		return nil, 0, err
	}
	if err := checkEnum("WrappingKeySpec", spec, awsWrappingKeySpecs); err != nil {
		return nil, 0, err
	}
	switch {
	case alg == "RSAES_PKCS1_V1_5":
		return nil, 0, newError(CodeUnsupportedOperation, "WrappingAlgorithm RSAES_PKCS1_V1_5 is no longer supported (AWS KMS dropped it on October 10, 2023): use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256")
	case alg == "SM2PKE" || spec == "SM2":
		return nil, 0, newError(CodeUnsupportedOperation, "SM2 wrapping exists only in AWS's China Regions; it is not supported here")
	}
	bits := 0
	for _, s := range wrappingKeySpecs {
		if s.name == spec {
			bits = s.bits
		}
	}
	return wrappingAlgorithmNamed(alg), bits, nil
}

// checkImportable refuses import operations on a key that takes no
// imported material, or is being deleted.
func (s *Service) checkImportable(k *KeyRecord) error {
	if k.Origin != OriginExternal {
		return s.keyError(k.ID, CodeUnsupportedOperation, "%s origin is %s which is not valid for this operation.", s.KeyARN(k.ID), originOf(k))
	}
	if k.State == StatePendingDeletion {
		return s.keyError(k.ID, CodeInvalidState, "%s is pending deletion.", s.KeyARN(k.ID))
	}
	return nil
}

// GetParametersForImport implements [API]: a fresh RSA wrapping public key
// and the import token that goes with it, valid for 24 hours, for a key of
// Origin EXTERNAL that is not pending deletion. RSA key material must be
// wrapped with an RSA_AES_KEY_WRAP algorithm (it is too long for RSA-OAEP
// alone), and ECC_NIST_P521 material too with an RSA_2048 wrapping key, as
// in AWS. RSAES_PKCS1_V1_5, which AWS no longer accepts, and SM2 are
// UnsupportedOperationException.
func (s *Service) GetParametersForImport(ctx context.Context, in *GetParametersForImportInput) (*GetParametersForImportOutput, error) {
	alg, bits, err := checkWrapping(in.WrappingAlgorithm, in.WrappingKeySpec)
	if err != nil {
		return nil, err
	}
	const action = "kms:GetParametersForImport"
	ref, err := s.parseAuthorized(ctx, action, in.KeyId, false)
	if err != nil {
		return nil, err
	}
	var id string
	err = s.view(ctx, func(r keyReader) error {
		k, err := s.loadAuthorized(ctx, r, action, ref)
		if err != nil {
			return err
		}
		if err := s.checkImportable(k); err != nil {
			return err
		}
		ks := keySpecs[k.Spec]
		if !alg.aesWrap && (ks.family == familyRSA || ks.name == SpecECCNISTP521 && bits == 2048) {
			return s.keyError(k.ID, CodeUnsupportedOperation, "%s key material is too long for %s with an %s wrapping key: use RSA_AES_KEY_WRAP_SHA_256 (or a longer wrapping key for ECC_NIST_P521)",
				k.Spec, alg.name, in.WrappingKeySpec)
		}
		id = k.ID
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The slow part, out of any transaction: the token binds the key id
	// checked above, whatever the key reference names by now.
	priv, err := s.newWrappingKey(bits)
	if err != nil {
		return nil, internal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, internal(err)
	}
	notAfter := s.now().Add(ImportTokenTTL).Truncate(time.Second)
	token, err := s.sealImportToken(id, &importParams{alg: alg, bits: bits, notAfter: notAfter, priv: priv})
	if err != nil {
		return nil, internal(err)
	}
	return &GetParametersForImportOutput{KeyId: s.KeyARN(id), ImportToken: token, PublicKey: pub, ParametersValidTo: ts(notAfter)}, nil
}

// importParams is what an import token holds.
type importParams struct {
	alg      *wrappingAlgorithm
	bits     int // of the wrapping key
	notAfter time.Time
	priv     *rsa.PrivateKey
}

// The import token: importTokenVersion ‖ the root key's sealing of
//
//	not after   8 bytes, Unix seconds, big-endian
//	algorithm   1 byte (wrappingAlgorithm.code)
//	key spec    1 byte (index in wrappingKeySpecs + 1)
//	private key PKCS #1 DER of the wrapping key
//
// with the key's id as associated data (importTokenAAD). An RSA-4096
// token is about 2.4 KB, within AWS's 6144 bytes.
const importTokenVersion = 1

func importTokenAAD(keyID string) []byte { return []byte("envelope import token v1\x00" + keyID) }

func (s *Service) sealImportToken(keyID string, p *importParams) ([]byte, error) {
	der := x509.MarshalPKCS1PrivateKey(p.priv)
	payload := binary.BigEndian.AppendUint64(make([]byte, 0, 10+len(der)), uint64(p.notAfter.Unix()))
	spec := byte(0)
	for i, ws := range wrappingKeySpecs {
		if ws.bits == p.bits {
			spec = byte(i + 1)
		}
	}
	payload = append(payload, p.alg.code, spec)
	payload = append(payload, der...)
	clear(der)
	sealed, err := s.root.Seal(payload, importTokenAAD(keyID))
	clear(payload)
	if err != nil {
		return nil, err
	}
	return append([]byte{importTokenVersion}, sealed...), nil
}

// openImportToken opens an import token for the key keyID: an
// InvalidImportTokenException if it is not a token of this KMS for that
// key, ExpiredImportTokenException once its 24 hours are over.
func (s *Service) openImportToken(keyID string, token []byte) (*importParams, error) {
	invalid := s.keyError(keyID, CodeInvalidImportToken, "the import token is not valid for %s: use the ImportToken of a GetParametersForImport answer for this key, with its PublicKey", s.KeyARN(keyID))
	if len(token) < 2 || token[0] != importTokenVersion {
		return nil, invalid
	}
	payload, err := s.root.Open(token[1:], importTokenAAD(keyID))
	if err != nil {
		return nil, invalid
	}
	defer clear(payload)
	p, err := parseImportToken(payload)
	if err != nil {
		return nil, invalid
	}
	if !s.now().Before(p.notAfter) {
		return nil, s.keyError(keyID, CodeExpiredImportToken, "the import token for %s expired at %s: get a new public key and import token with GetParametersForImport", s.KeyARN(keyID), p.notAfter.UTC().Format(time.RFC3339))
	}
	return p, nil
}

// parseImportToken parses an import token's opened payload.
func parseImportToken(payload []byte) (*importParams, error) {
	if len(payload) < 10 {
		return nil, errors.New("short import token")
	}
	p := &importParams{notAfter: time.Unix(int64(binary.BigEndian.Uint64(payload)), 0).UTC()}
	for _, a := range wrappingAlgorithms {
		if a.code == payload[8] {
			p.alg = a
		}
	}
	spec := int(payload[9])
	if p.alg == nil || spec < 1 || spec > len(wrappingKeySpecs) {
		return nil, errors.New("unknown wrapping parameters")
	}
	p.bits = wrappingKeySpecs[spec-1].bits
	priv, err := x509.ParsePKCS1PrivateKey(payload[10:])
	if err != nil {
		return nil, err
	}
	if priv.N.BitLen() != p.bits {
		return nil, errors.New("wrapping key of the wrong size")
	}
	p.priv = priv
	return p, nil
}

// unwrapKeyMaterial decrypts EncryptedKeyMaterial with the wrapping key
// and algorithm of p: RSA-OAEP (MGF1 with the same hash, no label) of the
// material, or for RSA_AES_KEY_WRAP the RSA-OAEP ciphertext (as long as the
// modulus) of a 32-byte AES key followed by the material wrapped under it
// with AES key wrap with padding (RFC 5649). Its error says what went
// wrong without any of the bytes.
func unwrapKeyMaterial(p *importParams, wrapped []byte) ([]byte, error) {
	h := p.alg.newHash()
	k := p.priv.Size()
	if !p.alg.aesWrap {
		m, err := rsa.DecryptOAEP(h, nil, p.priv, wrapped, nil)
		if err != nil {
			return nil, fmt.Errorf("it does not decrypt with the wrapping key and %s", p.alg.name)
		}
		return m, nil
	}
	if len(wrapped) < k+16 {
		return nil, fmt.Errorf("%s key material is the %d-byte RSA-OAEP wrapping of an AES key followed by the key-wrapped material; got %d bytes in all", p.alg.name, k, len(wrapped))
	}
	aesKey, err := rsa.DecryptOAEP(h, nil, p.priv, wrapped[:k], nil)
	if err != nil {
		return nil, fmt.Errorf("its first %d bytes do not decrypt with the wrapping key and %s", k, p.alg.name)
	}
	defer clear(aesKey)
	if len(aesKey) != importAESKeyLen {
		return nil, fmt.Errorf("the AES key it wraps is %d bytes; %s takes a 256-bit (32-byte) AES key", len(aesKey), p.alg.name)
	}
	m, err := keyUnwrapPad(aesKey, wrapped[k:])
	if err != nil {
		return nil, fmt.Errorf("the material after the wrapped AES key does not unwrap with it (AES key wrap with padding, RFC 5649)")
	}
	return m, nil
}

// importedMaterial is material checked against its key's spec.
type importedMaterial struct {
	data []byte // as stored: the bytes, or the PKCS #8 DER given
	id   string // KeyMaterialId: a check value of it, for this key
}

const materialIDLabel = "envelope key material id v1\x00"

// checkMaterial checks material for a key of spec ks and id keyID, and
// computes its KeyMaterialId: 32 bytes for SYMMETRIC_DEFAULT, from the
// HMAC's output length to its block size for HMAC keys (as AWS takes
// them), a PKCS #8 DER private key of the spec for key pairs.
func checkMaterial(ks *keySpec, keyID string, m []byte) (*importedMaterial, error) {
	switch ks.family {
	case familySymmetric:
		if len(m) != 32 {
			return nil, fmt.Errorf("SYMMETRIC_DEFAULT key material is 32 bytes (256 bits), got %d", len(m))
		}
	case familyHMAC:
		lo, hi := ks.hmacHash.Size(), ks.hmacHash.New().BlockSize()
		if len(m) < lo || len(m) > hi {
			return nil, fmt.Errorf("%s key material is %d to %d bytes, got %d", ks.name, lo, hi, len(m))
		}
	default:
		pk, err := parsePrivateKey(ks, m)
		if err != nil {
			return nil, fmt.Errorf("%s key material is a DER-encoded PKCS #8 private key of that spec: %v", ks.name, err)
		}
		sum := sha256.Sum256(append([]byte(materialIDLabel+keyID+"\x00"), pk.publicKey()...))
		return &importedMaterial{data: m, id: hex.EncodeToString(sum[:])}, nil
	}
	mac := hmac.New(sha256.New, m)
	mac.Write([]byte(materialIDLabel + keyID))
	return &importedMaterial{data: m, id: hex.EncodeToString(mac.Sum(nil))}, nil
}

var (
	materialDescriptionRE = regexp.MustCompile(`^[a-zA-Z0-9:/_\s.-]+$`)
	materialIDRE          = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// checkImportInput validates what ImportKeyMaterial is given before any
// key is read, and returns its expiration model.
func (s *Service) checkImportInput(in *ImportKeyMaterialInput) (string, error) {
	if len(in.ImportToken) == 0 || len(in.ImportToken) > blobMaxLen {
		return "", validationf("ImportToken must be 1 to %d bytes, got %d", blobMaxLen, len(in.ImportToken))
	}
	if len(in.EncryptedKeyMaterial) == 0 || len(in.EncryptedKeyMaterial) > blobMaxLen {
		return "", validationf("EncryptedKeyMaterial must be 1 to %d bytes, got %d", blobMaxLen, len(in.EncryptedKeyMaterial))
	}
	if err := checkEnum("ExpirationModel", in.ExpirationModel, awsExpirationModels); err != nil {
		return "", err
	}
	if err := checkEnum("ImportType", in.ImportType, awsImportTypes); err != nil {
		return "", err
	}
	model := in.ExpirationModel
	if model == "" {
		model = ExpirationModelExpires // AWS's default
	}
	switch {
	case model == ExpirationModelExpires && in.ValidTo == nil:
		return "", validationf("A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
	case model == ExpirationModelDoesNotExpire && in.ValidTo != nil:
		return "", validationf("ValidTo must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
	case in.ValidTo != nil && !in.ValidTo.After(s.now()):
		return "", validationf("ValidTo %s is not in the future", in.ValidTo.UTC().Format(time.RFC3339))
	case in.ValidTo != nil && in.ValidTo.Sub(s.now()) > maxValidTo:
		return "", validationf("ValidTo %s is more than 365 days ahead", in.ValidTo.UTC().Format(time.RFC3339))
	}
	if d := in.KeyMaterialDescription; d != "" && (len(d) > 256 || !materialDescriptionRE.MatchString(d)) {
		return "", validationf("KeyMaterialDescription must be at most 256 letters, digits, spaces and : / _ . -")
	}
	if in.KeyMaterialId != "" && !materialIDRE.MatchString(in.KeyMaterialId) {
		return "", validationf("KeyMaterialId %q is not 64 lower-case hexadecimal digits", in.KeyMaterialId)
	}
	if in.KeyMaterialId != "" && in.ImportType == ImportTypeNew {
		return "", validationf("KeyMaterialId cannot be given with ImportType NEW_KEY_MATERIAL")
	}
	return model, nil
}

// ImportKeyMaterial implements [API]. The first import into a key of Origin
// EXTERNAL makes it Enabled; afterwards only the same material is taken
// (IncorrectKeyMaterialException for any other): to restore it after
// DeleteImportedKeyMaterial or expiry, or to change its expiration. A
// symmetric encryption key also takes new material with ImportType
// NEW_KEY_MATERIAL, which then waits (PENDING_ROTATION) for
// RotateKeyOnDemand to make it current. Material whose ValidTo passes is
// deleted, and the key is PendingImport until it is imported again.
func (s *Service) ImportKeyMaterial(ctx context.Context, in *ImportKeyMaterialInput) (*ImportKeyMaterialOutput, error) {
	model, err := s.checkImportInput(in)
	if err != nil {
		return nil, err
	}
	const action = "kms:ImportKeyMaterial"
	ref, err := s.parseAuthorized(ctx, action, in.KeyId, false)
	if err != nil {
		return nil, err
	}
	// Check the key and the caller's permission before the RSA
	// decryption, which runs outside any transaction.
	var k *KeyRecord
	err = s.view(ctx, func(r keyReader) error {
		var err error
		if k, err = s.loadAuthorized(ctx, r, action, ref); err != nil {
			return err
		}
		return s.checkImportable(k)
	})
	if err != nil {
		return nil, err
	}
	id, ks := k.ID, keySpecs[k.Spec]
	if !ks.symmetric() && (in.KeyMaterialDescription != "" || in.KeyMaterialId != "") {
		return nil, s.keyError(id, CodeValidation, "KeyMaterialDescription and KeyMaterialId apply to symmetric encryption keys only; %s is %s", s.KeyARN(id), k.Spec)
	}
	p, err := s.openImportToken(id, in.ImportToken)
	if err != nil {
		return nil, err
	}
	raw, err := unwrapKeyMaterial(p, in.EncryptedKeyMaterial)
	if err != nil {
		return nil, s.keyError(id, CodeInvalidCiphertext, "EncryptedKeyMaterial: %v", err)
	}
	defer clear(raw)
	m, err := checkMaterial(ks, id, raw)
	if err != nil {
		return nil, s.keyError(id, CodeIncorrectKeyMaterial, "%v", err)
	}
	var validTo time.Time
	if in.ValidTo != nil {
		validTo = in.ValidTo.UTC()
	}
	err = s.update(ctx, func(tx Tx, r keyReader) error {
		k, err := s.loadAuthorized(ctx, r, action, keyRef{id: id, raw: in.KeyId})
		if err != nil {
			return err
		}
		if err := s.checkImportable(k); err != nil {
			return err
		}
		if err := s.applyImport(k, m, in, model, validTo); err != nil {
			return err
		}
		return tx.PutKey(k)
	})
	if err != nil {
		return nil, err
	}
	return &ImportKeyMaterialOutput{KeyId: s.KeyARN(id), KeyMaterialId: m.id}, nil
}

// applyImport puts material m into k (of Origin EXTERNAL), as
// ImportKeyMaterial decides from k's materials and in's ImportType.
func (s *Service) applyImport(k *KeyRecord, m *importedMaterial, in *ImportKeyMaterialInput, model string, validTo time.Time) error {
	importType := in.ImportType
	if importType == "" {
		importType = ImportTypeExisting
		if len(k.Versions) == 0 {
			importType = ImportTypeNew
		}
	}
	idx := materialIndex(k, m.id)
	var v *KeyVersion
	switch {
	case importType == ImportTypeExisting && len(k.Versions) == 0:
		return s.keyError(k.ID, CodeIncorrectKeyMaterial, "no key material was imported into %s yet: import its first material with ImportType NEW_KEY_MATERIAL", s.KeyARN(k.ID))
	case importType == ImportTypeExisting && in.KeyMaterialId != "" && subtle.ConstantTimeCompare([]byte(in.KeyMaterialId), []byte(m.id)) != 1:
		return s.keyError(k.ID, CodeIncorrectKeyMaterial, "the key material imported is not the key material %s", in.KeyMaterialId)
	case importType == ImportTypeExisting && idx < 0:
		return s.keyError(k.ID, CodeIncorrectKeyMaterial, "the key material imported is not key material of %s: a key takes again only the material imported into it before", s.KeyARN(k.ID))
	case importType == ImportTypeExisting:
		v = &k.Versions[idx]
	case len(k.Versions) == 0: // the first material
		k.Versions = append(k.Versions, KeyVersion{Version: 1, MaterialID: m.id, Created: s.now().UTC()})
		v = &k.Versions[0]
	case !keySpecs[k.Spec].symmetric():
		return s.keyError(k.ID, CodeUnsupportedOperation, "%s is a %s key, which keeps the material first imported into it: re-import that material (ImportType EXISTING_KEY_MATERIAL)", s.KeyARN(k.ID), k.Spec)
	case idx >= 0:
		return s.keyError(k.ID, CodeIncorrectKeyMaterial, "new key material was expected, but this key material (id: %s) is already associated with %s: import it with ImportType EXISTING_KEY_MATERIAL", m.id, s.KeyARN(k.ID))
	case k.Versions[len(k.Versions)-1].PendingRotation:
		return s.keyError(k.ID, CodeInvalidState, "New key material (id: %s) cannot be imported into KMS key %s, because another key material (id: %s) is pending rotation.", m.id, k.ID, k.Versions[len(k.Versions)-1].MaterialID)
	default: // new material for a rotation
		k.Versions = append(k.Versions, KeyVersion{Version: len(k.Versions) + 1, MaterialID: m.id, Created: s.now().UTC(), PendingRotation: true})
		v = &k.Versions[len(k.Versions)-1]
	}
	sealed, err := s.root.Seal(m.data, materialAAD(k.ID, v.Version))
	if err != nil {
		return err
	}
	v.Sealed, v.ExpirationModel, v.ValidTo = sealed, model, validTo
	if in.KeyMaterialDescription != "" {
		v.Description = in.KeyMaterialDescription
	}
	if k.State == StatePendingImport && allImported(k) {
		k.State = StateEnabled
	}
	return nil
}

// materialIndex returns the index of k's version whose material has the
// KeyMaterialId id, or -1.
func materialIndex(k *KeyRecord, id string) int {
	found := -1
	for i, v := range k.Versions {
		if subtle.ConstantTimeCompare([]byte(v.MaterialID), []byte(id)) == 1 {
			found = i
		}
	}
	return found
}

// allImported reports whether every material permanently associated with
// k (all but one pending rotation) is imported, and there is one at least.
func allImported(k *KeyRecord) bool {
	n := 0
	for _, v := range k.Versions {
		if v.PendingRotation {
			continue
		}
		if v.Sealed == nil {
			return false
		}
		n++
	}
	return n > 0
}

// DeleteImportedKeyMaterial implements [API]: it destroys the current
// imported material of a key of Origin EXTERNAL, or the material
// KeyMaterialId names, and the key is PendingImport until it is imported
// again (a key pending deletion stays so). Material pending rotation is
// dropped from the key altogether. On a key with no material it does
// nothing.
func (s *Service) DeleteImportedKeyMaterial(ctx context.Context, in *DeleteImportedKeyMaterialInput) (*DeleteImportedKeyMaterialOutput, error) {
	if in.KeyMaterialId != "" && !materialIDRE.MatchString(in.KeyMaterialId) {
		return nil, validationf("KeyMaterialId %q is not 64 lower-case hexadecimal digits", in.KeyMaterialId)
	}
	out := &DeleteImportedKeyMaterialOutput{}
	err := s.modify(ctx, "kms:DeleteImportedKeyMaterial", in.KeyId, func(_ Tx, k *KeyRecord) error {
		if k.Origin != OriginExternal {
			return s.keyError(k.ID, CodeUnsupportedOperation, "%s origin is %s which is not valid for this operation.", s.KeyARN(k.ID), originOf(k))
		}
		out.KeyId, out.KeyMaterialId = s.KeyARN(k.ID), ""
		if len(k.Versions) == 0 {
			return nil
		}
		idx := currentIndex(k)
		if in.KeyMaterialId != "" {
			if idx = materialIndex(k, in.KeyMaterialId); idx < 0 {
				return s.keyError(k.ID, CodeNotFound, "key material %s is not associated with %s", in.KeyMaterialId, s.KeyARN(k.ID))
			}
		}
		out.KeyMaterialId = k.Versions[idx].MaterialID
		s.dropMaterial(k, idx)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// dropMaterial destroys the imported material of k's version at idx: a
// version pending rotation goes altogether (it was never used), any
// other keeps its place, without material, and k becomes PendingImport
// (unless it is pending deletion).
func (s *Service) dropMaterial(k *KeyRecord, idx int) {
	v := &k.Versions[idx]
	clear(v.Sealed)
	if v.PendingRotation {
		k.Versions = slices.Delete(k.Versions, idx, idx+1)
		return
	}
	v.Sealed, v.ExpirationModel, v.ValidTo = nil, "", time.Time{}
	if k.State != StatePendingDeletion {
		k.State = StatePendingImport
	}
}

// materialExpiryDue reports whether imported material of k has reached
// its ValidTo.
func (s *Service) materialExpiryDue(k *KeyRecord) bool {
	if k.Origin != OriginExternal {
		return false
	}
	now := s.now()
	for _, v := range k.Versions {
		if v.Sealed != nil && v.ExpirationModel == ExpirationModelExpires && !now.Before(v.ValidTo) {
			return true
		}
	}
	return false
}

// expireMaterial destroys the imported material of k whose ValidTo has
// come, as DeleteImportedKeyMaterial does; it reports whether it changed
// k.
func (s *Service) expireMaterial(k *KeyRecord) bool {
	changed := false
	now := s.now()
	for i := len(k.Versions) - 1; i >= 0; i-- {
		v := k.Versions[i]
		if v.Sealed != nil && v.ExpirationModel == ExpirationModelExpires && !now.Before(v.ValidTo) {
			s.dropMaterial(k, i)
			changed = true
		}
	}
	return changed
}

// withExpiredMaterial returns a copy of k with its expired material gone:
// how a key whose expiry could not be written yet (a read-only store) is
// seen. k itself, which the cache may share, is left alone.
func (s *Service) withExpiredMaterial(k *KeyRecord) *KeyRecord {
	c := *k
	c.Versions = slices.Clone(k.Versions)
	for i := range c.Versions {
		c.Versions[i].Sealed = slices.Clone(c.Versions[i].Sealed) // dropMaterial clears it
	}
	s.expireMaterial(&c)
	return &c
}

// importExpiry returns the ExpirationModel and ValidTo DescribeKey shows
// for k: those of the material permanently associated with it that is
// imported (the earliest expiry), "" when none is.
func importExpiry(k *KeyRecord) (string, time.Time) {
	model := ""
	var validTo time.Time
	for _, v := range k.Versions {
		if v.PendingRotation || v.Sealed == nil {
			continue
		}
		if model == "" {
			model = ExpirationModelDoesNotExpire
		}
		if v.ExpirationModel == ExpirationModelExpires {
			model = ExpirationModelExpires
			if validTo.IsZero() || v.ValidTo.Before(validTo) {
				validTo = v.ValidTo
			}
		}
	}
	return model, validTo
}

// originOf returns the Origin of a key: AWS_KMS (the material was made
// here) or EXTERNAL (imported).
func originOf(k *KeyRecord) string {
	if k.Origin == "" {
		return OriginAWSKMS
	}
	return k.Origin
}

// ResealRecord moves the material a key's record holds itself (imported
// material, Origin EXTERNAL) from the root key from to the root key to,
// in place, as [ResealMaterial] does for the store's material: how a
// keystore is copied to a store with another root key. Records of other
// keys are left as they are. An error wraps [ErrWrongRootKey] when from
// does not open the material.
func ResealRecord(from, to RootKey, k *KeyRecord) error {
	for i := range k.Versions {
		v := &k.Versions[i]
		if v.Sealed == nil {
			continue
		}
		out, err := ResealMaterial(from, to, k.ID, v.Version, v.Sealed)
		if err != nil {
			return err
		}
		v.Sealed = out
	}
	return nil
}

// MaterialInRecord reports whether k's material is held in its record
// (imported material) rather than in the store's material table.
func (k *KeyRecord) MaterialInRecord() bool { return k.Origin == OriginExternal }

// ImportOptions are the choices of [ImportMaterial]; the zero value
// imports material that does not expire, wrapped with
// RSA_AES_KEY_WRAP_SHA_256 under an RSA_3072 wrapping key.
type ImportOptions struct {
	// WrappingAlgorithm and WrappingKeySpec are asked of
	// GetParametersForImport.
	WrappingAlgorithm, WrappingKeySpec string
	// ValidTo, if set, is when the material expires
	// (KEY_MATERIAL_EXPIRES); zero means it does not.
	ValidTo time.Time
	// ImportType, Description and KeyMaterialId go to ImportKeyMaterial
	// as they are (symmetric encryption keys).
	ImportType, Description, KeyMaterialId string
}

// ImportMaterial imports key material into the key keyID (a key id or key
// ARN of Origin EXTERNAL) through api, as a client of AWS KMS does:
// GetParametersForImport, the material wrapped here with the public key it
// returns ([WrapKeyMaterial]), and ImportKeyMaterial. material is 32 bytes
// for SYMMETRIC_DEFAULT, the key's bytes for HMAC keys, and a DER PKCS #8
// private key for key pairs. It works against this package's [Service],
// an envelope server and AWS KMS alike.
func ImportMaterial(ctx context.Context, api API, keyID string, material []byte, opts ImportOptions) (*ImportKeyMaterialOutput, error) {
	if opts.WrappingAlgorithm == "" {
		opts.WrappingAlgorithm = WrapRSAAESKeyWrapSHA256
	}
	if opts.WrappingKeySpec == "" {
		opts.WrappingKeySpec = WrappingKeyRSA3072
	}
	params, err := api.GetParametersForImport(ctx, &GetParametersForImportInput{KeyId: keyID,
		WrappingAlgorithm: opts.WrappingAlgorithm, WrappingKeySpec: opts.WrappingKeySpec})
	if err != nil {
		return nil, err
	}
	wrapped, err := WrapKeyMaterial(params.PublicKey, opts.WrappingAlgorithm, material)
	if err != nil {
		return nil, err
	}
	in := &ImportKeyMaterialInput{KeyId: keyID, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped,
		ExpirationModel: ExpirationModelDoesNotExpire, ImportType: opts.ImportType,
		KeyMaterialDescription: opts.Description, KeyMaterialId: opts.KeyMaterialId}
	if !opts.ValidTo.IsZero() {
		in.ExpirationModel, in.ValidTo = ExpirationModelExpires, &Timestamp{opts.ValidTo}
	}
	return api.ImportKeyMaterial(ctx, in)
}

// WrapKeyMaterial wraps key material for ImportKeyMaterial with the
// wrapping public key GetParametersForImport returned (a DER
// SubjectPublicKeyInfo) and the algorithm asked for then: RSA-OAEP of the
// material (RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256), or RSA-OAEP of a fresh
// AES-256 key followed by the material wrapped under it with AES key wrap
// with padding (RSA_AES_KEY_WRAP_SHA_1, RSA_AES_KEY_WRAP_SHA_256) — what
// AWS's documented openssl commands make.
func WrapKeyMaterial(publicKey []byte, wrappingAlgorithm string, material []byte) ([]byte, error) {
	alg := wrappingAlgorithmNamed(wrappingAlgorithm)
	if alg == nil {
		return nil, fmt.Errorf("kms: wrapping algorithm %q is not one of %s", wrappingAlgorithm, strings.Join([]string{WrapRSAOAEPSHA1, WrapRSAOAEPSHA256, WrapRSAAESKeyWrapSHA1, WrapRSAAESKeyWrapSHA256}, ", "))
	}
	key, err := x509.ParsePKIXPublicKey(publicKey)
	if err != nil {
		return nil, fmt.Errorf("kms: the wrapping public key is not a DER SubjectPublicKeyInfo: %v", err)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("kms: the wrapping public key is a %s key, not an RSA key", publicKeyKind(key))
	}
	h := alg.newHash()
	if !alg.aesWrap {
		if max := rsaMaxPlaintext(pub.N.BitLen(), h.Size()); len(material) > max {
			return nil, fmt.Errorf("kms: key material of %d bytes is too long for %s with an RSA-%d wrapping key (at most %d): use RSA_AES_KEY_WRAP_SHA_256", len(material), alg.name, pub.N.BitLen(), max)
		}
		return rsa.EncryptOAEP(h, rand.Reader, pub, material, nil)
	}
	aesKey := make([]byte, importAESKeyLen)
	rand.Read(aesKey)
	defer clear(aesKey)
	wrappedKey, err := rsa.EncryptOAEP(h, rand.Reader, pub, aesKey, nil)
	if err != nil {
		return nil, err
	}
	wrapped, err := keyWrapPad(aesKey, material)
	if err != nil {
		return nil, err
	}
	return append(wrappedKey, wrapped...), nil
}
