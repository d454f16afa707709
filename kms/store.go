package kms

import (
	"context"
	"errors"
	"time"
)

// Store persists a keystore: key metadata, sealed key material, aliases and
// a few named values. It never sees key material in the clear: the service
// seals material under the root key before handing it over. Implementations
// live under kms/store/ (kms/store/sqlite for the embedded keystore).
//
// A [Service] caches what it reads of keys ([Options.CacheTTL]). A store
// that other processes write to as well (several servers on one database)
// should tell each Service of their changes, by calling
// [Service.Invalidate] once they are committed; without that, a change made
// elsewhere is seen within the cache's TTL.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in one read-write transaction. When Update returns
	// nil, every change fn made is durable; when fn returns an error,
	// none is applied and Update returns that error. fn must not call
	// Update itself (it would wait forever on its own transaction).
	//
	// Update may run fn more than once: a store whose concurrent
	// transactions can conflict (PostgreSQL's, at SERIALIZABLE
	// isolation) rolls back a transaction that lost a conflict and runs
	// fn again in a new one, and only that last run's writes are
	// applied. fn must therefore read what it needs through the Tx of
	// the run it is given, and keep nothing from an earlier run: no value
	// computed then, no change made to a record it did not read in this
	// run. Effects outside the store (counters, messages) may happen once
	// per run.
	Update(ctx context.Context, fn func(Tx) error) error
	// Close releases the store.
	Close() error
}

// ErrNoRecord is wrapped by the errors of the getters of a [Tx] for a
// record the store does not hold. It is the store's answer, not the API's:
// operations answer a missing key or alias with an [*Error] of Code
// [CodeNotFound] (see [ErrKeyNotFound]).
var ErrNoRecord = errors.New("kms: no such record in the store")

// ErrStoreUnwritable is wrapped by the errors of a [Store] that can be read
// but not written now: opened read-only, on a read-only file system, or
// with its disk full. The service then still answers what needs no write,
// and defers the maintenance (rotations due, deletions whose window ended)
// that would write; expired keys are treated as gone all the same.
var ErrStoreUnwritable = errors.New("kms: the store cannot be written")

// Tx is one transaction on a [Store]. A Tx must not be used after the
// function it was passed to returns.
type Tx interface {
	// GetKey returns the key with the given id, or an error wrapping
	// [ErrNoRecord].
	GetKey(id string) (*KeyRecord, error)
	// PutKey inserts or replaces a key's metadata.
	PutKey(k *KeyRecord) error
	// DeleteKey removes a key, all its material and every alias that
	// points to it. Deleting an absent key is not an error.
	DeleteKey(id string) error
	// ListKeys returns up to limit keys (limit ≤ 0: all) whose id sorts
	// after the given one ("" for the first page), in id order.
	ListKeys(after string, limit int) ([]*KeyRecord, error)

	// GetMaterial returns the sealed material of one version of a key,
	// or an error wrapping [ErrNoRecord].
	GetMaterial(keyID string, version int) ([]byte, error)
	// PutMaterial stores the sealed material of a key version. Material
	// is written once: storing a version that exists is an error, and so
	// is material (or an alias) for a key that does not exist.
	PutMaterial(keyID string, version int, sealed []byte) error

	// GetAlias returns the alias with the given name ("alias/..."), or
	// an error wrapping [ErrNoRecord].
	GetAlias(name string) (*AliasRecord, error)
	// PutAlias inserts or replaces an alias.
	PutAlias(a *AliasRecord) error
	// DeleteAlias removes an alias. Deleting an absent alias is not an
	// error.
	DeleteAlias(name string) error
	// ListAliases returns up to limit aliases whose name sorts after the
	// given one, in name order; keyID, when not empty, keeps only the
	// aliases of that key.
	ListAliases(keyID, after string, limit int) ([]*AliasRecord, error)

	// GetMeta returns a named keystore value, or an error wrapping
	// [ErrNoRecord].
	GetMeta(name string) ([]byte, error)
	// PutMeta sets a named keystore value.
	PutMeta(name string, value []byte) error
	// ListMeta returns up to limit names of keystore values (limit ≤ 0:
	// all) that sort after the given one, in name order (to copy a
	// keystore whole).
	ListMeta(after string, limit int) ([]string, error)

	// GetGrant returns the grant with the given id, or an error wrapping
	// [ErrNoRecord].
	GetGrant(id string) (*GrantRecord, error)
	// PutGrant inserts or replaces a grant. Its key must exist; deleting
	// the key deletes its grants.
	PutGrant(g *GrantRecord) error
	// DeleteGrant removes a grant. Deleting an absent grant is not an
	// error.
	DeleteGrant(id string) error
	// ListGrants returns up to limit grants (limit ≤ 0: all) that match f
	// and whose id sorts after the given one, in id order.
	ListGrants(f GrantFilter, after string, limit int) ([]*GrantRecord, error)
	// CountGrants returns the number of grants of a key.
	CountGrants(keyID string) (int, error)
}

// GrantFilter selects the grants [Tx.ListGrants] returns: those of KeyID
// (with Grantee, only that grantee's; with Name, only the grant of that
// name), or, with KeyID empty, those RetiringPrincipal may retire, of
// every key. A filter with neither KeyID nor RetiringPrincipal selects
// every grant (to copy a keystore whole).
type GrantFilter struct {
	KeyID             string
	Grantee           string
	Name              string
	RetiringPrincipal string
}

