package awsclient

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/envelopekms/envelope/kms"
)

// Cryptographic operations. The SDK's Recipient parameter (attested Nitro
// Enclaves) and DryRunModifiers have no field in envelope's inputs and are
// never sent, so CiphertextForRecipient never comes back.

// Encrypt implements [kms.API].
func (c *Client) Encrypt(ctx context.Context, in *kms.EncryptInput) (*kms.EncryptOutput, error) {
	in = orZero(in)
	out, err := c.api.Encrypt(ctx, &awskms.EncryptInput{
		KeyId:               str(in.KeyId),
		Plaintext:           in.Plaintext,
		EncryptionContext:   in.EncryptionContext,
		GrantTokens:         in.GrantTokens,
		EncryptionAlgorithm: types.EncryptionAlgorithmSpec(in.EncryptionAlgorithm),
		DryRun:              flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("Encrypt", err)
	}
	return &kms.EncryptOutput{
		CiphertextBlob:      out.CiphertextBlob,
		KeyId:               aws.ToString(out.KeyId),
		EncryptionAlgorithm: string(out.EncryptionAlgorithm),
	}, nil
}

// Decrypt implements [kms.API].
func (c *Client) Decrypt(ctx context.Context, in *kms.DecryptInput) (*kms.DecryptOutput, error) {
	in = orZero(in)
	out, err := c.api.Decrypt(ctx, &awskms.DecryptInput{
		CiphertextBlob:      in.CiphertextBlob,
		EncryptionContext:   in.EncryptionContext,
		GrantTokens:         in.GrantTokens,
		KeyId:               str(in.KeyId),
		EncryptionAlgorithm: types.EncryptionAlgorithmSpec(in.EncryptionAlgorithm),
		DryRun:              flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("Decrypt", err)
	}
	return &kms.DecryptOutput{
		KeyId:               aws.ToString(out.KeyId),
		Plaintext:           out.Plaintext,
		EncryptionAlgorithm: string(out.EncryptionAlgorithm),
		KeyMaterialId:       aws.ToString(out.KeyMaterialId),
	}, nil
}

// ReEncrypt implements [kms.API].
func (c *Client) ReEncrypt(ctx context.Context, in *kms.ReEncryptInput) (*kms.ReEncryptOutput, error) {
	in = orZero(in)
	out, err := c.api.ReEncrypt(ctx, &awskms.ReEncryptInput{
		CiphertextBlob:                 in.CiphertextBlob,
		SourceEncryptionContext:        in.SourceEncryptionContext,
		SourceKeyId:                    str(in.SourceKeyId),
		DestinationKeyId:               str(in.DestinationKeyId),
		DestinationEncryptionContext:   in.DestinationEncryptionContext,
		SourceEncryptionAlgorithm:      types.EncryptionAlgorithmSpec(in.SourceEncryptionAlgorithm),
		DestinationEncryptionAlgorithm: types.EncryptionAlgorithmSpec(in.DestinationEncryptionAlgorithm),
		GrantTokens:                    in.GrantTokens,
		DryRun:                         flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("ReEncrypt", err)
	}
	return &kms.ReEncryptOutput{
		CiphertextBlob:                 out.CiphertextBlob,
		SourceKeyId:                    aws.ToString(out.SourceKeyId),
		KeyId:                          aws.ToString(out.KeyId),
		SourceEncryptionAlgorithm:      string(out.SourceEncryptionAlgorithm),
		DestinationEncryptionAlgorithm: string(out.DestinationEncryptionAlgorithm),
		SourceKeyMaterialId:            aws.ToString(out.SourceKeyMaterialId),
		DestinationKeyMaterialId:       aws.ToString(out.DestinationKeyMaterialId),
	}, nil
}

// GenerateDataKey implements [kms.API].
func (c *Client) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput) (*kms.GenerateDataKeyOutput, error) {
	in = orZero(in)
	out, err := c.api.GenerateDataKey(ctx, &awskms.GenerateDataKeyInput{
		KeyId:             str(in.KeyId),
		EncryptionContext: in.EncryptionContext,
		NumberOfBytes:     in.NumberOfBytes,
		KeySpec:           types.DataKeySpec(in.KeySpec),
		GrantTokens:       in.GrantTokens,
		DryRun:            flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("GenerateDataKey", err)
	}
	return &kms.GenerateDataKeyOutput{
		CiphertextBlob: out.CiphertextBlob,
		Plaintext:      out.Plaintext,
		KeyId:          aws.ToString(out.KeyId),
		KeyMaterialId:  aws.ToString(out.KeyMaterialId),
	}, nil
}

// GenerateDataKeyWithoutPlaintext implements [kms.API].
func (c *Client) GenerateDataKeyWithoutPlaintext(ctx context.Context, in *kms.GenerateDataKeyWithoutPlaintextInput) (*kms.GenerateDataKeyWithoutPlaintextOutput, error) {
	in = orZero(in)
	out, err := c.api.GenerateDataKeyWithoutPlaintext(ctx, &awskms.GenerateDataKeyWithoutPlaintextInput{
		KeyId:             str(in.KeyId),
		EncryptionContext: in.EncryptionContext,
		NumberOfBytes:     in.NumberOfBytes,
		KeySpec:           types.DataKeySpec(in.KeySpec),
		GrantTokens:       in.GrantTokens,
		DryRun:            flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("GenerateDataKeyWithoutPlaintext", err)
	}
	return &kms.GenerateDataKeyWithoutPlaintextOutput{
		CiphertextBlob: out.CiphertextBlob,
		KeyId:          aws.ToString(out.KeyId),
		KeyMaterialId:  aws.ToString(out.KeyMaterialId),
	}, nil
}

// GenerateDataKeyPair implements [kms.API].
func (c *Client) GenerateDataKeyPair(ctx context.Context, in *kms.GenerateDataKeyPairInput) (*kms.GenerateDataKeyPairOutput, error) {
	in = orZero(in)
	out, err := c.api.GenerateDataKeyPair(ctx, &awskms.GenerateDataKeyPairInput{
		EncryptionContext: in.EncryptionContext,
		KeyId:             str(in.KeyId),
		KeyPairSpec:       types.DataKeyPairSpec(in.KeyPairSpec),
		GrantTokens:       in.GrantTokens,
		DryRun:            flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("GenerateDataKeyPair", err)
	}
	return &kms.GenerateDataKeyPairOutput{
		PrivateKeyCiphertextBlob: out.PrivateKeyCiphertextBlob,
		PrivateKeyPlaintext:      out.PrivateKeyPlaintext,
		PublicKey:                out.PublicKey,
		KeyId:                    aws.ToString(out.KeyId),
		KeyPairSpec:              string(out.KeyPairSpec),
		KeyMaterialId:            aws.ToString(out.KeyMaterialId),
	}, nil
}

// GenerateDataKeyPairWithoutPlaintext implements [kms.API].
func (c *Client) GenerateDataKeyPairWithoutPlaintext(ctx context.Context, in *kms.GenerateDataKeyPairWithoutPlaintextInput) (*kms.GenerateDataKeyPairWithoutPlaintextOutput, error) {
	in = orZero(in)
	out, err := c.api.GenerateDataKeyPairWithoutPlaintext(ctx, &awskms.GenerateDataKeyPairWithoutPlaintextInput{
		EncryptionContext: in.EncryptionContext,
		KeyId:             str(in.KeyId),
		KeyPairSpec:       types.DataKeyPairSpec(in.KeyPairSpec),
		GrantTokens:       in.GrantTokens,
		DryRun:            flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("GenerateDataKeyPairWithoutPlaintext", err)
	}
	return &kms.GenerateDataKeyPairWithoutPlaintextOutput{
		PrivateKeyCiphertextBlob: out.PrivateKeyCiphertextBlob,
		PublicKey:                out.PublicKey,
		KeyId:                    aws.ToString(out.KeyId),
		KeyPairSpec:              string(out.KeyPairSpec),
		KeyMaterialId:            aws.ToString(out.KeyMaterialId),
	}, nil
}

// GenerateRandom implements [kms.API].
func (c *Client) GenerateRandom(ctx context.Context, in *kms.GenerateRandomInput) (*kms.GenerateRandomOutput, error) {
	in = orZero(in)
	out, err := c.api.GenerateRandom(ctx, &awskms.GenerateRandomInput{
		NumberOfBytes:    in.NumberOfBytes,
		CustomKeyStoreId: str(in.CustomKeyStoreId),
	})
	if err != nil {
		return nil, c.fail("GenerateRandom", err)
	}
	return &kms.GenerateRandomOutput{Plaintext: out.Plaintext}, nil
}

// GetPublicKey implements [kms.API]. The response's
// EncapsulationAlgorithms have no field in envelope's output and are
// dropped.
func (c *Client) GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput) (*kms.GetPublicKeyOutput, error) {
	in = orZero(in)
	out, err := c.api.GetPublicKey(ctx, &awskms.GetPublicKeyInput{
		KeyId:       str(in.KeyId),
		GrantTokens: in.GrantTokens,
	})
	if err != nil {
		return nil, c.fail("GetPublicKey", err)
	}
	return &kms.GetPublicKeyOutput{
		KeyId:     aws.ToString(out.KeyId),
		PublicKey: out.PublicKey,
		//lint:ignore SA1019 envelope's output mirrors AWS's, which still carries the deprecated field.
		CustomerMasterKeySpec:  string(out.CustomerMasterKeySpec),
		KeySpec:                string(out.KeySpec),
		KeyUsage:               string(out.KeyUsage),
		EncryptionAlgorithms:   strs(out.EncryptionAlgorithms),
		SigningAlgorithms:      strs(out.SigningAlgorithms),
		KeyAgreementAlgorithms: strs(out.KeyAgreementAlgorithms),
	}, nil
}
