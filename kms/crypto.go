package kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
)

// sealed is the result of encrypting under a key.
type sealed struct {
	blob       []byte
	keyARN     string
	alg        string
	materialID string
}

// encryptWith encrypts plaintext under key k (already loaded and checked
// usable) with algorithm alg ("" means the key's default).
func (s *Service) encryptWith(r keyReader, k *KeyRecord, alg string, plaintext []byte, ec map[string]string) (*sealed, error) {
	if k.Usage != UsageEncryptDecrypt {
		return nil, s.keyError(k.ID, CodeInvalidKeyUsage, "%s has key usage %s, not ENCRYPT_DECRYPT", s.KeyARN(k.ID), k.Usage)
	}
	spec := keySpecs[k.Spec]
	if spec == nil {
		return nil, s.keyError(k.ID, CodeInternal, "key %s has an unknown spec", k.ID)
	}
	if err := checkAlgorithm(alg); err != nil {
		return nil, err
	}
	if spec.symmetric() {
		if alg != "" && alg != AlgSymmetricDefault {
			return nil, s.keyError(k.ID, CodeInvalidKeyUsage, "%s supports only the SYMMETRIC_DEFAULT encryption algorithm, not %s", s.KeyARN(k.ID), alg)
		}
		v := current(k)
		m, err := r.material(k, v.Version)
		if err != nil {
			return nil, err
		}
		defer clear(m)
		blob, err := sealBlob(k.ID, v.Version, m, plaintext, ec)
		if err != nil {
			return nil, err
		}
		return &sealed{blob: blob, keyARN: s.KeyARN(k.ID), alg: AlgSymmetricDefault, materialID: v.MaterialID}, nil
	}
	h, err := oaepHash(alg)
	if err != nil {
		return nil, s.keyError(k.ID, CodeInvalidKeyUsage, "%s is an %s key: give EncryptionAlgorithm RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256", s.KeyARN(k.ID), k.Spec)
	}
	if len(ec) > 0 {
		return nil, s.keyError(k.ID, CodeValidation, "an encryption context is supported only with symmetric keys; %s is %s", s.KeyARN(k.ID), k.Spec)
	}
	if max := rsaMaxPlaintext(spec.rsaBits, h.Size()); len(plaintext) > max {
		return nil, s.keyError(k.ID, CodeValidation, "plaintext of %d bytes is too long for %s with %s (at most %d)", len(plaintext), k.Spec, alg, max)
	}
	priv, err := rsaPrivate(r, k)
	if err != nil {
		return nil, err
	}
	ct, err := rsa.EncryptOAEP(h, rand.Reader, &priv.priv.PublicKey, plaintext, nil)
	if err != nil {
		return nil, err
	}
	return &sealed{blob: ct, keyARN: s.KeyARN(k.ID), alg: alg, materialID: current(k).MaterialID}, nil
}

func oaepHash(alg string) (hash.Hash, error) {
	switch alg {
	case AlgRSAOAEPSHA1:
		return sha1.New(), nil
	case AlgRSAOAEPSHA256:
		return sha256.New(), nil
	}
	return nil, errors.New("kms: not an RSA algorithm")
}

// opened is the result of decrypting a ciphertext.
type opened struct {
	plaintext  []byte
	key        *KeyRecord
	alg        string
	materialID string
}

