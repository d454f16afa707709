package kms

import (
	"context"
	"crypto/hmac"
	"slices"
	"strings"
)

// macKey loads the HMAC key keyID names for action through r, checks it is
// usable, of usage GENERATE_VERIFY_MAC and supports alg, and returns the
// MAC of message (the caller clears nothing: a MAC is no secret).
func (s *Service) mac(ctx context.Context, r keyReader, action, op, keyID, alg string, message []byte, dry bool) (*KeyRecord, []byte, error) {
	k, err := s.usableKey(ctx, r, action, keyID, nil)
	if err != nil {
		return nil, nil, err
	}
	if k.Usage != UsageGenerateVerifyMac {
		return nil, nil, s.usageError(k, op)
	}
	spec := keySpecs[k.Spec]
	if !slices.Contains(spec.algorithms(k.Usage), alg) {
		return nil, nil, s.keyError(k.ID, CodeInvalidKeyUsage, "%s is an %s key: MacAlgorithm %s is not valid for it (valid: %s).",
			s.KeyARN(k.ID), k.Spec, alg, strings.Join(spec.algorithms(k.Usage), ", "))
	}
	if dry {
		return nil, nil, dryRun()
	}
	m, err := r.material(k, current(k).Version)
	if err != nil {
		return nil, nil, err
	}
	defer clear(m)
	h := hmac.New(spec.hmacHash.New, m)
	h.Write(message)
	return k, h.Sum(nil), nil
}

// checkMacRequest validates what GenerateMac and VerifyMac are given
// before any key is read.
func (s *Service) checkMacRequest(ctx context.Context, message []byte, alg string, tokens []string) error {
	if err := s.checkGrantTokens(ctx, tokens); err != nil {
		return err
	}
	if alg == "" {
		return validationf("MacAlgorithm is required")
	}
	if err := checkEnum("MacAlgorithm", alg, awsMacAlgorithms); err != nil {
		return err
	}
	if len(message) == 0 || len(message) > maxPlaintextLen {
		return validationf("Message must be 1 to %d bytes, got %d", maxPlaintextLen, len(message))
	}
	return nil
}

// GenerateMac implements [API]: the HMAC (RFC 2104) of a message of up to
// 4096 bytes under an HMAC key, with the key's MAC algorithm.
func (s *Service) GenerateMac(ctx context.Context, in *GenerateMacInput) (*GenerateMacOutput, error) {
	if err := s.checkMacRequest(ctx, in.Message, in.MacAlgorithm, in.GrantTokens); err != nil {
		return nil, err
	}
	var out *GenerateMacOutput
	err := s.view(ctx, func(r keyReader) error {
		k, mac, err := s.mac(ctx, r, "kms:GenerateMac", "GenerateMac", in.KeyId, in.MacAlgorithm, in.Message, in.DryRun)
		if err != nil {
			return err
		}
		out = &GenerateMacOutput{Mac: mac, MacAlgorithm: in.MacAlgorithm, KeyId: s.KeyARN(k.ID)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// VerifyMac implements [API]: it recomputes the HMAC and compares it in
// constant time; a MAC that differs fails with KMSInvalidMacException.
func (s *Service) VerifyMac(ctx context.Context, in *VerifyMacInput) (*VerifyMacOutput, error) {
	if err := s.checkMacRequest(ctx, in.Message, in.MacAlgorithm, in.GrantTokens); err != nil {
		return nil, err
	}
	if len(in.Mac) == 0 || len(in.Mac) > blobMaxLen {
		return nil, validationf("Mac must be 1 to %d bytes, got %d", blobMaxLen, len(in.Mac))
	}
	var out *VerifyMacOutput
	err := s.view(ctx, func(r keyReader) error {
		k, mac, err := s.mac(ctx, r, "kms:VerifyMac", "VerifyMac", in.KeyId, in.MacAlgorithm, in.Message, in.DryRun)
		if err != nil {
			return err
		}
		if !hmac.Equal(mac, in.Mac) {
			return s.keyError(k.ID, CodeInvalidMac, "the MAC does not verify with %s and %s: the message, the MAC, the key or the algorithm differs from those it was made with", s.KeyARN(k.ID), in.MacAlgorithm)
		}
		out = &VerifyMacOutput{KeyId: s.KeyARN(k.ID), MacValid: true, MacAlgorithm: in.MacAlgorithm}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
