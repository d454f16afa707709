package kms

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// API is the set of KMS operations. The in-process [Service] implements it,
// and so does the client of a remote AWS-KMS-API endpoint, so keyrings and
// the CLI work the same against either. Inputs and outputs carry AWS KMS's
// field names and JSON encoding (blobs base64, timestamps epoch seconds).
type API interface {
	CreateKey(ctx context.Context, in *CreateKeyInput) (*CreateKeyOutput, error)
	DescribeKey(ctx context.Context, in *DescribeKeyInput) (*DescribeKeyOutput, error)
	ListKeys(ctx context.Context, in *ListKeysInput) (*ListKeysOutput, error)
	UpdateKeyDescription(ctx context.Context, in *UpdateKeyDescriptionInput) (*UpdateKeyDescriptionOutput, error)
	EnableKey(ctx context.Context, in *EnableKeyInput) (*EnableKeyOutput, error)
	DisableKey(ctx context.Context, in *DisableKeyInput) (*DisableKeyOutput, error)
	ScheduleKeyDeletion(ctx context.Context, in *ScheduleKeyDeletionInput) (*ScheduleKeyDeletionOutput, error)
	CancelKeyDeletion(ctx context.Context, in *CancelKeyDeletionInput) (*CancelKeyDeletionOutput, error)

	CreateAlias(ctx context.Context, in *CreateAliasInput) (*CreateAliasOutput, error)
	UpdateAlias(ctx context.Context, in *UpdateAliasInput) (*UpdateAliasOutput, error)
	DeleteAlias(ctx context.Context, in *DeleteAliasInput) (*DeleteAliasOutput, error)
	ListAliases(ctx context.Context, in *ListAliasesInput) (*ListAliasesOutput, error)

	TagResource(ctx context.Context, in *TagResourceInput) (*TagResourceOutput, error)
	UntagResource(ctx context.Context, in *UntagResourceInput) (*UntagResourceOutput, error)
	ListResourceTags(ctx context.Context, in *ListResourceTagsInput) (*ListResourceTagsOutput, error)

	EnableKeyRotation(ctx context.Context, in *EnableKeyRotationInput) (*EnableKeyRotationOutput, error)
	DisableKeyRotation(ctx context.Context, in *DisableKeyRotationInput) (*DisableKeyRotationOutput, error)
	GetKeyRotationStatus(ctx context.Context, in *GetKeyRotationStatusInput) (*GetKeyRotationStatusOutput, error)
	RotateKeyOnDemand(ctx context.Context, in *RotateKeyOnDemandInput) (*RotateKeyOnDemandOutput, error)
	ListKeyRotations(ctx context.Context, in *ListKeyRotationsInput) (*ListKeyRotationsOutput, error)

	Encrypt(ctx context.Context, in *EncryptInput) (*EncryptOutput, error)
	Decrypt(ctx context.Context, in *DecryptInput) (*DecryptOutput, error)
	ReEncrypt(ctx context.Context, in *ReEncryptInput) (*ReEncryptOutput, error)
	GenerateDataKey(ctx context.Context, in *GenerateDataKeyInput) (*GenerateDataKeyOutput, error)
	GenerateDataKeyWithoutPlaintext(ctx context.Context, in *GenerateDataKeyWithoutPlaintextInput) (*GenerateDataKeyWithoutPlaintextOutput, error)
	GenerateDataKeyPair(ctx context.Context, in *GenerateDataKeyPairInput) (*GenerateDataKeyPairOutput, error)
	GenerateDataKeyPairWithoutPlaintext(ctx context.Context, in *GenerateDataKeyPairWithoutPlaintextInput) (*GenerateDataKeyPairWithoutPlaintextOutput, error)
	GenerateRandom(ctx context.Context, in *GenerateRandomInput) (*GenerateRandomOutput, error)
	GetPublicKey(ctx context.Context, in *GetPublicKeyInput) (*GetPublicKeyOutput, error)

	Sign(ctx context.Context, in *SignInput) (*SignOutput, error)
	Verify(ctx context.Context, in *VerifyInput) (*VerifyOutput, error)
	GenerateMac(ctx context.Context, in *GenerateMacInput) (*GenerateMacOutput, error)
	VerifyMac(ctx context.Context, in *VerifyMacInput) (*VerifyMacOutput, error)
	DeriveSharedSecret(ctx context.Context, in *DeriveSharedSecretInput) (*DeriveSharedSecretOutput, error)

	GetParametersForImport(ctx context.Context, in *GetParametersForImportInput) (*GetParametersForImportOutput, error)
	ImportKeyMaterial(ctx context.Context, in *ImportKeyMaterialInput) (*ImportKeyMaterialOutput, error)
	DeleteImportedKeyMaterial(ctx context.Context, in *DeleteImportedKeyMaterialInput) (*DeleteImportedKeyMaterialOutput, error)

	GetKeyPolicy(ctx context.Context, in *GetKeyPolicyInput) (*GetKeyPolicyOutput, error)
	PutKeyPolicy(ctx context.Context, in *PutKeyPolicyInput) (*PutKeyPolicyOutput, error)
	ListKeyPolicies(ctx context.Context, in *ListKeyPoliciesInput) (*ListKeyPoliciesOutput, error)

	CreateGrant(ctx context.Context, in *CreateGrantInput) (*CreateGrantOutput, error)
	ListGrants(ctx context.Context, in *ListGrantsInput) (*ListGrantsOutput, error)
	ListRetirableGrants(ctx context.Context, in *ListRetirableGrantsInput) (*ListRetirableGrantsOutput, error)
	RetireGrant(ctx context.Context, in *RetireGrantInput) (*RetireGrantOutput, error)
	RevokeGrant(ctx context.Context, in *RevokeGrantInput) (*RevokeGrantOutput, error)
}

