package awsclient

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/envelopekms/envelope/kms"
)

// Signing, MAC and key agreement. A signature or MAC that does not verify
// is the KMS's answer KMSInvalidSignatureException or
// KMSInvalidMacException, a *kms.Error like every other (errors.Is with
// kms.ErrInvalidSignature or kms.ErrInvalidMac).

// Sign implements [kms.API].
func (c *Client) Sign(ctx context.Context, in *kms.SignInput) (*kms.SignOutput, error) {
	in = orZero(in)
	out, err := c.api.Sign(ctx, &awskms.SignInput{
		KeyId:            str(in.KeyId),
		Message:          in.Message,
		MessageType:      types.MessageType(in.MessageType),
		GrantTokens:      in.GrantTokens,
		SigningAlgorithm: types.SigningAlgorithmSpec(in.SigningAlgorithm),
		DryRun:           flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("Sign", err)
	}
	return &kms.SignOutput{
		KeyId:            aws.ToString(out.KeyId),
		Signature:        out.Signature,
		SigningAlgorithm: string(out.SigningAlgorithm),
	}, nil
}

// Verify implements [kms.API].
func (c *Client) Verify(ctx context.Context, in *kms.VerifyInput) (*kms.VerifyOutput, error) {
	in = orZero(in)
	out, err := c.api.Verify(ctx, &awskms.VerifyInput{
		KeyId:            str(in.KeyId),
		Message:          in.Message,
		MessageType:      types.MessageType(in.MessageType),
		Signature:        in.Signature,
		SigningAlgorithm: types.SigningAlgorithmSpec(in.SigningAlgorithm),
		GrantTokens:      in.GrantTokens,
		DryRun:           flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("Verify", err)
	}
	return &kms.VerifyOutput{
		KeyId:            aws.ToString(out.KeyId),
		SignatureValid:   out.SignatureValid,
		SigningAlgorithm: string(out.SigningAlgorithm),
	}, nil
}

// GenerateMac implements [kms.API].
func (c *Client) GenerateMac(ctx context.Context, in *kms.GenerateMacInput) (*kms.GenerateMacOutput, error) {
	in = orZero(in)
	out, err := c.api.GenerateMac(ctx, &awskms.GenerateMacInput{
		Message:      in.Message,
		KeyId:        str(in.KeyId),
		MacAlgorithm: types.MacAlgorithmSpec(in.MacAlgorithm),
		GrantTokens:  in.GrantTokens,
		DryRun:       flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("GenerateMac", err)
	}
	return &kms.GenerateMacOutput{
		Mac:          out.Mac,
		MacAlgorithm: string(out.MacAlgorithm),
		KeyId:        aws.ToString(out.KeyId),
	}, nil
}

// VerifyMac implements [kms.API].
func (c *Client) VerifyMac(ctx context.Context, in *kms.VerifyMacInput) (*kms.VerifyMacOutput, error) {
	in = orZero(in)
	out, err := c.api.VerifyMac(ctx, &awskms.VerifyMacInput{
		Message:      in.Message,
		KeyId:        str(in.KeyId),
		MacAlgorithm: types.MacAlgorithmSpec(in.MacAlgorithm),
		Mac:          in.Mac,
		GrantTokens:  in.GrantTokens,
		DryRun:       flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("VerifyMac", err)
	}
	return &kms.VerifyMacOutput{
		KeyId:        aws.ToString(out.KeyId),
		MacValid:     out.MacValid,
		MacAlgorithm: string(out.MacAlgorithm),
	}, nil
}

// DeriveSharedSecret implements [kms.API]. The SDK's Recipient (attested
// enclaves) has no field in envelope's input and is never sent.
func (c *Client) DeriveSharedSecret(ctx context.Context, in *kms.DeriveSharedSecretInput) (*kms.DeriveSharedSecretOutput, error) {
	in = orZero(in)
	out, err := c.api.DeriveSharedSecret(ctx, &awskms.DeriveSharedSecretInput{
		KeyId:                 str(in.KeyId),
		KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpec(in.KeyAgreementAlgorithm),
		PublicKey:             in.PublicKey,
		GrantTokens:           in.GrantTokens,
		DryRun:                flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("DeriveSharedSecret", err)
	}
	return &kms.DeriveSharedSecretOutput{
		KeyId:                 aws.ToString(out.KeyId),
		SharedSecret:          out.SharedSecret,
		KeyAgreementAlgorithm: string(out.KeyAgreementAlgorithm),
		KeyOrigin:             string(out.KeyOrigin),
	}, nil
}