// decryptIn decrypts a ciphertext blob inside a transaction, once the
// caller's permission for action on the key used is checked. keyID, when
// given, must name the key the blob was made with (IncorrectKeyException
// otherwise); asymmetric keys require it and an RSA algorithm.
func (s *Service) decryptIn(ctx context.Context, r keyReader, action string, blob []byte, keyID, alg string, ec map[string]string) (*opened, error) {
	info := &authzInfo{ec: ec, alg: alg}
	if len(blob) == 0 || len(blob) > blobMaxLen {
		return nil, validationf("CiphertextBlob must be 1 to %d bytes, got %d", blobMaxLen, len(blob))
	}
	var named *KeyRecord
	if keyID != "" {
		// The key named is the key used, or the call fails: authorizing
		// it authorizes the key used.
		ref, err := s.parseAuthorizedWith(ctx, action, keyID, true, info)
		if err != nil {
			return nil, err
		}
		if named, err = s.loadAuthorized(ctx, r, action, ref); err != nil {
			return nil, err
		}
	}
	if named != nil && !keySpecs[named.Spec].symmetric() {
		if err := s.usable(named); err != nil {
			return nil, err
		}
		if named.Usage != UsageEncryptDecrypt {
			return nil, s.usageError(named, "Decrypt")
		}
		h, err := oaepHash(alg)
		if err != nil {
			if err := checkAlgorithm(alg); err != nil {
				return nil, err
			}
			return nil, s.keyError(named.ID, CodeInvalidKeyUsage, "decrypting with %s key %s needs EncryptionAlgorithm RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256", named.Spec, s.KeyARN(named.ID))
		}
		if len(ec) > 0 {
			return nil, s.keyError(named.ID, CodeValidation, "an encryption context is supported only with symmetric keys")
		}
		priv, err := rsaPrivate(r, named)
		if err != nil {
			return nil, err
		}
		pt, err := rsa.DecryptOAEP(h, nil, priv.priv, blob, nil)
		if err != nil {
			return nil, s.keyError(named.ID, CodeInvalidCiphertext, "the ciphertext does not decrypt with %s and %s", s.KeyARN(named.ID), alg)
		}
		return &opened{plaintext: pt, key: named, alg: alg, materialID: current(named).MaterialID}, nil
	}
	if alg != "" && alg != AlgSymmetricDefault {
		if err := checkAlgorithm(alg); err != nil {
			return nil, err
		}
		return nil, newError(CodeInvalidKeyUsage, "EncryptionAlgorithm %s does not apply to a symmetric key's ciphertext", alg)
	}
	h, ok := parseBlobHeader(blob)
	if !ok {
		if named == nil { // names no key: asked about none
			if err := s.authorize(ctx, r, action, "", nil, info); err != nil {
				return nil, err
			}
		}
		return nil, newError(CodeInvalidCiphertext, "the ciphertext is not a ciphertext blob of this KMS, or it is damaged")
	}
	k := named
	if k == nil {
		var err error
		if k, err = s.loadAuthorized(ctx, r, action, keyRef{id: h.keyID, raw: h.keyID, info: info}); err != nil {
			if CodeOf(err) != CodeNotFound {
				return nil, err
			}
			if existed, xerr := s.existed(r, h.keyID); xerr != nil {
				return nil, xerr
			} else if !existed {
				// A damaged blob names no key this KMS ever had.
				return nil, newError(CodeInvalidCiphertext, "the ciphertext is not a ciphertext blob of this KMS, or it is damaged")
			}
			return nil, err
		}
	} else if k.ID != h.keyID {
		return nil, s.keyError(k.ID, CodeIncorrectKey, "the ciphertext was encrypted under another key than %s", s.KeyARN(k.ID))
	}
	if err := s.usable(k); err != nil {
		return nil, err
	}
	if h.version > len(k.Versions) && r == keyReader(s.hot) {
		// A version newer than the cached record: the key was rotated
		// (by another server, or after the cache was filled) and the
		// change is not announced yet. Read the store.
		return nil, errCacheMiss
	}
	if !keySpecs[k.Spec].symmetric() || h.version > len(k.Versions) || k.Versions[h.version-1].PendingRotation {
		return nil, s.keyError(k.ID, CodeInvalidCiphertext, "the ciphertext does not match key %s", s.KeyARN(k.ID))
	}
	m, err := r.material(k, h.version)
	if err != nil {
		return nil, err
	}
	defer clear(m)
	pt, err := openBlob(blob, m, ec)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.KeyARN = s.KeyARN(k.ID) // a new error, about the key that failed to open it
		}
		return nil, err
	}
	return &opened{plaintext: pt, key: k, alg: AlgSymmetricDefault, materialID: k.Versions[h.version-1].MaterialID}, nil
}

