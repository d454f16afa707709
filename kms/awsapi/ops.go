package awsapi

import "github.com/envelopekms/envelope/kms"

// operations is the explicit dispatch table, X-Amz-Target "TrentService."
// + name → operation. Nothing else is reachable.
//
// Each entry names the operation, the kms.API method that runs it, and
// the facts the server needs of it (see [op]):
//   - its scope: key (the member naming the key it acts on, which the KMS
//     authorizes), keyOrNone (the same, or no key if the member is empty),
//     or noKey (the server checks the action on "*");
//   - alias: the member naming an alias it changes, which the server
//     authorizes as a resource of its own;
//   - encryptionContext and arn: the request member whose keys, and the
//     answer member whose key ARN, the audit log records;
//   - fast: the field tables of its fast codecs (below), if it has them.
var operations = table(
	op("CreateKey", kms.API.CreateKey, noKey,
		arn(func(out *kms.CreateKeyOutput) string { return out.KeyMetadata.Arn })),
	op("DescribeKey", kms.API.DescribeKey, key(func(in *kms.DescribeKeyInput) string { return in.KeyId }),
		arn(func(out *kms.DescribeKeyOutput) string { return out.KeyMetadata.Arn })),
	op("ListKeys", kms.API.ListKeys, noKey),
	op("UpdateKeyDescription", kms.API.UpdateKeyDescription, key(func(in *kms.UpdateKeyDescriptionInput) string { return in.KeyId })),
	op("EnableKey", kms.API.EnableKey, key(func(in *kms.EnableKeyInput) string { return in.KeyId })),
	op("DisableKey", kms.API.DisableKey, key(func(in *kms.DisableKeyInput) string { return in.KeyId })),
	op("ScheduleKeyDeletion", kms.API.ScheduleKeyDeletion, key(func(in *kms.ScheduleKeyDeletionInput) string { return in.KeyId }),
		arn(func(out *kms.ScheduleKeyDeletionOutput) string { return out.KeyId })),
	op("CancelKeyDeletion", kms.API.CancelKeyDeletion, key(func(in *kms.CancelKeyDeletionInput) string { return in.KeyId }),
		arn(func(out *kms.CancelKeyDeletionOutput) string { return out.KeyId })),

	op("CreateAlias", kms.API.CreateAlias, key(func(in *kms.CreateAliasInput) string { return in.TargetKeyId }),
		alias(func(in *kms.CreateAliasInput) string { return in.AliasName })),
	op("UpdateAlias", kms.API.UpdateAlias, key(func(in *kms.UpdateAliasInput) string { return in.TargetKeyId }),
		alias(func(in *kms.UpdateAliasInput) string { return in.AliasName })),
	op("DeleteAlias", kms.API.DeleteAlias, key(func(in *kms.DeleteAliasInput) string { return in.AliasName }),
		alias(func(in *kms.DeleteAliasInput) string { return in.AliasName })),
	op("ListAliases", kms.API.ListAliases, keyOrNone(func(in *kms.ListAliasesInput) string { return in.KeyId })),

	op("TagResource", kms.API.TagResource, key(func(in *kms.TagResourceInput) string { return in.KeyId })),
	op("UntagResource", kms.API.UntagResource, key(func(in *kms.UntagResourceInput) string { return in.KeyId })),
	op("ListResourceTags", kms.API.ListResourceTags, key(func(in *kms.ListResourceTagsInput) string { return in.KeyId })),

	op("EnableKeyRotation", kms.API.EnableKeyRotation, key(func(in *kms.EnableKeyRotationInput) string { return in.KeyId })),
	op("DisableKeyRotation", kms.API.DisableKeyRotation, key(func(in *kms.DisableKeyRotationInput) string { return in.KeyId })),
	op("GetKeyRotationStatus", kms.API.GetKeyRotationStatus, key(func(in *kms.GetKeyRotationStatusInput) string { return in.KeyId }),
		arn(func(out *kms.GetKeyRotationStatusOutput) string { return out.KeyId })),
	op("RotateKeyOnDemand", kms.API.RotateKeyOnDemand, key(func(in *kms.RotateKeyOnDemandInput) string { return in.KeyId }),
		arn(func(out *kms.RotateKeyOnDemandOutput) string { return out.KeyId })),
	op("ListKeyRotations", kms.API.ListKeyRotations, key(func(in *kms.ListKeyRotationsInput) string { return in.KeyId })),

	op("Encrypt", kms.API.Encrypt, key(func(in *kms.EncryptInput) string { return in.KeyId }),
		encryptionContext(func(in *kms.EncryptInput) map[string]string { return in.EncryptionContext }),
		arn(func(out *kms.EncryptOutput) string { return out.KeyId }),
		fast(encryptInput, encryptOutput)),
	op("Decrypt", kms.API.Decrypt, key(func(in *kms.DecryptInput) string { return in.KeyId }),
		encryptionContext(func(in *kms.DecryptInput) map[string]string { return in.EncryptionContext }),
		arn(func(out *kms.DecryptOutput) string { return out.KeyId }),
		fast(decryptInput, decryptOutput)),
	op("ReEncrypt", kms.API.ReEncrypt, key(func(in *kms.ReEncryptInput) string { return in.SourceKeyId }),
		encryptionContext(func(in *kms.ReEncryptInput) map[string]string { return in.DestinationEncryptionContext }),
		arn(func(out *kms.ReEncryptOutput) string { return out.KeyId })),
	op("GenerateDataKey", kms.API.GenerateDataKey, key(func(in *kms.GenerateDataKeyInput) string { return in.KeyId }),
		encryptionContext(func(in *kms.GenerateDataKeyInput) map[string]string { return in.EncryptionContext }),
		arn(func(out *kms.GenerateDataKeyOutput) string { return out.KeyId }),
		fast(generateDataKeyInput, generateDataKeyOutput)),
	op("GenerateDataKeyWithoutPlaintext", kms.API.GenerateDataKeyWithoutPlaintext,
		key(func(in *kms.GenerateDataKeyWithoutPlaintextInput) string { return in.KeyId }),
		encryptionContext(func(in *kms.GenerateDataKeyWithoutPlaintextInput) map[string]string { return in.EncryptionContext }),
		arn(func(out *kms.GenerateDataKeyWithoutPlaintextOutput) string { return out.KeyId })),
	op("GenerateDataKeyPair", kms.API.GenerateDataKeyPair, key(func(in *kms.GenerateDataKeyPairInput) string { return in.KeyId }),
		encryptionContext(func(in *kms.GenerateDataKeyPairInput) map[string]string { return in.EncryptionContext }),
		arn(func(out *kms.GenerateDataKeyPairOutput) string { return out.KeyId })),
	op("GenerateDataKeyPairWithoutPlaintext", kms.API.GenerateDataKeyPairWithoutPlaintext,
		key(func(in *kms.GenerateDataKeyPairWithoutPlaintextInput) string { return in.KeyId }),
		encryptionContext(func(in *kms.GenerateDataKeyPairWithoutPlaintextInput) map[string]string { return in.EncryptionContext }),
		arn(func(out *kms.GenerateDataKeyPairWithoutPlaintextOutput) string { return out.KeyId })),
	op("GenerateRandom", kms.API.GenerateRandom, noKey),
	op("GetPublicKey", kms.API.GetPublicKey, key(func(in *kms.GetPublicKeyInput) string { return in.KeyId }),
		arn(func(out *kms.GetPublicKeyOutput) string { return out.KeyId })),

	op("Sign", kms.API.Sign, key(func(in *kms.SignInput) string { return in.KeyId }),
		arn(func(out *kms.SignOutput) string { return out.KeyId })),
	op("Verify", kms.API.Verify, key(func(in *kms.VerifyInput) string { return in.KeyId }),
		arn(func(out *kms.VerifyOutput) string { return out.KeyId })),
	op("GenerateMac", kms.API.GenerateMac, key(func(in *kms.GenerateMacInput) string { return in.KeyId }),
		arn(func(out *kms.GenerateMacOutput) string { return out.KeyId })),
	op("VerifyMac", kms.API.VerifyMac, key(func(in *kms.VerifyMacInput) string { return in.KeyId }),
		arn(func(out *kms.VerifyMacOutput) string { return out.KeyId })),
	op("DeriveSharedSecret", kms.API.DeriveSharedSecret, key(func(in *kms.DeriveSharedSecretInput) string { return in.KeyId }),
		arn(func(out *kms.DeriveSharedSecretOutput) string { return out.KeyId })),

	op("GetParametersForImport", kms.API.GetParametersForImport,
		key(func(in *kms.GetParametersForImportInput) string { return in.KeyId }),
		arn(func(out *kms.GetParametersForImportOutput) string { return out.KeyId })),
	op("ImportKeyMaterial", kms.API.ImportKeyMaterial, key(func(in *kms.ImportKeyMaterialInput) string { return in.KeyId }),
		arn(func(out *kms.ImportKeyMaterialOutput) string { return out.KeyId })),
	op("DeleteImportedKeyMaterial", kms.API.DeleteImportedKeyMaterial,
		key(func(in *kms.DeleteImportedKeyMaterialInput) string { return in.KeyId }),
		arn(func(out *kms.DeleteImportedKeyMaterialOutput) string { return out.KeyId })),

	op("GetKeyPolicy", kms.API.GetKeyPolicy, key(func(in *kms.GetKeyPolicyInput) string { return in.KeyId })),
	op("PutKeyPolicy", kms.API.PutKeyPolicy, key(func(in *kms.PutKeyPolicyInput) string { return in.KeyId })),
	op("ListKeyPolicies", kms.API.ListKeyPolicies, key(func(in *kms.ListKeyPoliciesInput) string { return in.KeyId })),

	op("CreateGrant", kms.API.CreateGrant, key(func(in *kms.CreateGrantInput) string { return in.KeyId })),
	op("ListGrants", kms.API.ListGrants, key(func(in *kms.ListGrantsInput) string { return in.KeyId })),
	op("ListRetirableGrants", kms.API.ListRetirableGrants, noKey),
	// RetireGrant's KeyId may be absent (a GrantToken names the grant):
	// the KMS then finds the key from the grant and authorizes it.
	op("RetireGrant", kms.API.RetireGrant, key(func(in *kms.RetireGrantInput) string { return in.KeyId })),
	op("RevokeGrant", kms.API.RevokeGrant, key(func(in *kms.RevokeGrantInput) string { return in.KeyId })),
)