// CreationLocker is implemented by a [Store] that several processes may
// create at once (two CLI commands on a new keystore, servers starting
// together on a new database). LockCreation takes the store's creation lock
// — exclusive to create the keystore (root key, its check value, the first
// keys) in one step, shared to wait for a creation in progress without
// creating — and holds it until the function it returns is called. The
// lock is released if its process dies. It waits until the lock is granted
// or ctx ends.
type CreationLocker interface {
	LockCreation(ctx context.Context, shared bool) (unlock func(), err error)
}

// Watcher is implemented by a [Store] that other processes write to as well
// (several servers on one database). Watch calls fn with each change other
// processes commit, once it is visible to transactions that begin
// afterwards, and with Change{All: true} whenever it may have missed changes
// (when it starts, and after losing and regaining its connection); a
// server passes fn = [Service.Invalidate]. fn is called from one goroutine,
// one change at a time. Watch returns when ctx ends, or with an error if it
// cannot start.
type Watcher interface {
	Watch(ctx context.Context, fn func(Change)) error
}

// KeyRecord is the stored metadata of a KMS key. Stores keep it as an
// opaque document (JSON), so fields can be added without a schema change.
type KeyRecord struct {
	ID    string `json:"id"`
	Spec  string `json:"spec"`  // KeySpec, e.g. SYMMETRIC_DEFAULT
	Usage string `json:"usage"` // KeyUsage, e.g. ENCRYPT_DECRYPT
	State string `json:"state"` // KeyState: Enabled, Disabled, PendingDeletion, PendingImport
	// Origin is "" for material made here (AWS_KMS), or EXTERNAL for
	// imported material, which the versions then hold sealed themselves.
	Origin       string    `json:"origin,omitempty"`
	Description  string    `json:"description,omitempty"`
	CreationDate time.Time `json:"creationDate"`
	// DeletionDate is when a PendingDeletion key's material is destroyed.
	DeletionDate time.Time `json:"deletionDate,omitzero"`
	// PendingWindowDays is the deletion window that was scheduled.
	PendingWindowDays int `json:"pendingWindowDays,omitempty"`
	// Rotation.
	RotationEnabled    bool      `json:"rotationEnabled,omitempty"`
	RotationPeriodDays int       `json:"rotationPeriodDays,omitempty"`
	NextRotationDate   time.Time `json:"nextRotationDate,omitzero"`
	Tags               []Tag     `json:"tags,omitempty"`
	// Policy is the key policy document (PutKeyPolicy).
	Policy string `json:"policy,omitempty"`
	// Versions lists the key material versions, oldest first; the last is
	// the one new encryptions use, unless it is imported material pending
	// rotation (then the one before it). Asymmetric and HMAC keys have one
	// at most (none while a key of Origin EXTERNAL awaits its first
	// import).
	Versions []KeyVersion `json:"versions"`
}

// KeyVersion is one generation of a key's material.
type KeyVersion struct {
	Version int `json:"version"` // 1, 2, ...
	// MaterialID is the KeyMaterialId reported for this version (hex).
	MaterialID string    `json:"materialId"`
	Created    time.Time `json:"created"`
	// Rotation is "" for the first version, else AUTOMATIC or ON_DEMAND.
	Rotation string `json:"rotation,omitempty"`

	// The fields below are set for keys of Origin EXTERNAL only, whose
	// material is imported. The store's material table holds none of it:
	// Sealed is the material sealed under the root key (bound, as the
	// table's is, to key id and version), nil while it is not imported
	// (never yet, deleted, or expired); the record is the only place it
	// lives, so that deleting it destroys it.
	Sealed []byte `json:"sealed,omitempty"`
	// ExpirationModel (KEY_MATERIAL_EXPIRES or
	// KEY_MATERIAL_DOES_NOT_EXPIRE) and ValidTo are those of the import
	// that Sealed holds.
	ExpirationModel string    `json:"expirationModel,omitempty"`
	ValidTo         time.Time `json:"validTo,omitzero"`
	// Description is the KeyMaterialDescription of the material.
	Description string `json:"description,omitempty"`
	// PendingRotation marks imported material that awaits
	// RotateKeyOnDemand to become current (always the last version).
	PendingRotation bool `json:"pendingRotation,omitempty"`
}

// Tag is a key tag.
type Tag struct {
	Key   string `json:"TagKey"`
	Value string `json:"TagValue"`
}

// GrantRecord is a stored grant: permission for a grantee principal to
// perform some operations with a key, under constraints. Stores index its
// id, key, grantee, name and retiring principal, and keep the rest as an
// opaque document.
type GrantRecord struct {
	ID    string `json:"id"` // 64 hexadecimal digits
	KeyID string `json:"keyId"`
	// Name is the grant's name ("" for none): CreateGrant with the name of
	// an existing grant of the key and the same fields returns it.
	Name              string            `json:"name,omitempty"`
	GranteePrincipal  string            `json:"granteePrincipal"`
	RetiringPrincipal string            `json:"retiringPrincipal,omitempty"`
	Operations        []string          `json:"operations"`
	Constraints       *GrantConstraints `json:"constraints,omitempty"`
	IssuingAccount    string            `json:"issuingAccount"`
	CreationDate      time.Time         `json:"creationDate"`
}

// AliasRecord is a stored alias.
type AliasRecord struct {
	Name        string    `json:"name"` // "alias/..."
	KeyID       string    `json:"keyId"`
	Created     time.Time `json:"created"`
	LastUpdated time.Time `json:"lastUpdated"`
}