// Timestamp is a point in time that encodes in JSON as AWS does: seconds
// since the epoch, as a number with a fractional part.
type Timestamp struct{ time.Time }

// MarshalJSON encodes the time as epoch seconds.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(t.UnixMilli())/1000, 'f', -1, 64), nil
}

// UnmarshalJSON decodes epoch seconds.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	sec, frac := math.Modf(f)
	t.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

func ts(t time.Time) *Timestamp {
	if t.IsZero() {
		return nil
	}
	return &Timestamp{t.UTC()}
}

// KeyMetadata describes a KMS key.
type KeyMetadata struct {
	AWSAccountId string     `json:"AWSAccountId"`
	KeyId        string     `json:"KeyId"`
	Arn          string     `json:"Arn"`
	CreationDate *Timestamp `json:"CreationDate,omitempty"`
	Enabled      bool       `json:"Enabled"`
	Description  string     `json:"Description"`
	KeyUsage     string     `json:"KeyUsage"`
	KeyState     string     `json:"KeyState"`
	DeletionDate *Timestamp `json:"DeletionDate,omitempty"`
	// ValidTo is, for a key of Origin EXTERNAL, the earliest time at
	// which imported material permanently associated with it expires;
	// ExpirationModel is set for such a key while it has material.
	ValidTo                     *Timestamp `json:"ValidTo,omitempty"`
	Origin                      string     `json:"Origin"`
	ExpirationModel             string     `json:"ExpirationModel,omitempty"`
	KeyManager                  string     `json:"KeyManager"`
	CustomerMasterKeySpec       string     `json:"CustomerMasterKeySpec"`
	KeySpec                     string     `json:"KeySpec"`
	EncryptionAlgorithms        []string   `json:"EncryptionAlgorithms,omitempty"`
	SigningAlgorithms           []string   `json:"SigningAlgorithms,omitempty"`
	MacAlgorithms               []string   `json:"MacAlgorithms,omitempty"`
	KeyAgreementAlgorithms      []string   `json:"KeyAgreementAlgorithms,omitempty"`
	MultiRegion                 bool       `json:"MultiRegion"`
	PendingDeletionWindowInDays *int32     `json:"PendingDeletionWindowInDays,omitempty"`
	CurrentKeyMaterialId        string     `json:"CurrentKeyMaterialId,omitempty"`
}

// APITag is a key tag as the API carries it (TagKey, TagValue): the same
// type as [Tag].
type APITag = Tag

// CreateKeyInput is the input of CreateKey.
type CreateKeyInput struct {
	Policy                         string   `json:"Policy,omitempty"`
	Description                    string   `json:"Description,omitempty"`
	KeyUsage                       string   `json:"KeyUsage,omitempty"`
	CustomerMasterKeySpec          string   `json:"CustomerMasterKeySpec,omitempty"`
	KeySpec                        string   `json:"KeySpec,omitempty"`
	Origin                         string   `json:"Origin,omitempty"`
	BypassPolicyLockoutSafetyCheck bool     `json:"BypassPolicyLockoutSafetyCheck,omitempty"`
	Tags                           []APITag `json:"Tags,omitempty"`
	MultiRegion                    *bool    `json:"MultiRegion,omitempty"`
	CustomKeyStoreId               string   `json:"CustomKeyStoreId,omitempty"`
	XksKeyId                       string   `json:"XksKeyId,omitempty"`
}

