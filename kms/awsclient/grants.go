package awsclient

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/envelopekms/envelope/kms"
)

// grantOps converts grant operation names for the SDK.
func grantOps(ops []string) []types.GrantOperation {
	if ops == nil {
		return nil
	}
	out := make([]types.GrantOperation, len(ops))
	for i, o := range ops {
		out[i] = types.GrantOperation(o)
	}
	return out
}

func constraintsIn(c *kms.GrantConstraints) *types.GrantConstraints {
	if c == nil {
		return nil
	}
	return &types.GrantConstraints{EncryptionContextEquals: c.EncryptionContextEquals, EncryptionContextSubset: c.EncryptionContextSubset}
}

func constraintsOut(c *types.GrantConstraints) *kms.GrantConstraints {
	if c == nil || len(c.EncryptionContextEquals) == 0 && len(c.EncryptionContextSubset) == 0 {
		return nil
	}
	return &kms.GrantConstraints{EncryptionContextEquals: c.EncryptionContextEquals, EncryptionContextSubset: c.EncryptionContextSubset}
}

func grantsOut(out []types.GrantListEntry, next *string, truncated bool) *kms.ListGrantsOutput {
	res := &kms.ListGrantsOutput{Grants: []kms.GrantListEntry{}, NextMarker: aws.ToString(next), Truncated: truncated}
	for _, g := range out {
		res.Grants = append(res.Grants, kms.GrantListEntry{
			KeyId: aws.ToString(g.KeyId), GrantId: aws.ToString(g.GrantId), Name: aws.ToString(g.Name),
			CreationDate: timestamp(g.CreationDate), GranteePrincipal: aws.ToString(g.GranteePrincipal),
			RetiringPrincipal: aws.ToString(g.RetiringPrincipal), IssuingAccount: aws.ToString(g.IssuingAccount),
			Operations: list(strs(g.Operations)), Constraints: constraintsOut(g.Constraints),
		})
	}
	return res
}

// CreateGrant implements [kms.API].
func (c *Client) CreateGrant(ctx context.Context, in *kms.CreateGrantInput) (*kms.CreateGrantOutput, error) {
	in = orZero(in)
	out, err := c.api.CreateGrant(ctx, &awskms.CreateGrantInput{
		KeyId:                    str(in.KeyId),
		GranteePrincipal:         str(in.GranteePrincipal),
		RetiringPrincipal:        str(in.RetiringPrincipal),
		Operations:               grantOps(in.Operations),
		Constraints:              constraintsIn(in.Constraints),
		GrantTokens:              in.GrantTokens,
		Name:                     str(in.Name),
		DryRun:                   flag(in.DryRun),
		GranteeServicePrincipal:  str(in.GranteeServicePrincipal),
		RetiringServicePrincipal: str(in.RetiringServicePrincipal),
	})
	if err != nil {
		return nil, c.fail("CreateGrant", err)
	}
	return &kms.CreateGrantOutput{GrantToken: aws.ToString(out.GrantToken), GrantId: aws.ToString(out.GrantId)}, nil
}

// ListGrants implements [kms.API].
func (c *Client) ListGrants(ctx context.Context, in *kms.ListGrantsInput) (*kms.ListGrantsOutput, error) {
	in = orZero(in)
	out, err := c.api.ListGrants(ctx, &awskms.ListGrantsInput{
		KeyId:            str(in.KeyId),
		Limit:            in.Limit,
		Marker:           str(in.Marker),
		GrantId:          str(in.GrantId),
		GranteePrincipal: str(in.GranteePrincipal),
	})
	if err != nil {
		return nil, c.fail("ListGrants", err)
	}
	return grantsOut(out.Grants, out.NextMarker, out.Truncated), nil
}

// ListRetirableGrants implements [kms.API].
func (c *Client) ListRetirableGrants(ctx context.Context, in *kms.ListRetirableGrantsInput) (*kms.ListRetirableGrantsOutput, error) {
	in = orZero(in)
	out, err := c.api.ListRetirableGrants(ctx, &awskms.ListRetirableGrantsInput{
		Limit:                    in.Limit,
		Marker:                   str(in.Marker),
		RetiringPrincipal:        str(in.RetiringPrincipal),
		RetiringServicePrincipal: str(in.RetiringServicePrincipal),
	})
	if err != nil {
		return nil, c.fail("ListRetirableGrants", err)
	}
	return grantsOut(out.Grants, out.NextMarker, out.Truncated), nil
}

// RetireGrant implements [kms.API].
func (c *Client) RetireGrant(ctx context.Context, in *kms.RetireGrantInput) (*kms.RetireGrantOutput, error) {
	in = orZero(in)
	_, err := c.api.RetireGrant(ctx, &awskms.RetireGrantInput{
		GrantToken: str(in.GrantToken),
		KeyId:      str(in.KeyId),
		GrantId:    str(in.GrantId),
		DryRun:     flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("RetireGrant", err)
	}
	return &kms.RetireGrantOutput{}, nil
}

// RevokeGrant implements [kms.API].
func (c *Client) RevokeGrant(ctx context.Context, in *kms.RevokeGrantInput) (*kms.RevokeGrantOutput, error) {
	in = orZero(in)
	_, err := c.api.RevokeGrant(ctx, &awskms.RevokeGrantInput{
		KeyId:   str(in.KeyId),
		GrantId: str(in.GrantId),
		DryRun:  flag(in.DryRun),
	})
	if err != nil {
		return nil, c.fail("RevokeGrant", err)
	}
	return &kms.RevokeGrantOutput{}, nil
}