// The field tables of the fast codecs: the members of the hot operations'
// inputs that their fast decoders read (a request with any other member
// is decoded by encoding/json), and every member of their outputs.
var (
	encryptInput = fields(func(in *kms.EncryptInput) fieldList {
		return fieldList{&in.KeyId, &in.Plaintext, &in.EncryptionContext, &in.EncryptionAlgorithm}
	})
	encryptOutput = fields(func(out *kms.EncryptOutput) fieldList {
		return fieldList{&out.CiphertextBlob, &out.KeyId, &out.EncryptionAlgorithm}
	})
	decryptInput = fields(func(in *kms.DecryptInput) fieldList {
		return fieldList{&in.CiphertextBlob, &in.EncryptionContext, &in.KeyId, &in.EncryptionAlgorithm}
	})
	decryptOutput = fields(func(out *kms.DecryptOutput) fieldList {
		return fieldList{&out.KeyId, &out.Plaintext, &out.EncryptionAlgorithm, &out.KeyMaterialId}
	})
	generateDataKeyInput = fields(func(in *kms.GenerateDataKeyInput) fieldList {
		return fieldList{&in.KeyId, &in.EncryptionContext, &in.NumberOfBytes, &in.KeySpec}
	})
	generateDataKeyOutput = fields(func(out *kms.GenerateDataKeyOutput) fieldList {
		return fieldList{&out.CiphertextBlob, &out.Plaintext, &out.KeyId, &out.KeyMaterialId}
	})
)