// usableKey loads the key keyID names, has the caller's permission for
// action on it checked, and checks it can be used.
func (s *Service) usableKey(ctx context.Context, r keyReader, action, keyID string, info *authzInfo) (*KeyRecord, error) {
	ref, err := s.parseAuthorizedWith(ctx, action, keyID, true, info)
	if err != nil {
		return nil, err
	}
	k, err := s.loadAuthorized(ctx, r, action, ref)
	if err != nil {
		return nil, err
	}
	return k, s.usable(k)
}

// Encrypt implements [API]: up to 4096 bytes under a symmetric key, or an
// RSA key's OAEP limit.
func (s *Service) Encrypt(ctx context.Context, in *EncryptInput) (*EncryptOutput, error) {
	if len(in.Plaintext) == 0 || len(in.Plaintext) > maxPlaintextLen {
		return nil, validationf("Plaintext must be 1 to %d bytes, got %d", maxPlaintextLen, len(in.Plaintext))
	}
	if err := s.checkGrantTokens(ctx, in.GrantTokens); err != nil {
		return nil, err
	}
	var out *sealed
	err := s.view(ctx, func(r keyReader) error {
		k, err := s.usableKey(ctx, r, "kms:Encrypt", in.KeyId, &authzInfo{ec: in.EncryptionContext, alg: in.EncryptionAlgorithm})
		if err != nil {
			return err
		}
		out, err = s.encryptWith(r, k, in.EncryptionAlgorithm, in.Plaintext, in.EncryptionContext)
		return err
	})
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, dryRun()
	}
	return &EncryptOutput{CiphertextBlob: out.blob, KeyId: out.keyARN, EncryptionAlgorithm: out.alg}, nil
}

// Decrypt implements [API]. A symmetric ciphertext names its key, so KeyId
// is optional; when given it must match (IncorrectKeyException).
func (s *Service) Decrypt(ctx context.Context, in *DecryptInput) (*DecryptOutput, error) {
	if err := s.checkGrantTokens(ctx, in.GrantTokens); err != nil {
		return nil, err
	}
	var o *opened
	err := s.view(ctx, func(r keyReader) error {
		var err error
		o, err = s.decryptIn(ctx, r, "kms:Decrypt", in.CiphertextBlob, in.KeyId, in.EncryptionAlgorithm, in.EncryptionContext)
		return err
	})
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		clear(o.plaintext)
		return nil, dryRun()
	}
	return &DecryptOutput{KeyId: s.KeyARN(o.key.ID), Plaintext: o.plaintext, EncryptionAlgorithm: o.alg, KeyMaterialId: o.materialID}, nil
}

