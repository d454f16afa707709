package kms

import "context"

// maxPeerPublicKeyLen bounds DeriveSharedSecret's PublicKey, as AWS does.
const maxPeerPublicKeyLen = 8192

// DeriveSharedSecret implements [API]: the raw ECDH shared secret (the
// x-coordinate of the shared point, as AWS returns it, with no key
// derivation) of a KEY_AGREEMENT key and a peer's public key on the same
// curve, given as a DER SubjectPublicKeyInfo. A public key that does not
// parse, is not an elliptic curve key, or is on another curve is a
// ValidationException. The KMS ECDH keyring calls this.
func (s *Service) DeriveSharedSecret(ctx context.Context, in *DeriveSharedSecretInput) (*DeriveSharedSecretOutput, error) {
	if err := s.checkGrantTokens(ctx, in.GrantTokens); err != nil {
		return nil, err
	}
	if in.KeyAgreementAlgorithm == "" {
		return nil, validationf("KeyAgreementAlgorithm is required")
	}
	if err := checkEnum("KeyAgreementAlgorithm", in.KeyAgreementAlgorithm, awsKeyAgreement); err != nil {
		return nil, err
	}
	if len(in.PublicKey) == 0 || len(in.PublicKey) > maxPeerPublicKeyLen {
		return nil, validationf("PublicKey must be 1 to %d bytes, got %d", maxPeerPublicKeyLen, len(in.PublicKey))
	}
	var out *DeriveSharedSecretOutput
	err := s.view(ctx, func(r keyReader) error {
		k, err := s.usableKey(ctx, r, "kms:DeriveSharedSecret", in.KeyId, nil)
		if err != nil {
			return err
		}
		if k.Usage != UsageKeyAgreement {
			return s.usageError(k, "DeriveSharedSecret")
		}
		pk, err := r.privateKey(k)
		if err != nil {
			return err
		}
		ag, ok := pk.(agreer)
		if !ok {
			return s.keyError(k.ID, CodeInternal, "key %s of spec %s cannot agree keys", k.ID, k.Spec)
		}
		if in.DryRun {
			return dryRun()
		}
		secret, err := ag.agree(in.PublicKey)
		if err != nil {
			return s.keyError(k.ID, CodeValidation, "%v", err)
		}
		out = &DeriveSharedSecretOutput{KeyId: s.KeyARN(k.ID), SharedSecret: secret, KeyAgreementAlgorithm: AlgECDH, KeyOrigin: originOf(k)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
