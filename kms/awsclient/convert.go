package awsclient

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/envelopekms/envelope/kms"
)

// Conversions between envelope's KMS structs and the SDK's.
//
// Blobs, maps and string slices of inputs are handed to the SDK as they
// are: it only reads them while it serializes the request, within the call,
// and copying plaintext would only leave more copies of it in memory.
// Outputs are freshly decoded by the SDK, so their blobs and slices are
// taken over without copying too; nothing else refers to them.

// orZero returns in, or a zero input if in is nil, so that a nil input is
// sent as an empty request (and refused by validation) rather than panic.
func orZero[T any](in *T) *T {
	if in == nil {
		return new(T)
	}
	return in
}

// str returns a pointer to s, or nil (not sent) if s is empty.
func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// flag returns a pointer to true, or nil (not sent) for false.
func flag(b bool) *bool {
	if !b {
		return nil
	}
	return &b
}

// timestamp converts an SDK time.
func timestamp(t *time.Time) *kms.Timestamp {
	if t == nil {
		return nil
	}
	return &kms.Timestamp{Time: t.UTC()}
}

// strs converts a slice of SDK enum values to strings.
func strs[T ~string](v []T) []string {
	if v == nil {
		return nil
	}
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = string(s)
	}
	return out
}

// list returns v, or an empty slice if v is nil, so that list outputs
// encode as [] like the in-process service's.
func list[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// tagsIn converts tags for the SDK. TagValue is always sent: empty is a
// valid value.
func tagsIn(tags []kms.Tag) []types.Tag {
	if tags == nil {
		return nil
	}
	out := make([]types.Tag, len(tags))
	for i, t := range tags {
		out[i] = types.Tag{TagKey: aws.String(t.Key), TagValue: aws.String(t.Value)}
	}
	return out
}

// tagsOut converts tags from the SDK.
func tagsOut(tags []types.Tag) []kms.Tag {
	out := make([]kms.Tag, len(tags))
	for i, t := range tags {
		out[i] = kms.Tag{Key: aws.ToString(t.TagKey), Value: aws.ToString(t.TagValue)}
	}
	return out
}

// keyMetadata converts key metadata from the SDK. Fields envelope's
// KeyMetadata lacks (encapsulation algorithms; custom key store, CloudHSM,
// XKS and multi-Region details) are dropped.
func keyMetadata(m *types.KeyMetadata) *kms.KeyMetadata {
	if m == nil {
		return nil
	}
	return &kms.KeyMetadata{
		AWSAccountId:    aws.ToString(m.AWSAccountId),
		KeyId:           aws.ToString(m.KeyId),
		Arn:             aws.ToString(m.Arn),
		CreationDate:    timestamp(m.CreationDate),
		Enabled:         m.Enabled,
		Description:     aws.ToString(m.Description),
		KeyUsage:        string(m.KeyUsage),
		KeyState:        string(m.KeyState),
		DeletionDate:    timestamp(m.DeletionDate),
		ValidTo:         timestamp(m.ValidTo),
		Origin:          string(m.Origin),
		ExpirationModel: string(m.ExpirationModel),
		KeyManager:      string(m.KeyManager),
		//lint:ignore SA1019 envelope's KeyMetadata mirrors AWS's, which still carries the deprecated field.
		CustomerMasterKeySpec:       string(m.CustomerMasterKeySpec),
		KeySpec:                     string(m.KeySpec),
		EncryptionAlgorithms:        strs(m.EncryptionAlgorithms),
		SigningAlgorithms:           strs(m.SigningAlgorithms),
		MacAlgorithms:               strs(m.MacAlgorithms),
		KeyAgreementAlgorithms:      strs(m.KeyAgreementAlgorithms),
		MultiRegion:                 aws.ToBool(m.MultiRegion),
		PendingDeletionWindowInDays: m.PendingDeletionWindowInDays,
		CurrentKeyMaterialId:        aws.ToString(m.CurrentKeyMaterialId),
	}
}