// ReEncrypt implements [API]: the ciphertext is decrypted and encrypted
// again under the destination key (the newest material of the same key
// when the destination is the source), without the plaintext leaving the
// service.
func (s *Service) ReEncrypt(ctx context.Context, in *ReEncryptInput) (*ReEncryptOutput, error) {
	if err := s.checkGrantTokens(ctx, in.GrantTokens); err != nil {
		return nil, err
	}
	if in.DestinationKeyId == "" {
		return nil, validationf("DestinationKeyId is required")
	}
	var out *ReEncryptOutput
	err := s.view(ctx, func(r keyReader) error {
		o, err := s.decryptIn(ctx, r, "kms:ReEncryptFrom", in.CiphertextBlob, in.SourceKeyId, in.SourceEncryptionAlgorithm, in.SourceEncryptionContext)
		if err != nil {
			return err
		}
		defer clear(o.plaintext)
		dst, err := s.usableKey(ctx, r, "kms:ReEncryptTo", in.DestinationKeyId, &authzInfo{ec: in.DestinationEncryptionContext, alg: in.DestinationEncryptionAlgorithm})
		if err != nil {
			return err
		}
		sl, err := s.encryptWith(r, dst, in.DestinationEncryptionAlgorithm, o.plaintext, in.DestinationEncryptionContext)
		if err != nil {
			return err
		}
		out = &ReEncryptOutput{CiphertextBlob: sl.blob, SourceKeyId: s.KeyARN(o.key.ID), KeyId: sl.keyARN,
			SourceEncryptionAlgorithm: o.alg, DestinationEncryptionAlgorithm: sl.alg,
			SourceKeyMaterialId: o.materialID, DestinationKeyMaterialId: sl.materialID}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, dryRun()
	}
	return out, nil
}

func dataKeyLength(n *int32, spec string) (int, error) {
	switch {
	case n != nil && spec != "":
		return 0, validationf("give NumberOfBytes or KeySpec, not both")
	case n != nil:
		if *n < 1 || *n > maxDataKeyBytes {
			return 0, validationf("NumberOfBytes must be between 1 and %d, got %d", maxDataKeyBytes, *n)
		}
		return int(*n), nil
	case spec == "AES_256":
		return 32, nil
	case spec == "AES_128":
		return 16, nil
	case spec != "":
		return 0, validationf("KeySpec must be AES_256 or AES_128, got %q", spec)
	}
	return 0, validationf("give NumberOfBytes or KeySpec")
}

// generate makes a random data key of n bytes and encrypts it under keyID,
// for action.
func (s *Service) generate(ctx context.Context, action, keyID string, n int, ec map[string]string, tokens []string) ([]byte, *sealed, error) {
	if err := s.checkGrantTokens(ctx, tokens); err != nil {
		return nil, nil, err
	}
	pt := make([]byte, n)
	rand.Read(pt)
	var out *sealed
	err := s.view(ctx, func(r keyReader) error {
		k, err := s.usableKey(ctx, r, action, keyID, &authzInfo{ec: ec})
		if err != nil {
			return err
		}
		if !keySpecs[k.Spec].symmetric() {
			return s.keyError(k.ID, CodeInvalidKeyUsage, "%s is an %s key; data keys need a symmetric encryption key", s.KeyARN(k.ID), k.Spec)
		}
		out, err = s.encryptWith(r, k, "", pt, ec)
		return err
	})
	if err != nil {
		clear(pt)
		return nil, nil, err
	}
	return pt, out, nil
}

// GenerateDataKey implements [API].
func (s *Service) GenerateDataKey(ctx context.Context, in *GenerateDataKeyInput) (*GenerateDataKeyOutput, error) {
	n, err := dataKeyLength(in.NumberOfBytes, in.KeySpec)
	if err != nil {
		return nil, err
	}
	pt, out, err := s.generate(ctx, "kms:GenerateDataKey", in.KeyId, n, in.EncryptionContext, in.GrantTokens)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		clear(pt)
		return nil, dryRun()
	}
	return &GenerateDataKeyOutput{CiphertextBlob: out.blob, Plaintext: pt, KeyId: out.keyARN, KeyMaterialId: out.materialID}, nil
}

// GenerateDataKeyWithoutPlaintext implements [API].
func (s *Service) GenerateDataKeyWithoutPlaintext(ctx context.Context, in *GenerateDataKeyWithoutPlaintextInput) (*GenerateDataKeyWithoutPlaintextOutput, error) {
	n, err := dataKeyLength(in.NumberOfBytes, in.KeySpec)
	if err != nil {
		return nil, err
	}
	pt, out, err := s.generate(ctx, "kms:GenerateDataKeyWithoutPlaintext", in.KeyId, n, in.EncryptionContext, in.GrantTokens)
	if err != nil {
		return nil, err
	}
	clear(pt)
	if in.DryRun {
		return nil, dryRun()
	}
	return &GenerateDataKeyWithoutPlaintextOutput{CiphertextBlob: out.blob, KeyId: out.keyARN, KeyMaterialId: out.materialID}, nil
}