// CreateKeyOutput is the output of CreateKey.
type CreateKeyOutput struct {
	KeyMetadata *KeyMetadata `json:"KeyMetadata"`
}

// DescribeKeyInput is the input of DescribeKey.
type DescribeKeyInput struct {
	KeyId       string   `json:"KeyId"`
	GrantTokens []string `json:"GrantTokens,omitempty"`
}

// DescribeKeyOutput is the output of DescribeKey.
type DescribeKeyOutput struct {
	KeyMetadata *KeyMetadata `json:"KeyMetadata"`
}

// ListKeysInput is the input of ListKeys.
type ListKeysInput struct {
	Limit  *int32 `json:"Limit,omitempty"`
	Marker string `json:"Marker,omitempty"`
}

// KeyListEntry is one key of a ListKeys page.
type KeyListEntry struct {
	KeyId  string `json:"KeyId"`
	KeyArn string `json:"KeyArn"`
}

// ListKeysOutput is the output of ListKeys.
type ListKeysOutput struct {
	Keys       []KeyListEntry `json:"Keys"`
	NextMarker string         `json:"NextMarker,omitempty"`
	Truncated  bool           `json:"Truncated"`
}

// UpdateKeyDescriptionInput is the input of UpdateKeyDescription.
type UpdateKeyDescriptionInput struct {
	KeyId       string `json:"KeyId"`
	Description string `json:"Description"`
}

// UpdateKeyDescriptionOutput is the (empty) output of UpdateKeyDescription.
type UpdateKeyDescriptionOutput struct{}

// EnableKeyInput is the input of EnableKey.
type EnableKeyInput struct {
	KeyId string `json:"KeyId"`
}

// EnableKeyOutput is the (empty) output of EnableKey.
type EnableKeyOutput struct{}

// DisableKeyInput is the input of DisableKey.
type DisableKeyInput struct {
	KeyId string `json:"KeyId"`
}

// DisableKeyOutput is the (empty) output of DisableKey.
type DisableKeyOutput struct{}

// ScheduleKeyDeletionInput is the input of ScheduleKeyDeletion.
type ScheduleKeyDeletionInput struct {
	KeyId               string `json:"KeyId"`
	PendingWindowInDays *int32 `json:"PendingWindowInDays,omitempty"`
}

// ScheduleKeyDeletionOutput is the output of ScheduleKeyDeletion.
type ScheduleKeyDeletionOutput struct {
	KeyId               string     `json:"KeyId"`
	DeletionDate        *Timestamp `json:"DeletionDate,omitempty"`
	KeyState            string     `json:"KeyState"`
	PendingWindowInDays int32      `json:"PendingWindowInDays"`
}

// CancelKeyDeletionInput is the input of CancelKeyDeletion.
type CancelKeyDeletionInput struct {
	KeyId string `json:"KeyId"`
}

// CancelKeyDeletionOutput is the output of CancelKeyDeletion.
type CancelKeyDeletionOutput struct {
	KeyId string `json:"KeyId"`
}

// CreateAliasInput is the input of CreateAlias.
type CreateAliasInput struct {
	AliasName   string `json:"AliasName"`
	TargetKeyId string `json:"TargetKeyId"`
}

// CreateAliasOutput is the (empty) output of CreateAlias.
type CreateAliasOutput struct{}

// UpdateAliasInput is the input of UpdateAlias.
type UpdateAliasInput struct {
	AliasName   string `json:"AliasName"`
	TargetKeyId string `json:"TargetKeyId"`
}

// UpdateAliasOutput is the (empty) output of UpdateAlias.
type UpdateAliasOutput struct{}

// DeleteAliasInput is the input of DeleteAlias.
type DeleteAliasInput struct {
	AliasName string `json:"AliasName"`
}

// DeleteAliasOutput is the (empty) output of DeleteAlias.
type DeleteAliasOutput struct{}

