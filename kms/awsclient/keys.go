package awsclient

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/envelopekms/envelope/kms"
)

// Key management: keys, aliases, tags, rotation and policies.

// CreateKey implements [kms.API].
func (c *Client) CreateKey(ctx context.Context, in *kms.CreateKeyInput) (*kms.CreateKeyOutput, error) {
	in = orZero(in)
	out, err := c.api.CreateKey(ctx, &awskms.CreateKeyInput{
		Policy:      str(in.Policy),
		Description: str(in.Description),
		KeyUsage:    types.KeyUsageType(in.KeyUsage),
		//lint:ignore SA1019 callers may still send the deprecated parameter; AWS accepts it.
		CustomerMasterKeySpec:          types.CustomerMasterKeySpec(in.CustomerMasterKeySpec),
		KeySpec:                        types.KeySpec(in.KeySpec),
		Origin:                         types.OriginType(in.Origin),
		BypassPolicyLockoutSafetyCheck: in.BypassPolicyLockoutSafetyCheck,
		Tags:                           tagsIn(in.Tags),
		MultiRegion:                    in.MultiRegion,
		CustomKeyStoreId:               str(in.CustomKeyStoreId),
		XksKeyId:                       str(in.XksKeyId),
	})
	if err != nil {
		return nil, c.fail("CreateKey", err)
	}
	return &kms.CreateKeyOutput{KeyMetadata: keyMetadata(out.KeyMetadata)}, nil
}

// DescribeKey implements [kms.API].
func (c *Client) DescribeKey(ctx context.Context, in *kms.DescribeKeyInput) (*kms.DescribeKeyOutput, error) {
	in = orZero(in)
	out, err := c.api.DescribeKey(ctx, &awskms.DescribeKeyInput{
		KeyId:       str(in.KeyId),
		GrantTokens: in.GrantTokens,
	})
	if err != nil {
		return nil, c.fail("DescribeKey", err)
	}
	return &kms.DescribeKeyOutput{KeyMetadata: keyMetadata(out.KeyMetadata)}, nil
}

// ListKeys implements [kms.API].
func (c *Client) ListKeys(ctx context.Context, in *kms.ListKeysInput) (*kms.ListKeysOutput, error) {
	in = orZero(in)
	out, err := c.api.ListKeys(ctx, &awskms.ListKeysInput{
		Limit:  in.Limit,
		Marker: str(in.Marker),
	})
	if err != nil {
		return nil, c.fail("ListKeys", err)
	}
	keys := make([]kms.KeyListEntry, len(out.Keys))
	for i, k := range out.Keys {
		keys[i] = kms.KeyListEntry{KeyId: aws.ToString(k.KeyId), KeyArn: aws.ToString(k.KeyArn)}
	}
	return &kms.ListKeysOutput{Keys: keys, NextMarker: aws.ToString(out.NextMarker), Truncated: out.Truncated}, nil
}

// UpdateKeyDescription implements [kms.API]. An empty Description is sent:
// it clears the description.
func (c *Client) UpdateKeyDescription(ctx context.Context, in *kms.UpdateKeyDescriptionInput) (*kms.UpdateKeyDescriptionOutput, error) {
	in = orZero(in)
	_, err := c.api.UpdateKeyDescription(ctx, &awskms.UpdateKeyDescriptionInput{
		KeyId:       str(in.KeyId),
		Description: aws.String(in.Description),
	})
	if err != nil {
		return nil, c.fail("UpdateKeyDescription", err)
	}
	return &kms.UpdateKeyDescriptionOutput{}, nil
}

// EnableKey implements [kms.API].
func (c *Client) EnableKey(ctx context.Context, in *kms.EnableKeyInput) (*kms.EnableKeyOutput, error) {
	in = orZero(in)
	if _, err := c.api.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: str(in.KeyId)}); err != nil {
		return nil, c.fail("EnableKey", err)
	}
	return &kms.EnableKeyOutput{}, nil
}

