package kms

import (
	"context"
	"crypto"
	"crypto/sha512"
	"slices"
	"strings"
)

// signingAlgorithm is one of AWS's signing algorithms: what it hashes and
// which message types it takes.
type signingAlgorithm struct {
	name string
	// hash is the hash of the message (RAW), and the length of a digest
	// (DIGEST); 0 for ML-DSA.
	hash crypto.Hash
	// messageTypes are the MessageTypes it takes, the first the default.
	messageTypes []string
	// pure algorithms sign the message itself, not its digest (Ed25519,
	// ML-DSA).
	pure bool
	// pss marks RSASSA-PSS (else PKCS #1 v1.5) among the RSA algorithms.
	pss bool
}

var (
	hashed = []string{MessageTypeRaw, MessageTypeDigest}

	signingAlgorithms = map[string]*signingAlgorithm{}
)

func init() {
	for _, a := range []*signingAlgorithm{
		{name: AlgRSAPSSSHA256, hash: crypto.SHA256, messageTypes: hashed, pss: true},
		{name: AlgRSAPSSSHA384, hash: crypto.SHA384, messageTypes: hashed, pss: true},
		{name: AlgRSAPSSSHA512, hash: crypto.SHA512, messageTypes: hashed, pss: true},
		{name: AlgRSAPKCS1SHA256, hash: crypto.SHA256, messageTypes: hashed},
		{name: AlgRSAPKCS1SHA384, hash: crypto.SHA384, messageTypes: hashed},
		{name: AlgRSAPKCS1SHA512, hash: crypto.SHA512, messageTypes: hashed},
		{name: AlgECDSASHA256, hash: crypto.SHA256, messageTypes: hashed},
		{name: AlgECDSASHA384, hash: crypto.SHA384, messageTypes: hashed},
		{name: AlgECDSASHA512, hash: crypto.SHA512, messageTypes: hashed},
		// Ed25519 signs the message; Ed25519ph a SHA-512 digest, which it
		// hashes once more (HashEdDSA of the digest, as AWS does).
		{name: AlgEd25519SHA512, hash: crypto.SHA512, messageTypes: []string{MessageTypeRaw}, pure: true},
		{name: AlgEd25519PHSHA512, hash: crypto.SHA512, messageTypes: []string{MessageTypeDigest}},
		{name: AlgMLDSASHAKE256, messageTypes: []string{MessageTypeRaw, MessageTypeExternalMu}, pure: true},
	} {
		signingAlgorithms[a.name] = a
	}
}

// signInput is what a signer signs once the operation has applied the
// message type: a digest (the hash-then-sign algorithms; for Ed25519ph
// the SHA-512 of the digest given), the message itself (Ed25519, ML-DSA
// with RAW), or μ (ML-DSA with EXTERNAL_MU, mu set).
type signInput struct {
	data []byte
	mu   bool
}

// DefaultMessageType returns the MessageType a signing algorithm takes
// first: RAW, but DIGEST for Ed25519ph, which takes no other (RAW for an
// algorithm it does not know).
func DefaultMessageType(alg string) string {
	if a := signingAlgorithms[alg]; a != nil {
		return a.messageTypes[0]
	}
	return MessageTypeRaw
}

// DigestHash returns the hash whose digest a signing algorithm takes with
// MessageType DIGEST, and false for those that take no digest (Ed25519,
// ML-DSA).
func DigestHash(alg string) (crypto.Hash, bool) {
	a := signingAlgorithms[alg]
	if a == nil || !slices.Contains(a.messageTypes, MessageTypeDigest) {
		return 0, false
	}
	return a.hash, true
}