// ListAliasesInput is the input of ListAliases.
type ListAliasesInput struct {
	KeyId  string `json:"KeyId,omitempty"`
	Limit  *int32 `json:"Limit,omitempty"`
	Marker string `json:"Marker,omitempty"`
}

// AliasListEntry is one alias of a ListAliases page.
type AliasListEntry struct {
	AliasName       string     `json:"AliasName"`
	AliasArn        string     `json:"AliasArn"`
	TargetKeyId     string     `json:"TargetKeyId,omitempty"`
	CreationDate    *Timestamp `json:"CreationDate,omitempty"`
	LastUpdatedDate *Timestamp `json:"LastUpdatedDate,omitempty"`
}

// ListAliasesOutput is the output of ListAliases.
type ListAliasesOutput struct {
	Aliases    []AliasListEntry `json:"Aliases"`
	NextMarker string           `json:"NextMarker,omitempty"`
	Truncated  bool             `json:"Truncated"`
}

// TagResourceInput is the input of TagResource.
type TagResourceInput struct {
	KeyId string   `json:"KeyId"`
	Tags  []APITag `json:"Tags"`
}

// TagResourceOutput is the (empty) output of TagResource.
type TagResourceOutput struct{}

// UntagResourceInput is the input of UntagResource.
type UntagResourceInput struct {
	KeyId   string   `json:"KeyId"`
	TagKeys []string `json:"TagKeys"`
}

// UntagResourceOutput is the (empty) output of UntagResource.
type UntagResourceOutput struct{}

// ListResourceTagsInput is the input of ListResourceTags.
type ListResourceTagsInput struct {
	KeyId  string `json:"KeyId"`
	Limit  *int32 `json:"Limit,omitempty"`
	Marker string `json:"Marker,omitempty"`
}

// ListResourceTagsOutput is the output of ListResourceTags.
type ListResourceTagsOutput struct {
	Tags       []APITag `json:"Tags"`
	NextMarker string   `json:"NextMarker,omitempty"`
	Truncated  bool     `json:"Truncated"`
}

// EnableKeyRotationInput is the input of EnableKeyRotation.
type EnableKeyRotationInput struct {
	KeyId                string `json:"KeyId"`
	RotationPeriodInDays *int32 `json:"RotationPeriodInDays,omitempty"`
}

// EnableKeyRotationOutput is the (empty) output of EnableKeyRotation.
type EnableKeyRotationOutput struct{}

// DisableKeyRotationInput is the input of DisableKeyRotation.
type DisableKeyRotationInput struct {
	KeyId string `json:"KeyId"`
}

// DisableKeyRotationOutput is the (empty) output of DisableKeyRotation.
type DisableKeyRotationOutput struct{}

// GetKeyRotationStatusInput is the input of GetKeyRotationStatus.
type GetKeyRotationStatusInput struct {
	KeyId string `json:"KeyId"`
}

// GetKeyRotationStatusOutput is the output of GetKeyRotationStatus.
type GetKeyRotationStatusOutput struct {
	KeyRotationEnabled   bool       `json:"KeyRotationEnabled"`
	KeyId                string     `json:"KeyId"`
	RotationPeriodInDays *int32     `json:"RotationPeriodInDays,omitempty"`
	NextRotationDate     *Timestamp `json:"NextRotationDate,omitempty"`
}

// RotateKeyOnDemandInput is the input of RotateKeyOnDemand.
type RotateKeyOnDemandInput struct {
	KeyId string `json:"KeyId"`
}

// RotateKeyOnDemandOutput is the output of RotateKeyOnDemand.
type RotateKeyOnDemandOutput struct {
	KeyId string `json:"KeyId"`
}

// ListKeyRotationsInput is the input of ListKeyRotations.
// IncludeKeyMaterial is ROTATIONS_ONLY (the default: the material that
// rotations made) or ALL_KEY_MATERIAL (also the first material, and
// imported material pending rotation).
type ListKeyRotationsInput struct {
	KeyId              string `json:"KeyId"`
	IncludeKeyMaterial string `json:"IncludeKeyMaterial,omitempty"`
	Limit              *int32 `json:"Limit,omitempty"`
	Marker             string `json:"Marker,omitempty"`
}

