package kms

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// newKeyID returns a random (version 4) UUID.
func newKeyID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return uuidString(b[:])
}

// CreateKey implements [API], Origin AWS_KMS or EXTERNAL (a key in state
// PendingImport, with no material until ImportKeyMaterial), for every key spec of AWS
// KMS but SM2 (China Regions only) and ML-KEM, with the usages AWS allows
// each: SYMMETRIC_DEFAULT (ENCRYPT_DECRYPT), RSA_2048/3072/4096
// (ENCRYPT_DECRYPT or SIGN_VERIFY), ECC_NIST_P256/P384/P521 (SIGN_VERIFY or
// KEY_AGREEMENT), ECC_SECG_P256K1, ECC_NIST_EDWARDS25519 and
// ML_DSA_44/65/87 (SIGN_VERIFY), HMAC_224/256/384/512
// (GENERATE_VERIFY_MAC). Another pair is a ValidationException. A key
// created without a Policy gets AWS's default key policy (the account
// allowed every action: its identity policies decide); a Policy given is
// checked as PutKeyPolicy checks it, for the caller of the context's
// Authorizer.
func (s *Service) CreateKey(ctx context.Context, in *CreateKeyInput) (*CreateKeyOutput, error) {
	k, err := s.newKeyFor(ctx, in)
	if err != nil {
		return nil, err
	}
	if err := s.update(ctx, func(tx Tx, _ keyReader) error { return s.putNewKey(tx, k) }); err != nil {
		return nil, err
	}
	return &CreateKeyOutput{KeyMetadata: s.metadata(k)}, nil
}

// CreateKeyWithAlias creates a key as [Service.CreateKey] does and points
// the alias aliasName at it, in one transaction: when it returns nil both
// exist, and after any error (a crash included) neither does. The input is
// validated as CreateKey and CreateAlias validate theirs; an alias that
// exists already fails with AlreadyExistsException and creates nothing.
//
// This is not an AWS KMS operation (AWS needs CreateKey then CreateAlias,
// which can leave a key without its alias): callers reach it by type
// assertion on the embedded service.
func (s *Service) CreateKeyWithAlias(ctx context.Context, in *CreateKeyInput, aliasName string) (*CreateKeyOutput, error) {
	if err := checkAliasName(aliasName); err != nil {
		return nil, err
	}
	k, err := s.newKeyFor(ctx, in)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx Tx, _ keyReader) error {
		if _, err := tx.GetAlias(aliasName); err == nil {
			return newError(CodeAlreadyExists, "An alias with the name %s already exists", s.AliasARN(aliasName))
		} else if !errors.Is(err, ErrNoRecord) {
			return err
		}
		if err := s.putNewKey(tx, k); err != nil {
			return err
		}
		return tx.PutAlias(&AliasRecord{Name: aliasName, KeyID: k.ID, Created: k.CreationDate, LastUpdated: k.CreationDate})
	})
	if err != nil {
		return nil, err
	}
	return &CreateKeyOutput{KeyMetadata: s.metadata(k)}, nil
}

