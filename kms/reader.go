package kms

import (
	"errors"
	"fmt"
	"slices"
)

// keyReader is how operations read keys: their records, aliases, unsealed
// material and parsed private keys. A store transaction provides it
// ([storeReader]), and so does the key cache in front of one
// ([cacheReader]); operations read keys through it and nothing else, so
// that the cache, when there is one, serves every read.
//
// Errors: a record that does not exist is an error wrapping [ErrNoRecord];
// the cache alone (on the hot path) fails what it does not hold with
// errCacheMiss, and the operation runs again against the store.
type keyReader interface {
	// key returns the record of the key with the given id.
	key(id string) (*KeyRecord, error)
	// alias returns the id of the key the alias ("alias/...") points to.
	alias(name string) (keyID string, err error)
	// material returns the plaintext material of one version of k; the
	// caller clears it when done.
	material(k *KeyRecord, version int) ([]byte, error)
	// privateKey returns the parsed private key of the asymmetric key k,
	// which the caller must not change.
	privateKey(k *KeyRecord) (privateKey, error)
	// destroyed reports whether id is the id of a key this KMS destroyed
	// (its tombstone).
	destroyed(id string) (bool, error)
	// grants returns the grants of the key with the given id whose
	// grantee principal is grantee, which the caller must not change.
	grants(keyID, grantee string) ([]*GrantRecord, error)
	// keyAliases returns the names of the aliases that point to the key
	// with the given id, in name order, which the caller must not change.
	keyAliases(keyID string) ([]string, error)
}

// storeReader reads keys in a store transaction, opening material with the
// root key. In a write transaction (maintain) it first does the maintenance
// due on each key it reads; in a read transaction it notes the keys whose
// maintenance is due (stale), for the caller to do it in a write
// transaction.
type storeReader struct {
	s        *Service
	tx       Tx
	maintain bool
	stale    []string
}

var _ keyReader = (*storeReader)(nil)

func (r *storeReader) key(id string) (*KeyRecord, error) {
	k, err := r.tx.GetKey(id)
	if err != nil {
		return nil, err
	}
	if r.maintain {
		if err := r.s.maintainKey(r.tx, k); err != nil {
			return nil, err
		}
		if k.State == "" {
			return nil, fmt.Errorf("key %q destroyed: %w", id, ErrNoRecord)
		}
		return k, nil
	}
	if r.s.maintenanceDue(k) && !slices.Contains(r.stale, id) {
		r.stale = append(r.stale, id)
	}
	return k, nil
}

func (r *storeReader) alias(name string) (string, error) {
	a, err := r.tx.GetAlias(name)
	if err != nil {
		return "", err
	}
	return a.KeyID, nil
}

func (r *storeReader) material(k *KeyRecord, version int) ([]byte, error) {
	var sealed []byte
	if k.MaterialInRecord() {
		// Imported material: sealed in the record itself.
		if version < 1 || version > len(k.Versions) || k.Versions[version-1].Sealed == nil {
			return nil, fmt.Errorf("kms: key %s version %d: its imported material is not there", k.ID, version)
		}
		sealed = k.Versions[version-1].Sealed
	} else {
		var err error
		if sealed, err = r.tx.GetMaterial(k.ID, version); err != nil {
			return nil, err
		}
	}
	m, err := r.s.root.Open(sealed, materialAAD(k.ID, version))
	if err != nil {
		return nil, fmt.Errorf("kms: key %s version %d: %w", k.ID, version, err)
	}
	return m, nil
}

func (r *storeReader) privateKey(k *KeyRecord) (privateKey, error) {
	spec := keySpecs[k.Spec]
	if spec == nil || !spec.asymmetric() {
		return nil, fmt.Errorf("kms: key %s of spec %s has no private key", k.ID, k.Spec)
	}
	der, err := r.material(k, current(k).Version)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	key, err := parsePrivateKey(spec, der)
	if err != nil {
		return nil, fmt.Errorf("kms: key %s: %v", k.ID, err)
	}
	return key, nil
}

func (r *storeReader) destroyed(id string) (bool, error) {
	_, err := r.tx.GetMeta(DeletedKeyMeta + id)
	if errors.Is(err, ErrNoRecord) {
		return false, nil
	}
	return err == nil, err
}

func (r *storeReader) grants(keyID, grantee string) ([]*GrantRecord, error) {
	return r.tx.ListGrants(GrantFilter{KeyID: keyID, Grantee: grantee}, "", 0)
}

func (r *storeReader) keyAliases(keyID string) ([]string, error) {
	as, err := r.tx.ListAliases(keyID, "", 0)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.Name
	}
	return names, nil
}