// DisableKey implements [kms.API].
func (c *Client) DisableKey(ctx context.Context, in *kms.DisableKeyInput) (*kms.DisableKeyOutput, error) {
	in = orZero(in)
	if _, err := c.api.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: str(in.KeyId)}); err != nil {
		return nil, c.fail("DisableKey", err)
	}
	return &kms.DisableKeyOutput{}, nil
}

// ScheduleKeyDeletion implements [kms.API].
func (c *Client) ScheduleKeyDeletion(ctx context.Context, in *kms.ScheduleKeyDeletionInput) (*kms.ScheduleKeyDeletionOutput, error) {
	in = orZero(in)
	out, err := c.api.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{
		KeyId:               str(in.KeyId),
		PendingWindowInDays: in.PendingWindowInDays,
	})
	if err != nil {
		return nil, c.fail("ScheduleKeyDeletion", err)
	}
	return &kms.ScheduleKeyDeletionOutput{
		KeyId:               aws.ToString(out.KeyId),
		DeletionDate:        timestamp(out.DeletionDate),
		KeyState:            string(out.KeyState),
		PendingWindowInDays: aws.ToInt32(out.PendingWindowInDays),
	}, nil
}

// CancelKeyDeletion implements [kms.API].
func (c *Client) CancelKeyDeletion(ctx context.Context, in *kms.CancelKeyDeletionInput) (*kms.CancelKeyDeletionOutput, error) {
	in = orZero(in)
	out, err := c.api.CancelKeyDeletion(ctx, &awskms.CancelKeyDeletionInput{KeyId: str(in.KeyId)})
	if err != nil {
		return nil, c.fail("CancelKeyDeletion", err)
	}
	return &kms.CancelKeyDeletionOutput{KeyId: aws.ToString(out.KeyId)}, nil
}

// CreateAlias implements [kms.API].
func (c *Client) CreateAlias(ctx context.Context, in *kms.CreateAliasInput) (*kms.CreateAliasOutput, error) {
	in = orZero(in)
	_, err := c.api.CreateAlias(ctx, &awskms.CreateAliasInput{
		AliasName:   str(in.AliasName),
		TargetKeyId: str(in.TargetKeyId),
	})
	if err != nil {
		return nil, c.fail("CreateAlias", err)
	}
	return &kms.CreateAliasOutput{}, nil
}

// UpdateAlias implements [kms.API].
func (c *Client) UpdateAlias(ctx context.Context, in *kms.UpdateAliasInput) (*kms.UpdateAliasOutput, error) {
	in = orZero(in)
	_, err := c.api.UpdateAlias(ctx, &awskms.UpdateAliasInput{
		AliasName:   str(in.AliasName),
		TargetKeyId: str(in.TargetKeyId),
	})
	if err != nil {
		return nil, c.fail("UpdateAlias", err)
	}
	return &kms.UpdateAliasOutput{}, nil
}

// DeleteAlias implements [kms.API].
func (c *Client) DeleteAlias(ctx context.Context, in *kms.DeleteAliasInput) (*kms.DeleteAliasOutput, error) {
	in = orZero(in)
	if _, err := c.api.DeleteAlias(ctx, &awskms.DeleteAliasInput{AliasName: str(in.AliasName)}); err != nil {
		return nil, c.fail("DeleteAlias", err)
	}
	return &kms.DeleteAliasOutput{}, nil
}

// ListAliases implements [kms.API].
func (c *Client) ListAliases(ctx context.Context, in *kms.ListAliasesInput) (*kms.ListAliasesOutput, error) {
	in = orZero(in)
	out, err := c.api.ListAliases(ctx, &awskms.ListAliasesInput{
		KeyId:  str(in.KeyId),
		Limit:  in.Limit,
		Marker: str(in.Marker),
	})
	if err != nil {
		return nil, c.fail("ListAliases", err)
	}
	aliases := make([]kms.AliasListEntry, len(out.Aliases))
	for i, a := range out.Aliases {
		aliases[i] = kms.AliasListEntry{
			AliasName:       aws.ToString(a.AliasName),
			AliasArn:        aws.ToString(a.AliasArn),
			TargetKeyId:     aws.ToString(a.TargetKeyId),
			CreationDate:    timestamp(a.CreationDate),
			LastUpdatedDate: timestamp(a.LastUpdatedDate),
		}
	}
	return &kms.ListAliasesOutput{Aliases: aliases, NextMarker: aws.ToString(out.NextMarker), Truncated: out.Truncated}, nil
}