// newKeyFor is newKey with the key policy checked for the caller of ctx's
// Authorizer (the account's root if none).
func (s *Service) newKeyFor(ctx context.Context, in *CreateKeyInput) (*KeyRecord, error) {
	k, err := s.newKey(in)
	if err != nil {
		return nil, err
	}
	if in.Policy != "" {
		c := s.callerOf(authorizerFrom(ctx))
		if _, err := s.parseKeyPolicy(c, in.Policy, s.KeyARN(k.ID), in.BypassPolicyLockoutSafetyCheck); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// newKey validates a CreateKey input and returns the record of the new key
// (without material; see putNewKey).
func (s *Service) newKey(in *CreateKeyInput) (*KeyRecord, error) {
	spec := in.KeySpec
	if in.CustomerMasterKeySpec != "" {
		if spec != "" && spec != in.CustomerMasterKeySpec {
			return nil, validationf("KeySpec %q and CustomerMasterKeySpec %q differ", spec, in.CustomerMasterKeySpec)
		}
		spec = in.CustomerMasterKeySpec
	}
	if spec == "" {
		spec = SpecSymmetricDefault
	}
	if !slices.Contains(awsKeySpecs, spec) {
		return nil, validationf("KeySpec %q is not one of %s", spec, strings.Join(awsKeySpecs, ", "))
	}
	usage := in.KeyUsage
	if !slices.Contains(awsKeyUsages, usage) && usage != "" {
		return nil, validationf("KeyUsage %q is not one of %s", usage, strings.Join(awsKeyUsages, ", "))
	}
	ks, ok := keySpecs[spec]
	if !ok {
		return nil, newError(CodeUnsupportedOperation, "%s", unsupportedSpec(spec))
	}
	if usage == "" {
		usage = UsageEncryptDecrypt
		if _, ok := ks.usages[usage]; !ok {
			return nil, validationf("KeySpec %s needs a KeyUsage: %s (the default, ENCRYPT_DECRYPT, is not valid for it)", spec, strings.Join(ks.usageOrder, " or "))
		}
	}
	if _, ok := ks.usages[usage]; !ok {
		return nil, validationf("KeyUsage %s is not valid for KeySpec %s (valid: %s)", usage, spec, strings.Join(ks.usageOrder, ", "))
	}
	if err := checkEnum("Origin", in.Origin, awsOrigins); err != nil {
		return nil, err
	}
	origin, state := "", StateEnabled
	switch in.Origin {
	case OriginExternal:
		origin, state = OriginExternal, StatePendingImport
	case "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE":
		return nil, newError(CodeUnsupportedOperation, "Origin %s needs a custom key store, which is not supported here (supported: AWS_KMS, EXTERNAL)", in.Origin)
	}
	if in.MultiRegion != nil && *in.MultiRegion {
		return nil, newError(CodeUnsupportedOperation, "multi-Region keys are not supported")
	}
	if in.CustomKeyStoreId != "" || in.XksKeyId != "" {
		return nil, newError(CodeUnsupportedOperation, "custom key stores are not supported")
	}
	if len(in.Description) > maxDescriptionLen {
		return nil, validationf("Description is longer than %d characters", maxDescriptionLen)
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if len(in.Tags) > maxTagsPerKey {
		return nil, newError(CodeTag, "a key can have at most %d tags", maxTagsPerKey)
	}
	policy := in.Policy
	if policy == "" {
		policy = s.defaultPolicy()
	}
	k := &KeyRecord{
		ID:           newKeyID(),
		Spec:         ks.name,
		Usage:        usage,
		State:        state,
		Origin:       origin,
		Description:  in.Description,
		CreationDate: s.now().UTC(),
		Policy:       policy,
	}
	for _, t := range in.Tags {
		k.Tags = setTag(k.Tags, t)
	}
	return k, nil
}

// putNewKey stores a key made by newKey with its first version of
// material (none for Origin EXTERNAL: it is imported). It may run more than
// once for one k (the store's Update may run its function again): each run
// starts from no version.
func (s *Service) putNewKey(tx Tx, k *KeyRecord) error {
	k.Versions = nil
	if err := tx.PutKey(k); err != nil { // the material refers to the key
		return err
	}
	if k.Origin == OriginExternal {
		return nil
	}
	if err := s.addVersion(tx, k, "", k.CreationDate); err != nil {
		return err
	}
	return tx.PutKey(k)
}

func setTag(tags []Tag, t Tag) []Tag {
	for i := range tags {
		if tags[i].Key == t.Key {
			tags[i].Value = t.Value
			return tags
		}
	}
	return append(tags, t)
}

// DescribeKey implements [API].
func (s *Service) DescribeKey(ctx context.Context, in *DescribeKeyInput) (*DescribeKeyOutput, error) {
	if err := s.checkGrantTokens(ctx, in.GrantTokens); err != nil {
		return nil, err
	}
	ref, err := s.parseAuthorized(ctx, "kms:DescribeKey", in.KeyId, true)
	if err != nil {
		return nil, err
	}
	var out *DescribeKeyOutput
	err = s.view(ctx, func(r keyReader) error {
		k, err := s.loadAuthorized(ctx, r, "kms:DescribeKey", ref)
		if err != nil {
			return err
		}
		out = &DescribeKeyOutput{KeyMetadata: s.metadata(k)}
		return nil
	})
	return out, err
}

// ListKeys implements [API].
func (s *Service) ListKeys(ctx context.Context, in *ListKeysInput) (*ListKeysOutput, error) {
	limit, err := checkLimit(in.Limit, 1000, 100)
	if err != nil {
		return nil, err
	}
	if in.Marker != "" && !uuidRE.MatchString(in.Marker) {
		return nil, newError(CodeInvalidMarker, "invalid Marker %q", in.Marker)
	}
	out := &ListKeysOutput{Keys: []KeyListEntry{}}
	err = s.store.View(ctx, func(tx Tx) error { // a listing: not cached
		out.Keys = out.Keys[:0]
		after := in.Marker
		for len(out.Keys) <= limit {
			keys, err := tx.ListKeys(after, limit+1)
			if err != nil {
				return err
			}
			for _, k := range keys {
				after = k.ID
				if s.expired(k) {
					continue
				}
				out.Keys = append(out.Keys, KeyListEntry{KeyId: k.ID, KeyArn: s.KeyARN(k.ID)})
			}
			if len(keys) < limit+1 {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, internal(err)
	}
	if len(out.Keys) > limit {
		out.Keys = out.Keys[:limit]
		out.Truncated = true
		out.NextMarker = out.Keys[limit-1].KeyId
	}
	return out, nil
}

// modify loads the key ref names in a write transaction, has the caller's
// permission for action on it checked, lets fn change it, and stores it.
func (s *Service) modify(ctx context.Context, action, keyID string, fn func(tx Tx, k *KeyRecord) error) error {
	ref, err := s.parseAuthorized(ctx, action, keyID, false)
	if err != nil {
		return err
	}
	return s.update(ctx, func(tx Tx, r keyReader) error {
		k, err := s.loadAuthorized(ctx, r, action, ref)
		if err != nil {
			return err
		}
		if err := fn(tx, k); err != nil {
			return err
		}
		return tx.PutKey(k)
	})
}

// UpdateKeyDescription implements [API].
func (s *Service) UpdateKeyDescription(ctx context.Context, in *UpdateKeyDescriptionInput) (*UpdateKeyDescriptionOutput, error) {
	if len(in.Description) > maxDescriptionLen {
		return nil, validationf("Description is longer than %d characters", maxDescriptionLen)
	}
	err := s.modify(ctx, "kms:UpdateKeyDescription", in.KeyId, func(_ Tx, k *KeyRecord) error {
		if err := s.notPendingDeletion(k); err != nil {
			return err
		}
		k.Description = in.Description
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &UpdateKeyDescriptionOutput{}, nil
}

// EnableKey implements [API].
func (s *Service) EnableKey(ctx context.Context, in *EnableKeyInput) (*EnableKeyOutput, error) {
	err := s.modify(ctx, "kms:EnableKey", in.KeyId, func(_ Tx, k *KeyRecord) error {
		if err := s.notPendingDeletion(k); err != nil {
			return err
		}
		if err := s.notPendingImport(k); err != nil {
			return err
		}
		if k.State != StateEnabled && k.RotationEnabled && !k.NextRotationDate.After(s.now()) {
			// Rotation was suspended while the key was disabled: rotate
			// once, now, and a period after that, as AWS does.
			k.NextRotationDate = s.now().UTC()
		}
		k.State = StateEnabled
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &EnableKeyOutput{}, nil
}

// DisableKey implements [API].
func (s *Service) DisableKey(ctx context.Context, in *DisableKeyInput) (*DisableKeyOutput, error) {
	err := s.modify(ctx, "kms:DisableKey", in.KeyId, func(_ Tx, k *KeyRecord) error {
		if err := s.notPendingDeletion(k); err != nil {
			return err
		}
		if err := s.notPendingImport(k); err != nil {
			return err
		}
		k.State = StateDisabled
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &DisableKeyOutput{}, nil
}

// ScheduleKeyDeletion implements [API]. The key is unusable from now on and
// its material is destroyed when the window (7–30 days, default 30) ends.
func (s *Service) ScheduleKeyDeletion(ctx context.Context, in *ScheduleKeyDeletionInput) (*ScheduleKeyDeletionOutput, error) {
	days := defaultPendingWindow
	if in.PendingWindowInDays != nil {
		days = int(*in.PendingWindowInDays)
		if days < minPendingWindow || days > maxPendingWindow {
			return nil, validationf("PendingWindowInDays must be between %d and %d, got %d", minPendingWindow, maxPendingWindow, days)
		}
	}
	var out *ScheduleKeyDeletionOutput
	err := s.modify(ctx, "kms:ScheduleKeyDeletion", in.KeyId, func(_ Tx, k *KeyRecord) error {
		if err := s.notPendingDeletion(k); err != nil {
			return err
		}
		k.State = StatePendingDeletion
		k.PendingWindowDays = days
		k.DeletionDate = s.now().UTC().AddDate(0, 0, days)
		out = &ScheduleKeyDeletionOutput{KeyId: s.KeyARN(k.ID), DeletionDate: ts(k.DeletionDate),
			KeyState: k.State, PendingWindowInDays: int32(days)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CancelKeyDeletion implements [API]. The key comes back Disabled, as in
// AWS (PendingImport, for a key of Origin EXTERNAL whose material is not
// all imported).
func (s *Service) CancelKeyDeletion(ctx context.Context, in *CancelKeyDeletionInput) (*CancelKeyDeletionOutput, error) {
	var arn string
	err := s.modify(ctx, "kms:CancelKeyDeletion", in.KeyId, func(_ Tx, k *KeyRecord) error {
		if k.State != StatePendingDeletion {
			return s.keyError(k.ID, CodeInvalidState, "%s is not pending deletion.", s.KeyARN(k.ID))
		}
		k.State = StateDisabled
		if k.Origin == OriginExternal && !allImported(k) {
			k.State = StatePendingImport
		}
		k.DeletionDate = time.Time{}
		k.PendingWindowDays = 0
		arn = s.KeyARN(k.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &CancelKeyDeletionOutput{KeyId: arn}, nil
}

// --- aliases -------------------------------------------------------------

// CreateAlias implements [API].
func (s *Service) CreateAlias(ctx context.Context, in *CreateAliasInput) (*CreateAliasOutput, error) {
	if err := checkAliasName(in.AliasName); err != nil {
		return nil, err
	}
	ref, err := s.parseAuthorized(ctx, "kms:CreateAlias", in.TargetKeyId, false)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx Tx, r keyReader) error {
		if _, err := tx.GetAlias(in.AliasName); err == nil {
			return newError(CodeAlreadyExists, "An alias with the name %s already exists", s.AliasARN(in.AliasName))
		} else if !errors.Is(err, ErrNoRecord) {
			return err
		}
		k, err := s.loadAuthorized(ctx, r, "kms:CreateAlias", ref)
		if err != nil {
			return err
		}
		if err := s.notPendingDeletion(k); err != nil {
			return err
		}
		now := s.now().UTC()
		return tx.PutAlias(&AliasRecord{Name: in.AliasName, KeyID: k.ID, Created: now, LastUpdated: now})
	})
	if err != nil {
		return nil, err
	}
	return &CreateAliasOutput{}, nil
}

// UpdateAlias implements [API]. The new key must have the same spec class
// (symmetric or not) and usage as the old one, as in AWS.
func (s *Service) UpdateAlias(ctx context.Context, in *UpdateAliasInput) (*UpdateAliasOutput, error) {
	if err := checkAliasName(in.AliasName); err != nil {
		return nil, err
	}
	const action = "kms:UpdateAlias"
	ref, err := s.parseAuthorized(ctx, action, in.TargetKeyId, false)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx Tx, r keyReader) error {
		a, err := s.aliasTarget(ctx, tx, r, action, in.AliasName) // the key it points to now
		if err != nil {
			return err
		}
		if a.alias == nil {
			return newError(CodeNotFound, "Alias %s is not found.", s.AliasARN(in.AliasName))
		}
		k, err := s.loadAuthorized(ctx, r, action, ref) // the new one
		if err != nil {
			return err
		}
		if err := s.notPendingDeletion(k); err != nil {
			return err
		}
		if old := a.key; old != nil {
			if keySpecs[old.Spec].class() != keySpecs[k.Spec].class() || old.Usage != k.Usage {
				return s.keyError(k.ID, CodeValidation, "alias %s points to a %s key; the new target must be of the same type and usage, not %s", in.AliasName, old.Spec, k.Spec)
			}
		}
		a.alias.KeyID = k.ID
		a.alias.LastUpdated = s.now().UTC()
		return tx.PutAlias(a.alias)
	})
	if err != nil {
		return nil, err
	}
	return &UpdateAliasOutput{}, nil
}

// DeleteAlias implements [API].
func (s *Service) DeleteAlias(ctx context.Context, in *DeleteAliasInput) (*DeleteAliasOutput, error) {
	if err := checkAliasName(in.AliasName); err != nil {
		return nil, err
	}
	err := s.update(ctx, func(tx Tx, r keyReader) error {
		a, err := s.aliasTarget(ctx, tx, r, "kms:DeleteAlias", in.AliasName)
		if err != nil {
			return err
		}
		if a.alias == nil {
			return newError(CodeNotFound, "Alias %s is not found.", s.AliasARN(in.AliasName))
		}
		return tx.DeleteAlias(in.AliasName)
	})
	if err != nil {
		return nil, err
	}
	return &DeleteAliasOutput{}, nil
}

// aliasLoad is an alias and the key it points to: either may be nil (no
// such alias; a key that is gone).
type aliasLoad struct {
	alias *AliasRecord
	key   *KeyRecord
}

// aliasTarget reads an alias in tx and the key it points to through r (a
// reader in tx), and asks the Authorizer whether the caller may perform
// action on that key (on no key, if there is none, so that a refused caller
// learns nothing of it).
func (s *Service) aliasTarget(ctx context.Context, tx Tx, r keyReader, action, name string) (aliasLoad, error) {
	var l aliasLoad
	a, err := tx.GetAlias(name)
	switch {
	case errors.Is(err, ErrNoRecord):
	case err != nil:
		return l, err
	default:
		l.alias = a
		k, err := s.load(r, keyRef{id: a.KeyID, raw: name})
		if err != nil && CodeOf(err) != CodeNotFound {
			return l, err
		}
		l.key = k
	}
	return l, s.authorize(ctx, r, action, name, l.key, nil)
}

// ListAliases implements [API].
func (s *Service) ListAliases(ctx context.Context, in *ListAliasesInput) (*ListAliasesOutput, error) {
	limit, err := checkLimit(in.Limit, 100, 50)
	if err != nil {
		return nil, err
	}
	var ref keyRef
	if in.KeyId != "" {
		if ref, err = s.parseAuthorized(ctx, "kms:ListAliases", in.KeyId, false); err != nil {
			return nil, err
		}
	}
	if in.Marker != "" && !strings.HasPrefix(in.Marker, "alias/") {
		return nil, newError(CodeInvalidMarker, "invalid Marker %q", in.Marker)
	}
	out := &ListAliasesOutput{Aliases: []AliasListEntry{}}
	err = s.store.View(ctx, func(tx Tx) error { // a listing: not cached
		var keyID string
		if in.KeyId != "" {
			k, err := s.loadAuthorized(ctx, &storeReader{s: s, tx: tx}, "kms:ListAliases", ref)
			if err != nil {
				return err
			}
			keyID = k.ID
		}
		as, err := tx.ListAliases(keyID, in.Marker, limit+1)
		if err != nil {
			return err
		}
		for _, a := range as {
			if keyID == "" {
				// Aliases go with their key: skip those of a key whose
				// deletion date passed (Sweep removes them).
				k, err := tx.GetKey(a.KeyID)
				if errors.Is(err, ErrNoRecord) || err == nil && s.expired(k) {
					continue
				}
				if err != nil {
					return err
				}
			}
			out.Aliases = append(out.Aliases, AliasListEntry{AliasName: a.Name, AliasArn: s.AliasARN(a.Name),
				TargetKeyId: a.KeyID, CreationDate: ts(a.Created), LastUpdatedDate: ts(a.LastUpdated)})
		}
		return nil
	})
	if err != nil {
		return nil, internal(err)
	}
	if len(out.Aliases) > limit {
		out.Aliases = out.Aliases[:limit]
		out.Truncated = true
		out.NextMarker = out.Aliases[limit-1].AliasName
	}
	return out, nil
}

// --- tags --------------------------------------------------------------------

// TagResource implements [API].
func (s *Service) TagResource(ctx context.Context, in *TagResourceInput) (*TagResourceOutput, error) {
	if len(in.Tags) == 0 {
		return nil, validationf("Tags is required")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	err := s.modify(ctx, "kms:TagResource", in.KeyId, func(_ Tx, k *KeyRecord) error {
		if err := s.notPendingDeletion(k); err != nil {
			return err
		}
		for _, t := range in.Tags {
			k.Tags = setTag(k.Tags, t)
		}
		if len(k.Tags) > maxTagsPerKey {
			return newError(CodeLimitExceeded, "a key can have at most %d tags", maxTagsPerKey)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &TagResourceOutput{}, nil
}

// UntagResource implements [API].
func (s *Service) UntagResource(ctx context.Context, in *UntagResourceInput) (*UntagResourceOutput, error) {
	if len(in.TagKeys) == 0 {
		return nil, validationf("TagKeys is required")
	}
	for _, key := range in.TagKeys {
		if key == "" || utf8.RuneCountInString(key) > maxTagKeyLen {
			return nil, validationf("TagKeys must be 1 to %d characters each", maxTagKeyLen)
		}
	}
	err := s.modify(ctx, "kms:UntagResource", in.KeyId, func(_ Tx, k *KeyRecord) error {
		if err := s.notPendingDeletion(k); err != nil {
			return err
		}
		k.Tags = slices.DeleteFunc(k.Tags, func(t Tag) bool { return slices.Contains(in.TagKeys, t.Key) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &UntagResourceOutput{}, nil
}

// ListResourceTags implements [API].
func (s *Service) ListResourceTags(ctx context.Context, in *ListResourceTagsInput) (*ListResourceTagsOutput, error) {
	limit, err := checkLimit(in.Limit, 50, 50)
	if err != nil {
		return nil, err
	}
	ref, err := s.parseAuthorized(ctx, "kms:ListResourceTags", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	out := &ListResourceTagsOutput{Tags: []Tag{}}
	err = s.view(ctx, func(r keyReader) error {
		k, err := s.loadAuthorized(ctx, r, "kms:ListResourceTags", ref)
		if err != nil {
			return err
		}
		tags := slices.Clone(k.Tags)
		slices.SortFunc(tags, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
		start := 0
		if in.Marker != "" {
			start = len(tags)
			for i, t := range tags {
				if t.Key > in.Marker {
					start = i
					break
				}
			}
		}
		out.Tags = append(out.Tags[:0], tags[start:]...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out.Tags) > limit {
		out.Tags = out.Tags[:limit]
		out.Truncated = true
		out.NextMarker = out.Tags[limit-1].Key
	}
	return out, nil
}

// --- rotation ------------------------------------------------------------------

// notExternal refuses automatic rotation of keys of Origin EXTERNAL, as
// AWS does, whatever their state.
func (s *Service) notExternal(k *KeyRecord) error {
	if k.Origin == OriginExternal {
		return s.keyError(k.ID, CodeUnsupportedOperation, "%s origin is EXTERNAL which is not valid for this operation.", s.KeyARN(k.ID))
	}
	return nil
}

func (s *Service) symmetricOnly(k *KeyRecord, op string) error {
	if !keySpecs[k.Spec].symmetric() {
		return s.keyError(k.ID, CodeUnsupportedOperation, "%s is not supported for %s keys (%s)", op, k.Spec, s.KeyARN(k.ID))
	}
	return nil
}

// EnableKeyRotation implements [API]: the key's material rotates every
// RotationPeriodInDays (90–2560, default 365); every earlier version stays
// available for decryption.
func (s *Service) EnableKeyRotation(ctx context.Context, in *EnableKeyRotationInput) (*EnableKeyRotationOutput, error) {
	period := defaultRotation
	if in.RotationPeriodInDays != nil {
		period = int(*in.RotationPeriodInDays)
		if period < minRotationPeriod || period > maxRotationPeriod {
			return nil, validationf("RotationPeriodInDays must be between %d and %d, got %d", minRotationPeriod, maxRotationPeriod, period)
		}
	}
	err := s.modify(ctx, "kms:EnableKeyRotation", in.KeyId, func(_ Tx, k *KeyRecord) error {
		if err := s.notExternal(k); err != nil {
			return err
		}
		if err := s.usable(k); err != nil {
			return err
		}
		if err := s.symmetricOnly(k, "automatic key rotation"); err != nil {
			return err
		}
		k.RotationEnabled = true
		k.RotationPeriodDays = period
		k.NextRotationDate = s.now().UTC().AddDate(0, 0, period)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &EnableKeyRotationOutput{}, nil
}

// DisableKeyRotation implements [API].
func (s *Service) DisableKeyRotation(ctx context.Context, in *DisableKeyRotationInput) (*DisableKeyRotationOutput, error) {
	err := s.modify(ctx, "kms:DisableKeyRotation", in.KeyId, func(_ Tx, k *KeyRecord) error {
		if err := s.notExternal(k); err != nil {
			return err
		}
		if err := s.usable(k); err != nil {
			return err
		}
		if err := s.symmetricOnly(k, "automatic key rotation"); err != nil {
			return err
		}
		k.RotationEnabled = false
		k.NextRotationDate = time.Time{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &DisableKeyRotationOutput{}, nil
}

// GetKeyRotationStatus implements [API].
func (s *Service) GetKeyRotationStatus(ctx context.Context, in *GetKeyRotationStatusInput) (*GetKeyRotationStatusOutput, error) {
	ref, err := s.parseAuthorized(ctx, "kms:GetKeyRotationStatus", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	var out *GetKeyRotationStatusOutput
	err = s.view(ctx, func(r keyReader) error {
		k, err := s.loadAuthorized(ctx, r, "kms:GetKeyRotationStatus", ref)
		if err != nil {
			return err
		}
		if err := s.symmetricOnly(k, "key rotation"); err != nil {
			return err
		}
		out = &GetKeyRotationStatusOutput{KeyRotationEnabled: k.RotationEnabled, KeyId: s.KeyARN(k.ID)}
		if k.RotationEnabled {
			p := int32(k.RotationPeriodDays)
			out.RotationPeriodInDays = &p
			out.NextRotationDate = ts(k.NextRotationDate)
		}
		return nil
	})
	return out, err
}

// RotateKeyOnDemand implements [API]: new material now, at most 25 times
// per key, as in AWS. A key of Origin EXTERNAL rotates to the material
// imported for it with ImportType NEW_KEY_MATERIAL (KMSInvalidStateException
// if there is none).
func (s *Service) RotateKeyOnDemand(ctx context.Context, in *RotateKeyOnDemandInput) (*RotateKeyOnDemandOutput, error) {
	var arn string
	err := s.modify(ctx, "kms:RotateKeyOnDemand", in.KeyId, func(tx Tx, k *KeyRecord) error {
		if err := s.usable(k); err != nil {
			return err
		}
		if err := s.symmetricOnly(k, "on-demand key rotation"); err != nil {
			return err
		}
		n := 0
		for _, v := range k.Versions {
			if v.Rotation == "ON_DEMAND" {
				n++
			}
		}
		if n >= maxOnDemandRotations {
			return s.keyError(k.ID, CodeLimitExceeded, "%s has been rotated on demand %d times, the most allowed", s.KeyARN(k.ID), n)
		}
		arn = s.KeyARN(k.ID)
		if k.Origin == OriginExternal {
			last := &k.Versions[len(k.Versions)-1]
			if !last.PendingRotation {
				return s.keyError(k.ID, CodeInvalidState, "No available key material pending rotation for the key: %s.", arn)
			}
			last.PendingRotation, last.Rotation, last.Created = false, "ON_DEMAND", s.now().UTC()
			return nil
		}
		return s.addVersion(tx, k, "ON_DEMAND", s.now())
	})
	if err != nil {
		return nil, err
	}
	return &RotateKeyOnDemandOutput{KeyId: arn}, nil
}

// ListKeyRotations implements [API]: the material of a symmetric
// encryption key that rotations made, or with IncludeKeyMaterial
// ALL_KEY_MATERIAL all of it (the first, and imported material pending
// rotation), with each one's state (CURRENT, NON_CURRENT, PENDING_ROTATION)
// and, for imported material, whether it is imported and when it
// expires.
func (s *Service) ListKeyRotations(ctx context.Context, in *ListKeyRotationsInput) (*ListKeyRotationsOutput, error) {
	limit, err := checkLimit(in.Limit, 1000, 100)
	if err != nil {
		return nil, err
	}
	if err := checkEnum("IncludeKeyMaterial", in.IncludeKeyMaterial, awsIncludeKeyMaterial); err != nil {
		return nil, err
	}
	all := in.IncludeKeyMaterial == "ALL_KEY_MATERIAL"
	ref, err := s.parseAuthorized(ctx, "kms:ListKeyRotations", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	after := 0
	if in.Marker != "" {
		if after, err = strconv.Atoi(in.Marker); err != nil || after < 1 {
			return nil, newError(CodeInvalidMarker, "invalid Marker %q", in.Marker)
		}
	}
	out := &ListKeyRotationsOutput{Rotations: []RotationsListEntry{}}
	var lastVersion []int
	err = s.view(ctx, func(r keyReader) error {
		k, err := s.loadAuthorized(ctx, r, "kms:ListKeyRotations", ref)
		if err != nil {
			return err
		}
		if err := s.symmetricOnly(k, "key rotation"); err != nil {
			return err
		}
		out.Rotations, lastVersion = out.Rotations[:0], lastVersion[:0]
		cur := -1
		if len(k.Versions) > 0 {
			cur = currentIndex(k)
		}
		for i, v := range k.Versions {
			first := i == 0
			if v.Version <= after || !all && (first || v.PendingRotation) {
				continue
			}
			e := RotationsListEntry{KeyId: s.KeyARN(k.ID), KeyMaterialId: v.MaterialID, KeyMaterialState: "NON_CURRENT"}
			switch {
			case v.PendingRotation:
				e.KeyMaterialState = "PENDING_ROTATION"
			case i == cur:
				e.KeyMaterialState = "CURRENT"
			}
			if !first && !v.PendingRotation {
				e.RotationDate, e.RotationType = ts(v.Created), v.Rotation
			}
			if k.Origin == OriginExternal {
				e.KeyMaterialDescription, e.ImportState = v.Description, "PENDING_IMPORT"
				if v.Sealed != nil {
					e.ImportState, e.ExpirationModel = "IMPORTED", v.ExpirationModel
					if v.ExpirationModel == ExpirationModelExpires {
						e.ValidTo = ts(v.ValidTo)
					}
				}
			}
			out.Rotations = append(out.Rotations, e)
			lastVersion = append(lastVersion, v.Version)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out.Rotations) > limit {
		out.Rotations = out.Rotations[:limit]
		out.Truncated = true
		out.NextMarker = strconv.Itoa(lastVersion[limit-1])
	}
	return out, nil
}

// --- policies ------------------------------------------------------------------

// GetKeyPolicy implements [API]. The only policy name is "default".
func (s *Service) GetKeyPolicy(ctx context.Context, in *GetKeyPolicyInput) (*GetKeyPolicyOutput, error) {
	if in.PolicyName != "" && in.PolicyName != defaultPolicyName {
		return nil, newError(CodeNotFound, "Policy %q does not exist; the only key policy is \"default\"", in.PolicyName)
	}
	ref, err := s.parseAuthorized(ctx, "kms:GetKeyPolicy", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	var out *GetKeyPolicyOutput
	err = s.view(ctx, func(r keyReader) error {
		k, err := s.loadAuthorized(ctx, r, "kms:GetKeyPolicy", ref)
		if err != nil {
			return err
		}
		out = &GetKeyPolicyOutput{Policy: k.Policy, PolicyName: defaultPolicyName}
		return nil
	})
	return out, err
}

// PutKeyPolicy implements [API]. The document is parsed strictly
// (MalformedPolicyDocumentException naming the element at fault,
// LimitExceededException over 32 KiB), may name only principals that
// exist, and must still allow the caller to change the policy afterwards
// unless BypassPolicyLockoutSafetyCheck is set. It is stored as given:
// GetKeyPolicy returns it byte for byte, and it is the policy the
// Authorizer enforces from then on.
func (s *Service) PutKeyPolicy(ctx context.Context, in *PutKeyPolicyInput) (*PutKeyPolicyOutput, error) {
	if in.PolicyName != "" && in.PolicyName != defaultPolicyName {
		return nil, validationf("PolicyName must be \"default\"")
	}
	if in.Policy == "" {
		return nil, validationf("Policy is required")
	}
	const action = "kms:PutKeyPolicy"
	ref, err := s.parseAuthorizedWith(ctx, action, in.KeyId, false, &authzInfo{bypass: in.BypassPolicyLockoutSafetyCheck})
	if err != nil {
		return nil, err
	}
	c := s.callerOf(authorizerFrom(ctx))
	err = s.update(ctx, func(tx Tx, r keyReader) error {
		k, err := s.loadAuthorized(ctx, r, action, ref)
		if err != nil {
			return err
		}
		if _, err := s.parseKeyPolicy(c, in.Policy, s.KeyARN(k.ID), in.BypassPolicyLockoutSafetyCheck); err != nil {
			return err
		}
		k.Policy = in.Policy // allowed in every key state, as in AWS
		return tx.PutKey(k)
	})
	if err != nil {
		return nil, err
	}
	return &PutKeyPolicyOutput{}, nil
}

// ListKeyPolicies implements [API].
func (s *Service) ListKeyPolicies(ctx context.Context, in *ListKeyPoliciesInput) (*ListKeyPoliciesOutput, error) {
	if _, err := checkLimit(in.Limit, 1000, 100); err != nil {
		return nil, err
	}
	ref, err := s.parseAuthorized(ctx, "kms:ListKeyPolicies", in.KeyId, false)
	if err != nil {
		return nil, err
	}
	err = s.view(ctx, func(r keyReader) error {
		_, err := s.loadAuthorized(ctx, r, "kms:ListKeyPolicies", ref)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &ListKeyPoliciesOutput{PolicyNames: []string{defaultPolicyName}}, nil
}