// keyPairSpecs are the KeyPairSpecs GenerateDataKeyPair makes: each is
// also a KeySpec, whose key pair it is.
var keyPairSpecs = []string{SpecRSA2048, SpecRSA3072, SpecRSA4096, SpecECCNISTP256, SpecECCNISTP384, SpecECCNISTP521,
	SpecECCSECGP256K1, SpecECCNISTEdwards25519}

// checkKeyPairSpec refuses a KeyPairSpec newKeyPair cannot make.
func checkKeyPairSpec(spec string) error {
	if spec == "" {
		return validationf("KeyPairSpec is required")
	}
	if err := checkEnum("KeyPairSpec", spec, awsKeyPairSpecs); err != nil {
		return err
	}
	if !slices.Contains(keyPairSpecs, spec) {
		reason := "KeyPairSpec " + spec + " is not supported here"
		if spec == "SM2" {
			reason = "KeyPairSpec SM2 exists only in AWS's China Regions; it is not supported here"
		}
		return newError(CodeUnsupportedOperation, "%s (supported: %s)", reason, strings.Join(keyPairSpecs, ", "))
	}
	return nil
}

// newKeyPair makes a data key pair: PKCS #8 DER private key and SPKI DER
// public key.
func newKeyPair(spec string) (priv, pub []byte, err error) {
	if err := checkKeyPairSpec(spec); err != nil {
		return nil, nil, err
	}
	if priv, err = generatePrivateKey(spec); err != nil {
		return nil, nil, err
	}
	key, err := parsePrivateKey(keySpecs[spec], priv)
	if err != nil {
		clear(priv)
		return nil, nil, err
	}
	return priv, key.publicKey(), nil
}

// generatePair makes a data key pair and encrypts its private key under
// in.KeyId, for action.
func (s *Service) generatePair(ctx context.Context, action string, in *GenerateDataKeyPairInput) (*GenerateDataKeyPairOutput, error) {
	if err := s.checkGrantTokens(ctx, in.GrantTokens); err != nil {
		return nil, err
	}
	if err := checkKeyPairSpec(in.KeyPairSpec); err != nil {
		return nil, err
	}
	// Check the key and the caller's permission before the (slow) key
	// pair generation, which a dry run never reaches.
	var id string
	err := s.view(ctx, func(r keyReader) error {
		k, err := s.usableKey(ctx, r, action, in.KeyId, &authzInfo{ec: in.EncryptionContext})
		if err != nil {
			return err
		}
		if !keySpecs[k.Spec].symmetric() {
			return s.keyError(k.ID, CodeInvalidKeyUsage, "%s is an %s key; data key pairs need a symmetric encryption key", s.KeyARN(k.ID), k.Spec)
		}
		id = k.ID
		return nil
	})
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, dryRun()
	}
	priv, pub, err := s.newKeyPair(in.KeyPairSpec)
	if err != nil {
		return nil, internal(err)
	}
	// Encrypt under the key checked above, not whatever in.KeyId names
	// now; its state and the caller's permission are checked again, as
	// they may have changed meanwhile.
	var out *sealed
	err = s.view(ctx, func(r keyReader) error {
		k, err := s.loadAuthorized(ctx, r, action, keyRef{id: id, raw: in.KeyId, info: &authzInfo{ec: in.EncryptionContext}})
		if err != nil {
			return err
		}
		if err := s.usable(k); err != nil {
			return err
		}
		out, err = s.encryptWith(r, k, "", priv, in.EncryptionContext)
		return err
	})
	if err != nil {
		clear(priv)
		return nil, err
	}
	return &GenerateDataKeyPairOutput{PrivateKeyCiphertextBlob: out.blob, PrivateKeyPlaintext: priv, PublicKey: pub,
		KeyId: out.keyARN, KeyPairSpec: in.KeyPairSpec, KeyMaterialId: out.materialID}, nil
}

// GenerateDataKeyPair implements [API].
func (s *Service) GenerateDataKeyPair(ctx context.Context, in *GenerateDataKeyPairInput) (*GenerateDataKeyPairOutput, error) {
	return s.generatePair(ctx, "kms:GenerateDataKeyPair", in)
}

