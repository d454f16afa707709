package kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/envelopekms/envelope/kms/policy"
)

// Default identity of the keys' ARNs, arn:aws:kms:REGION:ACCOUNT:key/ID.
// The ESDK's KMS keyring validates ARNs, so they must look like AWS's.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "111122223333"
)

// Limits from the AWS KMS service model.
const (
	maxKeyIDLen          = 2048
	maxDescriptionLen    = 8192
	maxPlaintextLen      = 4096
	maxDataKeyBytes      = 1024
	maxGrantTokens       = 10
	maxAliasNameLen      = 256
	maxTagKeyLen         = 128
	maxTagValueLen       = 256
	maxTagsPerKey        = 50
	minPendingWindow     = 7
	maxPendingWindow     = 30
	defaultPendingWindow = 30
	minRotationPeriod    = 90
	maxRotationPeriod    = 2560
	defaultRotation      = 365
	maxOnDemandRotations = 25
	defaultPolicyName    = "default"
)

// Options configure a [Service].
type Options struct {
	// Region and AccountID go into key ARNs; defaults DefaultRegion and
	// DefaultAccountID.
	Region, AccountID string
	// Now is the clock; default time.Now. Tests move it to cross rotation
	// and deletion dates.
	Now func() time.Time
	// CacheTTL is how long key records, aliases, unsealed material and
	// parsed private keys are served from memory without reading the
	// store: 0 means DefaultCacheTTL, a negative value turns the cache
	// off. Changes made through this Service, and those announced to
	// [Service.Invalidate], take effect at once whatever the TTL.
	CacheTTL time.Duration
}

// Service is the KMS: it implements [API] over a [Store], sealing all key
// material under a [RootKey]. It is safe for concurrent use.
type Service struct {
	store    Store
	root     RootKey
	region   string
	account  string
	now      func() time.Time
	cache    *keyCache    // nil when off
	hot      *cacheReader // the cache alone (nil when off)
	policies policyCache  // parsed key policies by their text
	// newKeyPair makes GenerateDataKeyPair's pairs (tests count them).
	newKeyPair func(spec string) (priv, pub []byte, err error)
}

var _ API = (*Service)(nil)

// RootCheckMeta is the Store meta name of the value that proves a root key
// is the keystore's (present once New has run on the store).
const RootCheckMeta = "root-check"

const rootCheckName = RootCheckMeta

var rootCheckPlaintext = []byte("envelope keystore root key check v1")