// signingKey loads the key keyID names for action (kms:Sign, kms:Verify)
// through r, checks it is usable, of usage SIGN_VERIFY and supports alg,
// and returns it with its parsed private key and the input to sign.
func (s *Service) signingKey(ctx context.Context, r keyReader, action, op, keyID, alg string) (*KeyRecord, signer, *signingAlgorithm, error) {
	k, err := s.usableKey(ctx, r, action, keyID, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	if k.Usage != UsageSignVerify {
		return nil, nil, nil, s.usageError(k, op)
	}
	spec := keySpecs[k.Spec]
	if !slices.Contains(spec.algorithms(k.Usage), alg) {
		return nil, nil, nil, s.keyError(k.ID, CodeInvalidKeyUsage, "%s is an %s key: SigningAlgorithm %s is not valid for it (valid: %s).",
			s.KeyARN(k.ID), k.Spec, alg, strings.Join(spec.algorithms(k.Usage), ", "))
	}
	pk, err := r.privateKey(k)
	if err != nil {
		return nil, nil, nil, err
	}
	sg, ok := pk.(signer)
	if !ok {
		return nil, nil, nil, s.keyError(k.ID, CodeInternal, "key %s of spec %s cannot sign", k.ID, k.Spec)
	}
	return k, sg, signingAlgorithms[alg], nil
}

// usageError is the InvalidKeyUsageException of an operation op on a key
// of another usage.
func (s *Service) usageError(k *KeyRecord, op string) error {
	return s.keyError(k.ID, CodeInvalidKeyUsage, "%s key usage is %s which is not valid for %s.", s.KeyARN(k.ID), k.Usage, op)
}

// checkSignRequest validates what Sign and Verify are given before any key
// is read: the enums, the message's length.
func (s *Service) checkSignRequest(ctx context.Context, message []byte, messageType, alg string, tokens []string) error {
	if err := s.checkGrantTokens(ctx, tokens); err != nil {
		return err
	}
	if alg == "" {
		return validationf("SigningAlgorithm is required")
	}
	if err := checkEnum("SigningAlgorithm", alg, awsSigningAlgorithms); err != nil {
		return err
	}
	if err := checkEnum("MessageType", messageType, awsMessageTypes); err != nil {
		return err
	}
	if len(message) == 0 || len(message) > maxPlaintextLen {
		return validationf("Message must be 1 to %d bytes, got %d; to sign a longer message, give its digest with MessageType DIGEST (EXTERNAL_MU for ML-DSA)", maxPlaintextLen, len(message))
	}
	return nil
}

// signingInput applies the message type to message for alg (a supported
// algorithm of the key): it hashes a RAW message for the hash-then-sign
// algorithms and checks the length of a DIGEST or μ.
func signingInput(alg *signingAlgorithm, messageType string, message []byte) (signInput, error) {
	if messageType == "" {
		messageType = MessageTypeRaw
	}
	if !slices.Contains(alg.messageTypes, messageType) {
		return signInput{}, validationf("SigningAlgorithm %s does not take MessageType %s (it takes %s)", alg.name, messageType, strings.Join(alg.messageTypes, " or "))
	}
	switch {
	case messageType == MessageTypeExternalMu:
		if len(message) != mldsaMuLen {
			return signInput{}, validationf("with MessageType EXTERNAL_MU, Message must be the %d-byte μ, got %d bytes", mldsaMuLen, len(message))
		}
		return signInput{data: message, mu: true}, nil
	case messageType == MessageTypeDigest:
		if len(message) != alg.hash.Size() {
			return signInput{}, validationf("with MessageType DIGEST and SigningAlgorithm %s, Message must be a %d-byte %s digest, got %d bytes", alg.name, alg.hash.Size(), alg.hash, len(message))
		}
		if alg.name == AlgEd25519PHSHA512 {
			d := sha512.Sum512(message)
			return signInput{data: d[:]}, nil
		}
		return signInput{data: message}, nil
	case alg.pure:
		return signInput{data: message}, nil
	}
	h := alg.hash.New()
	h.Write(message)
	return signInput{data: h.Sum(nil)}, nil
}

// Sign implements [API]: a signature of a message of up to 4096 bytes
// (RAW), of a digest (DIGEST) or of an ML-DSA μ (EXTERNAL_MU) with a
// SIGN_VERIFY key. ECDSA signatures are DER, Ed25519 ones 64 raw bytes, RSA
// ones PKCS #1 (PSS or v1.5), ML-DSA ones FIPS 204's encoding.
func (s *Service) Sign(ctx context.Context, in *SignInput) (*SignOutput, error) {
	if err := s.checkSignRequest(ctx, in.Message, in.MessageType, in.SigningAlgorithm, in.GrantTokens); err != nil {
		return nil, err
	}
	var out *SignOutput
	err := s.view(ctx, func(r keyReader) error {
		k, sg, alg, err := s.signingKey(ctx, r, "kms:Sign", "Sign", in.KeyId, in.SigningAlgorithm)
		if err != nil {
			return err
		}
		input, err := signingInput(alg, in.MessageType, in.Message)
		if err != nil {
			return err
		}
		if in.DryRun {
			return dryRun()
		}
		sig, err := sg.sign(alg, input)
		if err != nil {
			return err
		}
		out = &SignOutput{KeyId: s.KeyARN(k.ID), Signature: sig, SigningAlgorithm: alg.name}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Verify implements [API]: it checks a signature Sign made (or any valid
// signature of the key's private key; for ML-DSA with EXTERNAL_MU, see
// the package's notes on ML-DSA) and fails with KMSInvalidSignatureException
// when it does not verify. The message type need not be the one signed
// with: a message and its digest are the same message.
func (s *Service) Verify(ctx context.Context, in *VerifyInput) (*VerifyOutput, error) {
	if err := s.checkSignRequest(ctx, in.Message, in.MessageType, in.SigningAlgorithm, in.GrantTokens); err != nil {
		return nil, err
	}
	if len(in.Signature) == 0 || len(in.Signature) > blobMaxLen {
		return nil, validationf("Signature must be 1 to %d bytes, got %d", blobMaxLen, len(in.Signature))
	}
	var out *VerifyOutput
	err := s.view(ctx, func(r keyReader) error {
		k, sg, alg, err := s.signingKey(ctx, r, "kms:Verify", "Verify", in.KeyId, in.SigningAlgorithm)
		if err != nil {
			return err
		}
		input, err := signingInput(alg, in.MessageType, in.Message)
		if err != nil {
			return err
		}
		if in.DryRun {
			return dryRun()
		}
		if !sg.verify(alg, input, in.Signature) {
			return s.keyError(k.ID, CodeInvalidSignature, "the signature does not verify with %s and %s: the message, the signature, the key or the algorithm differs from those it was made with", s.KeyARN(k.ID), alg.name)
		}
		out = &VerifyOutput{KeyId: s.KeyARN(k.ID), SignatureValid: true, SigningAlgorithm: alg.name}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