// TagResource implements [kms.API].
func (c *Client) TagResource(ctx context.Context, in *kms.TagResourceInput) (*kms.TagResourceOutput, error) {
	in = orZero(in)
	_, err := c.api.TagResource(ctx, &awskms.TagResourceInput{
		KeyId: str(in.KeyId),
		Tags:  tagsIn(in.Tags),
	})
	if err != nil {
		return nil, c.fail("TagResource", err)
	}
	return &kms.TagResourceOutput{}, nil
}

// UntagResource implements [kms.API].
func (c *Client) UntagResource(ctx context.Context, in *kms.UntagResourceInput) (*kms.UntagResourceOutput, error) {
	in = orZero(in)
	_, err := c.api.UntagResource(ctx, &awskms.UntagResourceInput{
		KeyId:   str(in.KeyId),
		TagKeys: in.TagKeys,
	})
	if err != nil {
		return nil, c.fail("UntagResource", err)
	}
	return &kms.UntagResourceOutput{}, nil
}

// ListResourceTags implements [kms.API].
func (c *Client) ListResourceTags(ctx context.Context, in *kms.ListResourceTagsInput) (*kms.ListResourceTagsOutput, error) {
	in = orZero(in)
	out, err := c.api.ListResourceTags(ctx, &awskms.ListResourceTagsInput{
		KeyId:  str(in.KeyId),
		Limit:  in.Limit,
		Marker: str(in.Marker),
	})
	if err != nil {
		return nil, c.fail("ListResourceTags", err)
	}
	return &kms.ListResourceTagsOutput{Tags: tagsOut(out.Tags), NextMarker: aws.ToString(out.NextMarker), Truncated: out.Truncated}, nil
}

// EnableKeyRotation implements [kms.API].
func (c *Client) EnableKeyRotation(ctx context.Context, in *kms.EnableKeyRotationInput) (*kms.EnableKeyRotationOutput, error) {
	in = orZero(in)
	_, err := c.api.EnableKeyRotation(ctx, &awskms.EnableKeyRotationInput{
		KeyId:                str(in.KeyId),
		RotationPeriodInDays: in.RotationPeriodInDays,
	})
	if err != nil {
		return nil, c.fail("EnableKeyRotation", err)
	}
	return &kms.EnableKeyRotationOutput{}, nil
}

// DisableKeyRotation implements [kms.API].
func (c *Client) DisableKeyRotation(ctx context.Context, in *kms.DisableKeyRotationInput) (*kms.DisableKeyRotationOutput, error) {
	in = orZero(in)
	if _, err := c.api.DisableKeyRotation(ctx, &awskms.DisableKeyRotationInput{KeyId: str(in.KeyId)}); err != nil {
		return nil, c.fail("DisableKeyRotation", err)
	}
	return &kms.DisableKeyRotationOutput{}, nil
}

// GetKeyRotationStatus implements [kms.API]. The response's
// OnDemandRotationStartDate has no field in envelope's output and is
// dropped.
func (c *Client) GetKeyRotationStatus(ctx context.Context, in *kms.GetKeyRotationStatusInput) (*kms.GetKeyRotationStatusOutput, error) {
	in = orZero(in)
	out, err := c.api.GetKeyRotationStatus(ctx, &awskms.GetKeyRotationStatusInput{KeyId: str(in.KeyId)})
	if err != nil {
		return nil, c.fail("GetKeyRotationStatus", err)
	}
	return &kms.GetKeyRotationStatusOutput{
		KeyRotationEnabled:   out.KeyRotationEnabled,
		KeyId:                aws.ToString(out.KeyId),
		RotationPeriodInDays: out.RotationPeriodInDays,
		NextRotationDate:     timestamp(out.NextRotationDate),
	}, nil
}

