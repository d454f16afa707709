package awsclient

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/envelopekms/envelope/kms"
)

// Imported key material: GetParametersForImport, ImportKeyMaterial and
// DeleteImportedKeyMaterial.

// GetParametersForImport implements [kms.API].
func (c *Client) GetParametersForImport(ctx context.Context, in *kms.GetParametersForImportInput) (*kms.GetParametersForImportOutput, error) {
	in = orZero(in)
	out, err := c.api.GetParametersForImport(ctx, &awskms.GetParametersForImportInput{
		KeyId:             str(in.KeyId),
		WrappingAlgorithm: types.AlgorithmSpec(in.WrappingAlgorithm),
		WrappingKeySpec:   types.WrappingKeySpec(in.WrappingKeySpec),
	})
	if err != nil {
		return nil, c.fail("GetParametersForImport", err)
	}
	return &kms.GetParametersForImportOutput{
		KeyId:             aws.ToString(out.KeyId),
		ImportToken:       out.ImportToken,
		PublicKey:         out.PublicKey,
		ParametersValidTo: timestamp(out.ParametersValidTo),
	}, nil
}

// ImportKeyMaterial implements [kms.API].
func (c *Client) ImportKeyMaterial(ctx context.Context, in *kms.ImportKeyMaterialInput) (*kms.ImportKeyMaterialOutput, error) {
	in = orZero(in)
	req := &awskms.ImportKeyMaterialInput{
		KeyId:                  str(in.KeyId),
		ImportToken:            in.ImportToken,
		EncryptedKeyMaterial:   in.EncryptedKeyMaterial,
		ExpirationModel:        types.ExpirationModelType(in.ExpirationModel),
		ImportType:             types.ImportType(in.ImportType),
		KeyMaterialDescription: str(in.KeyMaterialDescription),
		KeyMaterialId:          str(in.KeyMaterialId),
	}
	if in.ValidTo != nil {
		req.ValidTo = aws.Time(in.ValidTo.Time)
	}
	out, err := c.api.ImportKeyMaterial(ctx, req)
	if err != nil {
		return nil, c.fail("ImportKeyMaterial", err)
	}
	return &kms.ImportKeyMaterialOutput{KeyId: aws.ToString(out.KeyId), KeyMaterialId: aws.ToString(out.KeyMaterialId)}, nil
}

// DeleteImportedKeyMaterial implements [kms.API].
func (c *Client) DeleteImportedKeyMaterial(ctx context.Context, in *kms.DeleteImportedKeyMaterialInput) (*kms.DeleteImportedKeyMaterialOutput, error) {
	in = orZero(in)
	out, err := c.api.DeleteImportedKeyMaterial(ctx, &awskms.DeleteImportedKeyMaterialInput{
		KeyId:         str(in.KeyId),
		KeyMaterialId: str(in.KeyMaterialId),
	})
	if err != nil {
		return nil, c.fail("DeleteImportedKeyMaterial", err)
	}
	return &kms.DeleteImportedKeyMaterialOutput{KeyId: aws.ToString(out.KeyId), KeyMaterialId: aws.ToString(out.KeyMaterialId)}, nil
}