// New returns a Service over store. On a new store it records a check value
// sealed under root; on an existing one it verifies root against that value
// and fails with [ErrWrongRootKey] if it does not match, so that a wrong root
// key never writes into a keystore it cannot read.
func New(ctx context.Context, store Store, root RootKey, opts Options) (*Service, error) {
	s := &Service{store: store, root: root, region: opts.Region, account: opts.AccountID, now: opts.Now, newKeyPair: newKeyPair}
	if s.region == "" {
		s.region = DefaultRegion
	}
	if s.account == "" {
		s.account = DefaultAccountID
	}
	if s.now == nil {
		s.now = time.Now
	}
	if ttl := opts.CacheTTL; ttl >= 0 {
		if ttl == 0 {
			ttl = DefaultCacheTTL
		}
		s.cache = newKeyCache(ttl, time.Now, s.maintenanceDue)
		s.hot = &cacheReader{c: s.cache}
	}
	err := store.Update(ctx, func(tx Tx) error {
		check, err := tx.GetMeta(rootCheckName)
		if errors.Is(err, ErrNoRecord) {
			keys, err := tx.ListKeys("", 1)
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				return errors.New("kms: the keystore holds keys but no root key check; refusing to guess")
			}
			sealed, err := SealRootCheck(root)
			if err != nil {
				return err
			}
			return tx.PutMeta(rootCheckName, sealed)
		}
		if err != nil {
			return err
		}
		pt, err := root.Open(check, []byte(rootCheckName))
		if err != nil || !bytes.Equal(pt, rootCheckPlaintext) {
			return ErrWrongRootKey
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Region returns the region in the service's ARNs.
func (s *Service) Region() string { return s.region }

// AccountID returns the account in the service's ARNs.
func (s *Service) AccountID() string { return s.account }

// KeyARN returns the ARN of the key with the given id.
func (s *Service) KeyARN(id string) string {
	return "arn:aws:kms:" + s.region + ":" + s.account + ":key/" + id
}

// AliasARN returns the ARN of an alias ("alias/NAME").
func (s *Service) AliasARN(name string) string {
	return "arn:aws:kms:" + s.region + ":" + s.account + ":" + name
}

// --- key references ------------------------------------------------------

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// keyRef is a parsed KeyId parameter: a key id or an alias name.
type keyRef struct {
	id, alias string
	raw       string
	// aliasRefused is an alias given where the operation takes only a
	// key id or ARN: it is resolved and authorized all the same, then
	// refused (see loadAuthorized).
	aliasRefused bool
	// info is what the request tells the Authorizer besides the key.
	info *authzInfo
}

func (s *Service) parseKeyRef(raw string, allowAlias bool) (keyRef, error) {
	if raw == "" {
		return keyRef{}, validationf("KeyId is required")
	}
	if len(raw) > maxKeyIDLen {
		return keyRef{}, validationf("KeyId is longer than %d characters", maxKeyIDLen)
	}
	ref := keyRef{raw: raw}
	v := raw
	if strings.HasPrefix(raw, "arn:") {
		parts := strings.SplitN(raw, ":", 6)
		if len(parts) != 6 || parts[1] == "" || parts[2] != "kms" {
			return keyRef{}, newError(CodeInvalidArn, "%q is not a valid KMS ARN", raw)
		}
		if parts[3] != s.region || parts[4] != s.account {
			return keyRef{}, newError(CodeNotFound, "Key '%s' does not exist (this KMS serves region %s, account %s)", raw, s.region, s.account)
		}
		v = parts[5]
		switch {
		case strings.HasPrefix(v, "key/"):
			v = strings.TrimPrefix(v, "key/")
		case strings.HasPrefix(v, "alias/"):
		default:
			return keyRef{}, newError(CodeInvalidArn, "%q is not a key or alias ARN", raw)
		}
	}
	if strings.HasPrefix(v, "alias/") {
		if !allowAlias {
			return keyRef{}, newError(CodeNotFound, "Invalid keyId '%s': this operation takes a key ID or key ARN, not an alias", raw)
		}
		ref.alias = v
		return ref, nil
	}
	if !uuidRE.MatchString(v) {
		return keyRef{}, newError(CodeNotFound, "Invalid keyId '%s'", raw)
	}
	ref.id = v
	return ref, nil
}

// load returns the key a reference names, read through r. Keys whose
// deletion date has passed are gone: they are reported as not found (and
// removed by Sweep, or by the maintenance a read transaction triggers when
// it meets them).
func (s *Service) load(r keyReader, ref keyRef) (*KeyRecord, error) {
	id := ref.id
	if ref.alias != "" {
		var err error
		id, err = r.alias(ref.alias)
		if errors.Is(err, ErrNoRecord) {
			return nil, newError(CodeNotFound, "Alias %s is not found.", s.AliasARN(ref.alias))
		}
		if err != nil {
			return nil, err
		}
	}
	k, err := r.key(id)
	if errors.Is(err, ErrNoRecord) || err == nil && s.expired(k) {
		return nil, s.keyError(id, CodeNotFound, "Key '%s' does not exist", s.KeyARN(id))
	}
	if err == nil && s.materialExpiryDue(k) {
		// Its expiry is not written yet (a read-only store, or a read
		// before the maintenance): the material is gone all the same.
		k = s.withExpiredMaterial(k)
	}
	return k, err
}

func (s *Service) expired(k *KeyRecord) bool {
	return k.State == StatePendingDeletion && !k.DeletionDate.IsZero() && !s.now().Before(k.DeletionDate)
}

func (s *Service) rotationDue(k *KeyRecord) bool {
	return k.RotationEnabled && k.State == StateEnabled && !k.NextRotationDate.IsZero() && !s.now().Before(k.NextRotationDate)
}

// maintenanceDue reports whether k is to be destroyed or rotated now, or
// imported material of it has expired.
func (s *Service) maintenanceDue(k *KeyRecord) bool {
	return s.expired(k) || s.rotationDue(k) || s.materialExpiryDue(k)
}

// Key states.
const (
	StateEnabled         = "Enabled"
	StateDisabled        = "Disabled"
	StatePendingDeletion = "PendingDeletion"
	// StatePendingImport is the state of a key of Origin EXTERNAL while
	// material permanently associated with it is not imported: never yet,
	// deleted, or expired.
	StatePendingImport = "PendingImport"
)

// usable reports whether a key may be used for cryptographic operations.
func (s *Service) usable(k *KeyRecord) error {
	switch k.State {
	case StateEnabled:
		return nil
	case StateDisabled:
		return s.keyError(k.ID, CodeDisabled, "%s is disabled.", s.KeyARN(k.ID))
	case StatePendingDeletion:
		return s.keyError(k.ID, CodeInvalidState, "%s is pending deletion.", s.KeyARN(k.ID))
	case StatePendingImport:
		return s.keyError(k.ID, CodeInvalidState, "%s is pending import.", s.KeyARN(k.ID))
	}
	return s.keyError(k.ID, CodeInvalidState, "%s is in state %s.", s.KeyARN(k.ID), k.State)
}

// notPendingImport refuses EnableKey and DisableKey on a key that awaits
// its imported material.
func (s *Service) notPendingImport(k *KeyRecord) error {
	if k.State == StatePendingImport {
		return s.keyError(k.ID, CodeInvalidState, "%s is pending import.", s.KeyARN(k.ID))
	}
	return nil
}

// notPendingDeletion refuses management changes to a key being deleted.
func (s *Service) notPendingDeletion(k *KeyRecord) error {
	if k.State == StatePendingDeletion {
		return s.keyError(k.ID, CodeInvalidState, "%s is pending deletion.", s.KeyARN(k.ID))
	}
	return nil
}

// --- transactions: the cache, maintenance, invalidation ------------------

// view runs fn, a read-only operation, reading keys through the cache: from
// memory alone first, so that hot keys need no store transaction; on a miss
// fn runs again in a store transaction, through the cache, which keeps what
// it reads. If fn meets a key whose rotation is due or whose deletion date
// has passed, that maintenance is done in a write transaction and fn runs
// once more.
func (s *Service) view(ctx context.Context, fn func(keyReader) error) error {
	if err := ctx.Err(); err != nil {
		return err // the store would refuse too; the cache must not hide it
	}
	if s.hot != nil {
		err := fn(s.hot)
		if !errors.Is(err, errCacheMiss) {
			s.cache.hits.Add(1)
			return internal(err)
		}
		s.cache.misses.Add(1)
	}
	stale, err := s.read(ctx, fn)
	if len(stale) == 0 {
		return internal(err)
	}
	if merr := s.maintain(ctx, stale); merr != nil && !errors.Is(merr, ErrStoreUnwritable) {
		return internal(merr)
	}
	// Maintained, or deferred until the store can be written: load hides
	// expired keys either way, and a due rotation waits.
	_, err = s.read(ctx, fn)
	return internal(err)
}

// read runs fn in a store transaction, through the cache if there is one,
// and returns the keys fn met whose maintenance is due.
func (s *Service) read(ctx context.Context, fn func(keyReader) error) (stale []string, err error) {
	var start uint64
	if s.cache != nil {
		start = s.cache.begin() // before the transaction: see keyCache
		defer s.cache.end()
	}
	err = s.store.View(ctx, func(tx Tx) error {
		sr := &storeReader{s: s, tx: tx}
		var r keyReader = sr
		if s.cache != nil {
			r = &cacheReader{c: s.cache, next: sr, start: start}
		}
		err := fn(r)
		stale = sr.stale
		return err
	})
	return stale, err
}

// update runs fn in a write transaction, with a reader that does the
// maintenance due on the keys fn reads, and then invalidates in the cache
// what the transaction changed.
func (s *Service) update(ctx context.Context, fn func(tx Tx, r keyReader) error) error {
	// fn may run more than once (see Store.Update): changed collects the
	// writes of every run, which names more than the last run committed
	// at worst, and dropping more from the cache is harmless.
	var changed Change
	err := s.store.Update(ctx, func(tx Tx) error {
		rec := &recordingTx{Tx: tx, change: &changed}
		return fn(rec, &storeReader{s: s, tx: rec, maintain: true})
	})
	// Even after an error: a failed commit may have been applied.
	s.Invalidate(changed)
	return internal(err)
}

// recordingTx notes in change what is written through it, for
// [Service.Invalidate]. Everything a write transaction of the service
// writes goes through one.
type recordingTx struct {
	Tx
	change *Change
}

func (t *recordingTx) PutKey(k *KeyRecord) error { return t.noteKey(k.ID, t.Tx.PutKey(k)) }
func (t *recordingTx) DeleteKey(id string) error { return t.noteKey(id, t.Tx.DeleteKey(id)) }
func (t *recordingTx) PutMaterial(keyID string, version int, sealed []byte) error {
	return t.noteKey(keyID, t.Tx.PutMaterial(keyID, version, sealed))
}
func (t *recordingTx) PutAlias(a *AliasRecord) error { return t.noteAlias(a.Name, t.Tx.PutAlias(a)) }
func (t *recordingTx) PutGrant(g *GrantRecord) error { return t.noteKey(g.KeyID, t.Tx.PutGrant(g)) }

// DeleteGrant notes a change to the grant's key, which it reads first.
func (t *recordingTx) DeleteGrant(id string) error {
	g, err := t.Tx.GetGrant(id)
	if errors.Is(err, ErrNoRecord) {
		return nil
	}
	if err != nil {
		return err
	}
	return t.noteKey(g.KeyID, t.Tx.DeleteGrant(id))
}
func (t *recordingTx) DeleteAlias(name string) error {
	return t.noteAlias(name, t.Tx.DeleteAlias(name))
}

// noteKey and noteAlias note a change to a key or an alias, and return the
// error of the write that made it (noted all the same: it may have been
// done).
func (t *recordingTx) noteKey(id string, err error) error {
	t.change.KeyIDs = append(t.change.KeyIDs, id)
	return err
}

func (t *recordingTx) noteAlias(name string, err error) error {
	t.change.Aliases = append(t.change.Aliases, name)
	return err
}

// maintain does the maintenance due on the keys ids names.
func (s *Service) maintain(ctx context.Context, ids []string) error {
	return s.update(ctx, func(_ Tx, r keyReader) error {
		for _, id := range ids {
			if _, err := r.key(id); err != nil && !errors.Is(err, ErrNoRecord) {
				return err
			}
		}
		return nil
	})
}

// maintainKey destroys a key whose deletion date has passed (k.State is set
// to "" to say so) and performs automatic rotations that are due.
func (s *Service) maintainKey(tx Tx, k *KeyRecord) error {
	if s.expired(k) {
		if err := tx.DeleteKey(k.ID); err != nil {
			return err
		}
		// A tombstone, so that ciphertexts of the key are told it was
		// deleted rather than that they are damaged.
		if err := tx.PutMeta(DeletedKeyMeta+k.ID, []byte(k.DeletionDate.UTC().Format(time.RFC3339))); err != nil {
			return err
		}
		k.State = ""
		return nil
	}
	// Imported material whose ValidTo has come is destroyed.
	changed := s.expireMaterial(k)
	// An enabled key rotates on each scheduled date, even when nothing
	// met it then (the rotation is recorded on its date). Disabled periods
	// are not made up: EnableKey reschedules an overdue rotation to now.
	for s.rotationDue(k) {
		if err := s.addVersion(tx, k, "AUTOMATIC", k.NextRotationDate); err != nil {
			return err
		}
		k.NextRotationDate = k.NextRotationDate.AddDate(0, 0, k.RotationPeriodDays)
		changed = true
	}
	if changed {
		return tx.PutKey(k)
	}
	return nil
}

// DeletedKeyMeta prefixes the Store meta names of the tombstones of
// destroyed keys (DeletedKeyMeta + key id; the value is the deletion date,
// RFC 3339, not sealed), by which Decrypt tells a ciphertext of a deleted key
// from a damaged one.
const DeletedKeyMeta = "deleted-key/"

// existed reports whether a key id is, or was, one of this KMS's keys.
func (s *Service) existed(r keyReader, id string) (bool, error) {
	_, err := r.key(id)
	if err == nil || !errors.Is(err, ErrNoRecord) {
		return err == nil, err
	}
	return r.destroyed(id)
}

// Sweep destroys every key whose deletion window has ended and performs
// every automatic rotation that is due. The service also does this lazily
// whenever it meets such a key; Sweep makes it happen on a schedule.
func (s *Service) Sweep(ctx context.Context) error {
	after := ""
	for {
		var ids []string
		err := s.store.View(ctx, func(tx Tx) error { // a listing: not cached
			keys, err := tx.ListKeys(after, 500)
			if err != nil {
				return err
			}
			ids = ids[:0]
			for _, k := range keys {
				after = k.ID
				if s.maintenanceDue(k) {
					ids = append(ids, k.ID)
				}
			}
			if len(keys) == 0 {
				after = ""
			}
			return nil
		})
		if err != nil {
			return internal(err)
		}
		if len(ids) > 0 {
			if err := s.maintain(ctx, ids); err != nil {
				return internal(err)
			}
		}
		if after == "" {
			return nil
		}
	}
}

// --- material ----------------------------------------------------------

func materialAAD(keyID string, version int) []byte {
	return binary.BigEndian.AppendUint32([]byte("material:"+keyID+":"), uint32(version))
}

// addVersion generates, seals and stores a new version of k's material and
// appends it to k.Versions (the caller stores k).
func (s *Service) addVersion(tx Tx, k *KeyRecord, rotation string, at time.Time) error {
	spec, ok := keySpecs[k.Spec]
	if !ok {
		return fmt.Errorf("kms: key %s has unknown spec %q", k.ID, k.Spec)
	}
	material, err := spec.generate()
	if err != nil {
		return err
	}
	defer clear(material)
	version := len(k.Versions) + 1
	sealed, err := s.root.Seal(material, materialAAD(k.ID, version))
	if err != nil {
		return err
	}
	if err := tx.PutMaterial(k.ID, version, sealed); err != nil {
		return err
	}
	mid := make([]byte, 32)
	rand.Read(mid)
	k.Versions = append(k.Versions, KeyVersion{Version: version, MaterialID: hex.EncodeToString(mid), Created: at.UTC(), Rotation: rotation})
	return nil
}

// current returns the version of k's material that new encryptions use:
// the last, but for imported material pending rotation.
func current(k *KeyRecord) KeyVersion { return k.Versions[currentIndex(k)] }

// currentIndex is the index of current(k) in k.Versions.
func currentIndex(k *KeyRecord) int {
	i := len(k.Versions) - 1
	if i > 0 && k.Versions[i].PendingRotation {
		i--
	}
	return i
}

// --- validation helpers ----------------------------------------------------

func checkLimit(limit *int32, max, def int) (int, error) {
	if limit == nil {
		return def, nil
	}
	if *limit < 1 || int(*limit) > max {
		return 0, validationf("Limit must be between 1 and %d, got %d", max, *limit)
	}
	return int(*limit), nil
}

func checkTags(tags []Tag) error {
	for _, t := range tags {
		if len(t.Key) < 1 || utf8.RuneCountInString(t.Key) > maxTagKeyLen {
			return validationf("TagKey must be 1 to %d characters", maxTagKeyLen)
		}
		if utf8.RuneCountInString(t.Value) > maxTagValueLen {
			return validationf("TagValue must be at most %d characters", maxTagValueLen)
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return newError(CodeTag, "tag keys starting with aws: are reserved")
		}
	}
	return nil
}

var aliasRE = regexp.MustCompile(`^[a-zA-Z0-9:/_-]+$`)

func checkAliasName(name string) error {
	if name == "" || len(name) > maxAliasNameLen {
		return validationf("AliasName must be 1 to %d characters", maxAliasNameLen)
	}
	if !aliasRE.MatchString(name) {
		return validationf("AliasName %q may contain only letters, digits and : / _ -", name)
	}
	if !strings.HasPrefix(name, "alias/") || name == "alias/" {
		return newError(CodeInvalidAliasName, "Alias must start with the prefix \"alias/\": %q", name)
	}
	if strings.HasPrefix(name, "alias/aws/") {
		return newError(CodeInvalidAliasName, "Alias names beginning with alias/aws/ are reserved: %q", name)
	}
	return nil
}

func dryRun() error {
	return newError(CodeDryRun, "The request would have succeeded, but the DryRun flag is set.")
}

// metadata builds the KeyMetadata of k.
func (s *Service) metadata(k *KeyRecord) *KeyMetadata {
	spec := keySpecs[k.Spec]
	m := &KeyMetadata{
		AWSAccountId:          s.account,
		KeyId:                 k.ID,
		Arn:                   s.KeyARN(k.ID),
		CreationDate:          ts(k.CreationDate),
		Enabled:               k.State == StateEnabled,
		Description:           k.Description,
		KeyUsage:              k.Usage,
		KeyState:              k.State,
		DeletionDate:          ts(k.DeletionDate),
		Origin:                originOf(k),
		KeyManager:            "CUSTOMER",
		CustomerMasterKeySpec: k.Spec,
		KeySpec:               k.Spec,
	}
	if spec != nil {
		algs := spec.algorithms(k.Usage)
		switch k.Usage {
		case UsageEncryptDecrypt:
			m.EncryptionAlgorithms = algs
		case UsageSignVerify:
			m.SigningAlgorithms = algs
		case UsageGenerateVerifyMac:
			m.MacAlgorithms = algs
		case UsageKeyAgreement:
			m.KeyAgreementAlgorithms = algs
		}
	}
	if k.Origin == OriginExternal {
		model, validTo := importExpiry(k)
		m.ExpirationModel, m.ValidTo = model, ts(validTo)
	}
	if k.State == StatePendingDeletion && k.PendingWindowDays > 0 {
		d := int32(k.PendingWindowDays)
		m.PendingDeletionWindowInDays = &d
	}
	if spec != nil && spec.symmetric() && len(k.Versions) > 0 {
		m.CurrentKeyMaterialId = current(k).MaterialID
	}
	return m
}

// defaultPolicy is the key policy of a key created without one: AWS's
// default, the account allowed every action.
func (s *Service) defaultPolicy() string { return policy.DefaultKeyPolicy(s.account) }

// ResolveKey returns the id of the key a reference names (key id, key ARN,
// alias name or alias ARN), or a NotFoundException.
func (s *Service) ResolveKey(ctx context.Context, ref string) (string, error) {
	r, err := s.parseKeyRef(ref, true)
	if err != nil {
		return "", err
	}
	var id string
	err = s.view(ctx, func(kr keyReader) error {
		k, err := s.load(kr, r)
		if err != nil {
			return err
		}
		id = k.ID
		return nil
	})
	return id, err
}