// RotationsListEntry is one key material of a ListKeyRotations page.
// RotationType and RotationDate are absent for the first material and for
// imported material pending rotation; KeyMaterialDescription, ImportState,
// ExpirationModel and ValidTo are set for keys of Origin EXTERNAL only.
type RotationsListEntry struct {
	KeyId                  string     `json:"KeyId"`
	KeyMaterialId          string     `json:"KeyMaterialId,omitempty"`
	KeyMaterialDescription string     `json:"KeyMaterialDescription,omitempty"`
	ImportState            string     `json:"ImportState,omitempty"`
	KeyMaterialState       string     `json:"KeyMaterialState,omitempty"`
	ExpirationModel        string     `json:"ExpirationModel,omitempty"`
	ValidTo                *Timestamp `json:"ValidTo,omitempty"`
	RotationDate           *Timestamp `json:"RotationDate,omitempty"`
	RotationType           string     `json:"RotationType,omitempty"`
}

// ListKeyRotationsOutput is the output of ListKeyRotations.
type ListKeyRotationsOutput struct {
	Rotations  []RotationsListEntry `json:"Rotations"`
	NextMarker string               `json:"NextMarker,omitempty"`
	Truncated  bool                 `json:"Truncated"`
}

// EncryptInput is the input of Encrypt.
type EncryptInput struct {
	KeyId               string            `json:"KeyId"`
	Plaintext           []byte            `json:"Plaintext"`
	EncryptionContext   map[string]string `json:"EncryptionContext,omitempty"`
	GrantTokens         []string          `json:"GrantTokens,omitempty"`
	EncryptionAlgorithm string            `json:"EncryptionAlgorithm,omitempty"`
	DryRun              bool              `json:"DryRun,omitempty"`
}