// RotateKeyOnDemand implements [kms.API].
func (c *Client) RotateKeyOnDemand(ctx context.Context, in *kms.RotateKeyOnDemandInput) (*kms.RotateKeyOnDemandOutput, error) {
	in = orZero(in)
	out, err := c.api.RotateKeyOnDemand(ctx, &awskms.RotateKeyOnDemandInput{KeyId: str(in.KeyId)})
	if err != nil {
		return nil, c.fail("RotateKeyOnDemand", err)
	}
	return &kms.RotateKeyOnDemandOutput{KeyId: aws.ToString(out.KeyId)}, nil
}

// ListKeyRotations implements [kms.API].
func (c *Client) ListKeyRotations(ctx context.Context, in *kms.ListKeyRotationsInput) (*kms.ListKeyRotationsOutput, error) {
	in = orZero(in)
	out, err := c.api.ListKeyRotations(ctx, &awskms.ListKeyRotationsInput{
		KeyId:              str(in.KeyId),
		IncludeKeyMaterial: types.IncludeKeyMaterial(in.IncludeKeyMaterial),
		Limit:              in.Limit,
		Marker:             str(in.Marker),
	})
	if err != nil {
		return nil, c.fail("ListKeyRotations", err)
	}
	rotations := make([]kms.RotationsListEntry, len(out.Rotations))
	for i, r := range out.Rotations {
		rotations[i] = kms.RotationsListEntry{
			KeyId:                  aws.ToString(r.KeyId),
			KeyMaterialId:          aws.ToString(r.KeyMaterialId),
			KeyMaterialDescription: aws.ToString(r.KeyMaterialDescription),
			ImportState:            string(r.ImportState),
			KeyMaterialState:       string(r.KeyMaterialState),
			ExpirationModel:        string(r.ExpirationModel),
			ValidTo:                timestamp(r.ValidTo),
			RotationDate:           timestamp(r.RotationDate),
			RotationType:           string(r.RotationType),
		}
	}
	return &kms.ListKeyRotationsOutput{Rotations: rotations, NextMarker: aws.ToString(out.NextMarker), Truncated: out.Truncated}, nil
}

// GetKeyPolicy implements [kms.API].
func (c *Client) GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput) (*kms.GetKeyPolicyOutput, error) {
	in = orZero(in)
	out, err := c.api.GetKeyPolicy(ctx, &awskms.GetKeyPolicyInput{
		KeyId:      str(in.KeyId),
		PolicyName: str(in.PolicyName),
	})
	if err != nil {
		return nil, c.fail("GetKeyPolicy", err)
	}
	return &kms.GetKeyPolicyOutput{Policy: aws.ToString(out.Policy), PolicyName: aws.ToString(out.PolicyName)}, nil
}

// PutKeyPolicy implements [kms.API].
func (c *Client) PutKeyPolicy(ctx context.Context, in *kms.PutKeyPolicyInput) (*kms.PutKeyPolicyOutput, error) {
	in = orZero(in)
	_, err := c.api.PutKeyPolicy(ctx, &awskms.PutKeyPolicyInput{
		KeyId:                          str(in.KeyId),
		PolicyName:                     str(in.PolicyName),
		Policy:                         str(in.Policy),
		BypassPolicyLockoutSafetyCheck: in.BypassPolicyLockoutSafetyCheck,
	})
	if err != nil {
		return nil, c.fail("PutKeyPolicy", err)
	}
	return &kms.PutKeyPolicyOutput{}, nil
}

// ListKeyPolicies implements [kms.API].
func (c *Client) ListKeyPolicies(ctx context.Context, in *kms.ListKeyPoliciesInput) (*kms.ListKeyPoliciesOutput, error) {
	in = orZero(in)
	out, err := c.api.ListKeyPolicies(ctx, &awskms.ListKeyPoliciesInput{
		KeyId:  str(in.KeyId),
		Limit:  in.Limit,
		Marker: str(in.Marker),
	})
	if err != nil {
		return nil, c.fail("ListKeyPolicies", err)
	}
	return &kms.ListKeyPoliciesOutput{PolicyNames: list(out.PolicyNames), NextMarker: aws.ToString(out.NextMarker), Truncated: out.Truncated}, nil
}