// GenerateDataKeyPairWithoutPlaintext implements [API].
func (s *Service) GenerateDataKeyPairWithoutPlaintext(ctx context.Context, in *GenerateDataKeyPairWithoutPlaintextInput) (*GenerateDataKeyPairWithoutPlaintextOutput, error) {
	out, err := s.generatePair(ctx, "kms:GenerateDataKeyPairWithoutPlaintext", (*GenerateDataKeyPairInput)(in))
	if err != nil {
		return nil, err
	}
	clear(out.PrivateKeyPlaintext)
	return &GenerateDataKeyPairWithoutPlaintextOutput{PrivateKeyCiphertextBlob: out.PrivateKeyCiphertextBlob,
		PublicKey: out.PublicKey, KeyId: out.KeyId, KeyPairSpec: out.KeyPairSpec, KeyMaterialId: out.KeyMaterialId}, nil
}

// GenerateRandom implements [API]: 1 to 1024 random bytes.
func (s *Service) GenerateRandom(_ context.Context, in *GenerateRandomInput) (*GenerateRandomOutput, error) {
	if in.CustomKeyStoreId != "" {
		return nil, newError(CodeUnsupportedOperation, "custom key stores are not supported")
	}
	if in.NumberOfBytes == nil || *in.NumberOfBytes < 1 || *in.NumberOfBytes > maxDataKeyBytes {
		return nil, validationf("NumberOfBytes must be between 1 and %d", maxDataKeyBytes)
	}
	b := make([]byte, *in.NumberOfBytes)
	rand.Read(b)
	return &GenerateRandomOutput{Plaintext: b}, nil
}

// GetPublicKey implements [API] for asymmetric keys: the DER
// SubjectPublicKeyInfo (for ECC_SECG_P256K1 with id-ecPublicKey and the
// secp256k1 OID; for ML-DSA with the FIPS 204 OIDs and no parameters), and
// the algorithms of the key's usage.
func (s *Service) GetPublicKey(ctx context.Context, in *GetPublicKeyInput) (*GetPublicKeyOutput, error) {
	if err := s.checkGrantTokens(ctx, in.GrantTokens); err != nil {
		return nil, err
	}
	var out *GetPublicKeyOutput
	err := s.view(ctx, func(r keyReader) error {
		k, err := s.usableKey(ctx, r, "kms:GetPublicKey", in.KeyId, nil)
		if err != nil {
			return err
		}
		spec := keySpecs[k.Spec]
		if !spec.asymmetric() {
			return s.keyError(k.ID, CodeUnsupportedOperation, "%s is a %s key; it has no public key", s.KeyARN(k.ID), spec.class())
		}
		priv, err := r.privateKey(k)
		if err != nil {
			return err
		}
		out = &GetPublicKeyOutput{KeyId: s.KeyARN(k.ID), PublicKey: bytes.Clone(priv.publicKey()), CustomerMasterKeySpec: k.Spec, KeySpec: k.Spec,
			KeyUsage: k.Usage}
		algs := spec.algorithms(k.Usage)
		switch k.Usage {
		case UsageEncryptDecrypt:
			out.EncryptionAlgorithms = algs
		case UsageSignVerify:
			out.SigningAlgorithms = algs
		case UsageKeyAgreement:
			out.KeyAgreementAlgorithms = algs
		}
		return nil
	})
	return out, err
}

// rsaPrivate returns the parsed private key of the RSA key k, read through
// r.
func rsaPrivate(r keyReader, k *KeyRecord) (*rsaKey, error) {
	pk, err := r.privateKey(k)
	if err != nil {
		return nil, err
	}
	rk, ok := pk.(*rsaKey)
	if !ok {
		return nil, fmt.Errorf("kms: key %s of spec %s is not an RSA key", k.ID, k.Spec)
	}
	return rk, nil
}