// EncryptOutput is the output of Encrypt.
type EncryptOutput struct {
	CiphertextBlob      []byte `json:"CiphertextBlob"`
	KeyId               string `json:"KeyId"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
}

// DecryptInput is the input of Decrypt.
type DecryptInput struct {
	CiphertextBlob      []byte            `json:"CiphertextBlob"`
	EncryptionContext   map[string]string `json:"EncryptionContext,omitempty"`
	GrantTokens         []string          `json:"GrantTokens,omitempty"`
	KeyId               string            `json:"KeyId,omitempty"`
	EncryptionAlgorithm string            `json:"EncryptionAlgorithm,omitempty"`
	DryRun              bool              `json:"DryRun,omitempty"`
}

// DecryptOutput is the output of Decrypt.
type DecryptOutput struct {
	KeyId               string `json:"KeyId"`
	Plaintext           []byte `json:"Plaintext"`
	EncryptionAlgorithm string `json:"EncryptionAlgorithm"`
	KeyMaterialId       string `json:"KeyMaterialId,omitempty"`
}

// ReEncryptInput is the input of ReEncrypt.
type ReEncryptInput struct {
	CiphertextBlob                 []byte            `json:"CiphertextBlob"`
	SourceEncryptionContext        map[string]string `json:"SourceEncryptionContext,omitempty"`
	SourceKeyId                    string            `json:"SourceKeyId,omitempty"`
	DestinationKeyId               string            `json:"DestinationKeyId"`
	DestinationEncryptionContext   map[string]string `json:"DestinationEncryptionContext,omitempty"`
	SourceEncryptionAlgorithm      string            `json:"SourceEncryptionAlgorithm,omitempty"`
	DestinationEncryptionAlgorithm string            `json:"DestinationEncryptionAlgorithm,omitempty"`
	GrantTokens                    []string          `json:"GrantTokens,omitempty"`
	DryRun                         bool              `json:"DryRun,omitempty"`
}

// ReEncryptOutput is the output of ReEncrypt.
type ReEncryptOutput struct {
	CiphertextBlob                 []byte `json:"CiphertextBlob"`
	SourceKeyId                    string `json:"SourceKeyId"`
	KeyId                          string `json:"KeyId"`
	SourceEncryptionAlgorithm      string `json:"SourceEncryptionAlgorithm"`
	DestinationEncryptionAlgorithm string `json:"DestinationEncryptionAlgorithm"`
	SourceKeyMaterialId            string `json:"SourceKeyMaterialId,omitempty"`
	DestinationKeyMaterialId       string `json:"DestinationKeyMaterialId,omitempty"`
}

// GenerateDataKeyInput is the input of GenerateDataKey.
type GenerateDataKeyInput struct {
	KeyId             string            `json:"KeyId"`
	EncryptionContext map[string]string `json:"EncryptionContext,omitempty"`
	NumberOfBytes     *int32            `json:"NumberOfBytes,omitempty"`
	KeySpec           string            `json:"KeySpec,omitempty"`
	GrantTokens       []string          `json:"GrantTokens,omitempty"`
	DryRun            bool              `json:"DryRun,omitempty"`
}

// GenerateDataKeyOutput is the output of GenerateDataKey.
type GenerateDataKeyOutput struct {
	CiphertextBlob []byte `json:"CiphertextBlob"`
	Plaintext      []byte `json:"Plaintext"`
	KeyId          string `json:"KeyId"`
	KeyMaterialId  string `json:"KeyMaterialId,omitempty"`
}

// GenerateDataKeyWithoutPlaintextInput is the input of
// GenerateDataKeyWithoutPlaintext.
type GenerateDataKeyWithoutPlaintextInput GenerateDataKeyInput

// GenerateDataKeyWithoutPlaintextOutput is the output of
// GenerateDataKeyWithoutPlaintext.
type GenerateDataKeyWithoutPlaintextOutput struct {
	CiphertextBlob []byte `json:"CiphertextBlob"`
	KeyId          string `json:"KeyId"`
	KeyMaterialId  string `json:"KeyMaterialId,omitempty"`
}

// GenerateDataKeyPairInput is the input of GenerateDataKeyPair.
type GenerateDataKeyPairInput struct {
	EncryptionContext map[string]string `json:"EncryptionContext,omitempty"`
	KeyId             string            `json:"KeyId"`
	KeyPairSpec       string            `json:"KeyPairSpec"`
	GrantTokens       []string          `json:"GrantTokens,omitempty"`
	DryRun            bool              `json:"DryRun,omitempty"`
}

// GenerateDataKeyPairOutput is the output of GenerateDataKeyPair.
type GenerateDataKeyPairOutput struct {
	PrivateKeyCiphertextBlob []byte `json:"PrivateKeyCiphertextBlob"`
	PrivateKeyPlaintext      []byte `json:"PrivateKeyPlaintext"`
	PublicKey                []byte `json:"PublicKey"`
	KeyId                    string `json:"KeyId"`
	KeyPairSpec              string `json:"KeyPairSpec"`
	KeyMaterialId            string `json:"KeyMaterialId,omitempty"`
}

// GenerateDataKeyPairWithoutPlaintextInput is the input of
// GenerateDataKeyPairWithoutPlaintext.
type GenerateDataKeyPairWithoutPlaintextInput GenerateDataKeyPairInput

// GenerateDataKeyPairWithoutPlaintextOutput is the output of
// GenerateDataKeyPairWithoutPlaintext.
type GenerateDataKeyPairWithoutPlaintextOutput struct {
	PrivateKeyCiphertextBlob []byte `json:"PrivateKeyCiphertextBlob"`
	PublicKey                []byte `json:"PublicKey"`
	KeyId                    string `json:"KeyId"`
	KeyPairSpec              string `json:"KeyPairSpec"`
	KeyMaterialId            string `json:"KeyMaterialId,omitempty"`
}

// GenerateRandomInput is the input of GenerateRandom.
type GenerateRandomInput struct {
	NumberOfBytes    *int32 `json:"NumberOfBytes,omitempty"`
	CustomKeyStoreId string `json:"CustomKeyStoreId,omitempty"`
}

// GenerateRandomOutput is the output of GenerateRandom.
type GenerateRandomOutput struct {
	Plaintext []byte `json:"Plaintext"`
}

// GetPublicKeyInput is the input of GetPublicKey.
type GetPublicKeyInput struct {
	KeyId       string   `json:"KeyId"`
	GrantTokens []string `json:"GrantTokens,omitempty"`
}

// GetPublicKeyOutput is the output of GetPublicKey. PublicKey is the DER
// SubjectPublicKeyInfo. Of the algorithm lists, the one of the key's usage
// is set.
type GetPublicKeyOutput struct {
	KeyId                  string   `json:"KeyId"`
	PublicKey              []byte   `json:"PublicKey"`
	CustomerMasterKeySpec  string   `json:"CustomerMasterKeySpec"`
	KeySpec                string   `json:"KeySpec"`
	KeyUsage               string   `json:"KeyUsage"`
	EncryptionAlgorithms   []string `json:"EncryptionAlgorithms,omitempty"`
	SigningAlgorithms      []string `json:"SigningAlgorithms,omitempty"`
	KeyAgreementAlgorithms []string `json:"KeyAgreementAlgorithms,omitempty"`
}

// SignInput is the input of Sign. MessageType is RAW (the default: a
// message of up to 4096 bytes), DIGEST (a digest of the algorithm's hash)
// or EXTERNAL_MU (an ML-DSA μ of 64 bytes).
type SignInput struct {
	KeyId            string   `json:"KeyId"`
	Message          []byte   `json:"Message"`
	MessageType      string   `json:"MessageType,omitempty"`
	GrantTokens      []string `json:"GrantTokens,omitempty"`
	SigningAlgorithm string   `json:"SigningAlgorithm"`
	DryRun           bool     `json:"DryRun,omitempty"`
}

// SignOutput is the output of Sign.
type SignOutput struct {
	KeyId            string `json:"KeyId"`
	Signature        []byte `json:"Signature"`
	SigningAlgorithm string `json:"SigningAlgorithm"`
}

// VerifyInput is the input of Verify.
type VerifyInput struct {
	KeyId            string   `json:"KeyId"`
	Message          []byte   `json:"Message"`
	MessageType      string   `json:"MessageType,omitempty"`
	Signature        []byte   `json:"Signature"`
	SigningAlgorithm string   `json:"SigningAlgorithm"`
	GrantTokens      []string `json:"GrantTokens,omitempty"`
	DryRun           bool     `json:"DryRun,omitempty"`
}

// VerifyOutput is the output of Verify: SignatureValid is always true (a
// signature that does not verify is an error, KMSInvalidSignatureException).
type VerifyOutput struct {
	KeyId            string `json:"KeyId"`
	SignatureValid   bool   `json:"SignatureValid"`
	SigningAlgorithm string `json:"SigningAlgorithm"`
}

// GenerateMacInput is the input of GenerateMac.
type GenerateMacInput struct {
	Message      []byte   `json:"Message"`
	KeyId        string   `json:"KeyId"`
	MacAlgorithm string   `json:"MacAlgorithm"`
	GrantTokens  []string `json:"GrantTokens,omitempty"`
	DryRun       bool     `json:"DryRun,omitempty"`
}

// GenerateMacOutput is the output of GenerateMac.
type GenerateMacOutput struct {
	Mac          []byte `json:"Mac"`
	MacAlgorithm string `json:"MacAlgorithm"`
	KeyId        string `json:"KeyId"`
}

// VerifyMacInput is the input of VerifyMac.
type VerifyMacInput struct {
	Message      []byte   `json:"Message"`
	KeyId        string   `json:"KeyId"`
	MacAlgorithm string   `json:"MacAlgorithm"`
	Mac          []byte   `json:"Mac"`
	GrantTokens  []string `json:"GrantTokens,omitempty"`
	DryRun       bool     `json:"DryRun,omitempty"`
}

// VerifyMacOutput is the output of VerifyMac: MacValid is always true (a
// MAC that does not verify is an error, KMSInvalidMacException).
type VerifyMacOutput struct {
	KeyId        string `json:"KeyId"`
	MacValid     bool   `json:"MacValid"`
	MacAlgorithm string `json:"MacAlgorithm"`
}

// DeriveSharedSecretInput is the input of DeriveSharedSecret. PublicKey is
// the peer's public key, a DER SubjectPublicKeyInfo on the key's curve.
// AWS's Recipient (attested enclaves) is not supported.
type DeriveSharedSecretInput struct {
	KeyId                 string   `json:"KeyId"`
	KeyAgreementAlgorithm string   `json:"KeyAgreementAlgorithm"`
	PublicKey             []byte   `json:"PublicKey"`
	GrantTokens           []string `json:"GrantTokens,omitempty"`
	DryRun                bool     `json:"DryRun,omitempty"`
}

// DeriveSharedSecretOutput is the output of DeriveSharedSecret:
// SharedSecret is the raw ECDH shared secret, which the caller clears when
// done with it.
type DeriveSharedSecretOutput struct {
	KeyId                 string `json:"KeyId"`
	SharedSecret          []byte `json:"SharedSecret"`
	KeyAgreementAlgorithm string `json:"KeyAgreementAlgorithm"`
	KeyOrigin             string `json:"KeyOrigin"`
}

// GetKeyPolicyInput is the input of GetKeyPolicy.
type GetKeyPolicyInput struct {
	KeyId      string `json:"KeyId"`
	PolicyName string `json:"PolicyName,omitempty"`
}

// GetKeyPolicyOutput is the output of GetKeyPolicy.
type GetKeyPolicyOutput struct {
	Policy     string `json:"Policy"`
	PolicyName string `json:"PolicyName"`
}

// PutKeyPolicyInput is the input of PutKeyPolicy.
type PutKeyPolicyInput struct {
	KeyId                          string `json:"KeyId"`
	PolicyName                     string `json:"PolicyName,omitempty"`
	Policy                         string `json:"Policy"`
	BypassPolicyLockoutSafetyCheck bool   `json:"BypassPolicyLockoutSafetyCheck,omitempty"`
}

// PutKeyPolicyOutput is the (empty) output of PutKeyPolicy.
type PutKeyPolicyOutput struct{}

// ListKeyPoliciesInput is the input of ListKeyPolicies.
type ListKeyPoliciesInput struct {
	KeyId  string `json:"KeyId"`
	Limit  *int32 `json:"Limit,omitempty"`
	Marker string `json:"Marker,omitempty"`
}

// ListKeyPoliciesOutput is the output of ListKeyPolicies.
type ListKeyPoliciesOutput struct {
	PolicyNames []string `json:"PolicyNames"`
	NextMarker  string   `json:"NextMarker,omitempty"`
	Truncated   bool     `json:"Truncated"`
}

// GetParametersForImportInput is the input of GetParametersForImport:
// WrappingAlgorithm is RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256,
// RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256, WrappingKeySpec
// RSA_2048, RSA_3072 or RSA_4096.
type GetParametersForImportInput struct {
	KeyId             string `json:"KeyId"`
	WrappingAlgorithm string `json:"WrappingAlgorithm"`
	WrappingKeySpec   string `json:"WrappingKeySpec"`
}

// GetParametersForImportOutput is the output of GetParametersForImport:
// the wrapping public key (a DER SubjectPublicKeyInfo) and the import
// token that goes with it, both valid until ParametersValidTo (24 hours).
type GetParametersForImportOutput struct {
	KeyId             string     `json:"KeyId"`
	ImportToken       []byte     `json:"ImportToken"`
	PublicKey         []byte     `json:"PublicKey"`
	ParametersValidTo *Timestamp `json:"ParametersValidTo,omitempty"`
}

// ImportKeyMaterialInput is the input of ImportKeyMaterial.
// EncryptedKeyMaterial is the key material wrapped with the public key and
// algorithm of the GetParametersForImport answer ImportToken came with.
// ExpirationModel is KEY_MATERIAL_EXPIRES (the default; ValidTo is then
// required) or KEY_MATERIAL_DOES_NOT_EXPIRE. ImportType (NEW_KEY_MATERIAL or
// EXISTING_KEY_MATERIAL), KeyMaterialDescription and KeyMaterialId apply to
// symmetric encryption keys.
type ImportKeyMaterialInput struct {
	KeyId                  string     `json:"KeyId"`
	ImportToken            []byte     `json:"ImportToken"`
	EncryptedKeyMaterial   []byte     `json:"EncryptedKeyMaterial"`
	ValidTo                *Timestamp `json:"ValidTo,omitempty"`
	ExpirationModel        string     `json:"ExpirationModel,omitempty"`
	ImportType             string     `json:"ImportType,omitempty"`
	KeyMaterialDescription string     `json:"KeyMaterialDescription,omitempty"`
	KeyMaterialId          string     `json:"KeyMaterialId,omitempty"`
}

// ImportKeyMaterialOutput is the output of ImportKeyMaterial.
type ImportKeyMaterialOutput struct {
	KeyId         string `json:"KeyId"`
	KeyMaterialId string `json:"KeyMaterialId,omitempty"`
}

// DeleteImportedKeyMaterialInput is the input of DeleteImportedKeyMaterial;
// with no KeyMaterialId the current material is deleted.
type DeleteImportedKeyMaterialInput struct {
	KeyId         string `json:"KeyId"`
	KeyMaterialId string `json:"KeyMaterialId,omitempty"`
}

// DeleteImportedKeyMaterialOutput is the output of
// DeleteImportedKeyMaterial.
type DeleteImportedKeyMaterialOutput struct {
	KeyId         string `json:"KeyId"`
	KeyMaterialId string `json:"KeyMaterialId,omitempty"`
}
