package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/envelopekms/envelope/kms"
)

// CopyStats counts what a copy of a keystore holds.
type CopyStats struct {
	// Keys are the key records, with their tags, policies, descriptions,
	// states, deletion dates and rotation schedules.
	Keys int
	// Versions are the key material versions of those keys.
	Versions int
	// Aliases are the aliases.
	Aliases int
	// Deleted are the records of destroyed keys (by which Decrypt tells a
	// ciphertext of a deleted key from a damaged one).
	Deleted int
	// AuditKey reports whether the keystore holds the audit key of its
	// servers' logs, and AuditLogs counts the logs whose high-water marks
	// it keeps.
	AuditKey  bool
	AuditLogs int
}

// ErrNotEmpty is wrapped by the error of [Copy] when the destination store
// holds anything: a copy goes only into an empty store.
var ErrNotEmpty = errors.New("the destination store is not empty")

// snapshot is a keystore's content as one read transaction saw it, still
// sealed under its root key.
type snapshot struct {
	keys      []*kms.KeyRecord
	materials []material
	aliases   []*kms.AliasRecord
	grants    []*kms.GrantRecord
	deleted   map[string][]byte // tombstones: meta name → value
	auditKey  []byte            // sealed, nil if none
	auditLogs []byte            // sealed, nil if none
	stats     CopyStats
}

// material is one sealed version of a key's material.
type material struct {
	keyID   string
	version int
	sealed  []byte
}

// What a copy does with each of the keystore's meta values, by name: values
// about the root key stay behind (the destination records its own), the ARN
// identity is written afresh from the source's service, the audit key and
// marks are sealed again, and the tombstones of deleted keys go as they are.
// A value of any other name is one this envelope does not know, perhaps
// sealed under the root key: a copy refuses it rather than drop it or copy
// it unreadable.
func metaCopied(name string) (copied, known bool) {
	switch {
	case name == kms.RootCheckMeta, name == metaRootSource, name == metaRootKDF, name == metaRootKMS, name == metaIdentity:
		return false, true
	case name == metaAuditKey, name == metaAuditLogs, strings.HasPrefix(name, kms.DeletedKeyMeta):
		return true, true
	}
	return false, false
}

// read reads the keystore whole in one read transaction: a consistent
// snapshot even while servers use it.
func (k *Keystore) read(ctx context.Context) (*snapshot, error) {
	var s *snapshot
	err := k.store.View(ctx, func(tx kms.Tx) error {
		s = &snapshot{deleted: map[string][]byte{}}
		var err error
		if s.keys, err = tx.ListKeys("", 0); err != nil {
			return err
		}
		for _, key := range s.keys {
			if key.MaterialInRecord() {
				// Imported material: sealed in the record (resealed by
				// kms.ResealRecord).
				for _, v := range key.Versions {
					if v.Sealed != nil {
						s.stats.Versions++
					}
				}
				continue
			}
			for _, v := range key.Versions {
				sealed, err := tx.GetMaterial(key.ID, v.Version)
				if err != nil {
					return fmt.Errorf("key %s version %d: %w", key.ID, v.Version, err)
				}
				s.materials = append(s.materials, material{key.ID, v.Version, sealed})
			}
		}
		if s.grants, err = tx.ListGrants(kms.GrantFilter{}, "", 0); err != nil {
			return err
		}
		if s.aliases, err = tx.ListAliases("", "", 0); err != nil {
			return err
		}
		names, err := tx.ListMeta("", 0)
		if err != nil {
			return err
		}
		for _, name := range names {
			copied, known := metaCopied(name)
			if !known {
				return fmt.Errorf("it holds a value %q this envelope does not know how to copy (made by a newer envelope?)", name)
			}
			if !copied {
				continue
			}
			value, err := tx.GetMeta(name)
			if err != nil {
				return err
			}
			switch name {
			case metaAuditKey:
				s.auditKey = value
			case metaAuditLogs:
				s.auditLogs = value
				logs, err := k.readAuditLogs(tx)
				if err != nil {
					return err
				}
				s.stats.AuditLogs = len(logs.Logs)
			default:
				s.deleted[name] = value
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: reading it to copy: %w", k.Name, err)
	}
	s.stats.Keys, s.stats.Aliases = len(s.keys), len(s.aliases)
	s.stats.Versions += len(s.materials)
	s.stats.Deleted, s.stats.AuditKey = len(s.deleted), s.auditKey != nil
	return s, nil
}

// CopyStats reads the keystore as [Copy] would, and counts what a copy
// would hold, writing nothing anywhere (a dry run). It fails as Copy would
// on a keystore that cannot be copied.
func (k *Keystore) CopyStats(ctx context.Context) (CopyStats, error) {
	s, err := k.read(ctx)
	if err != nil {
		return CopyStats{}, err
	}
	return s.stats, nil
}

// Copy copies the keystore src whole into dst, which must be empty, as a new
// keystore whose root key comes from the source opts give (only the root
// key fields of opts are used): every key record (tags, policies, states,
// deletion and rotation schedules), every material version, the aliases,
// the records of deleted keys, the audit key and the audit logs'
// high-water marks, and the region and account of the ARNs, so that the
// copy decrypts every ciphertext src made.
//
// src is read in one read transaction (a consistent snapshot, even of a
// keystore in use). Material is opened with src's root key and sealed under
// dst's in memory ([kms.ResealMaterial]), never written in the clear. dst
// is written in one transaction, under its creation lock, with its root key
// check last: an interrupted copy leaves dst as empty as it was (but for a
// new root.key beside a SQLite keystore, which the next copy or creation
// takes). A dst that holds anything is refused, before anything is written,
// with an error wrapping [ErrNotEmpty]; dst.Store must implement
// [kms.CreationLocker]. Copy does not close dst.Store.
func Copy(ctx context.Context, src *Keystore, dst Target, opts Options) (CopyStats, error) {
	opts = Options{RootKeyFile: opts.RootKeyFile, Passphrase: opts.Passphrase, RootKMS: opts.RootKMS}
	if _, err := opts.given(); err != nil {
		return CopyStats{}, fmt.Errorf("keystore: %w", err)
	}
	s, err := src.read(ctx)
	if err != nil {
		return CopyStats{}, err
	}
	unlock, err := lockCreation(ctx, dst, false)
	if err != nil {
		return CopyStats{}, fmt.Errorf("keystore: %s: %w", dst.Name, err)
	}
	defer unlock()
	if err := CheckEmpty(ctx, dst); err != nil {
		return CopyStats{}, err
	}
	root, err := makeRoot(ctx, dst, opts)
	if err != nil {
		return CopyStats{}, fmt.Errorf("keystore: creating %s: %w", dst.Name, err)
	}
	// Seal everything again under the new root key, in memory.
	sealed := make([][]byte, len(s.materials))
	for i, m := range s.materials {
		if sealed[i], err = kms.ResealMaterial(src.root, root.key, m.keyID, m.version, m.sealed); err != nil {
			return CopyStats{}, fmt.Errorf("keystore: %s: %w", src.Name, err)
		}
	}
	for _, k := range s.keys {
		if err := kms.ResealRecord(src.root, root.key, k); err != nil {
			return CopyStats{}, fmt.Errorf("keystore: %s: %w", src.Name, err)
		}
	}
	meta := map[string][]byte{}
	for name, value := range s.deleted {
		meta[name] = value
	}
	for name, value := range map[string][]byte{metaAuditKey: s.auditKey, metaAuditLogs: s.auditLogs} {
		if value == nil {
			continue
		}
		if meta[name], err = reseal(src.root, root.key, value, name); err != nil {
			return CopyStats{}, fmt.Errorf("keystore: %s: %s: %w", src.Name, name, err)
		}
	}
	check, err := kms.SealRootCheck(root.key)
	if err != nil {
		return CopyStats{}, err
	}
	id := arnIdentity{Region: src.Region(), AccountID: src.AccountID()}
	err = dst.Store.Update(ctx, func(tx kms.Tx) error {
		if err := checkEmpty(tx); err != nil {
			return err
		}
		if err := root.record(tx); err != nil {
			return err
		}
		if err := id.record(tx); err != nil {
			return err
		}
		for _, k := range s.keys {
			if err := tx.PutKey(k); err != nil {
				return err
			}
		}
		for i, m := range s.materials {
			if err := tx.PutMaterial(m.keyID, m.version, sealed[i]); err != nil {
				return err
			}
		}
		for _, a := range s.aliases {
			if err := tx.PutAlias(a); err != nil {
				return err
			}
		}
		for _, g := range s.grants {
			if err := tx.PutGrant(g); err != nil {
				return err
			}
		}
		for name, value := range meta {
			if err := tx.PutMeta(name, value); err != nil {
				return err
			}
		}
		// Last: the copy is a keystore once this is stored.
		return tx.PutMeta(kms.RootCheckMeta, check)
	})
	if err != nil {
		return CopyStats{}, fmt.Errorf("keystore: copying into %s: %w", dst.Name, err)
	}
	return s.stats, nil
}

// reseal opens a value the keystore sealed under from for the meta name,
// and seals it under to for the same name.
func reseal(from, to kms.RootKey, sealed []byte, name string) ([]byte, error) {
	b, err := from.Open(sealed, []byte(name))
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return to.Seal(b, []byte(name))
}

// CheckEmpty returns nil if t's store holds nothing at all (no key, alias
// or keystore value), the destination [Copy] needs, and else an error
// wrapping [ErrNotEmpty] that says what it holds. It writes nothing.
func CheckEmpty(ctx context.Context, t Target) error {
	err := t.Store.View(ctx, checkEmpty)
	if err != nil {
		return fmt.Errorf("keystore: %s: %w", t.Name, err)
	}
	return nil
}

func checkEmpty(tx kms.Tx) error {
	keys, err := tx.ListKeys("", 1)
	if err != nil {
		return err
	}
	aliases, err := tx.ListAliases("", "", 1)
	if err != nil {
		return err
	}
	names, err := tx.ListMeta("", 1)
	if err != nil {
		return err
	}
	switch {
	case len(keys) > 0:
		return fmt.Errorf("%w: it holds keys", ErrNotEmpty)
	case len(aliases) > 0:
		return fmt.Errorf("%w: it holds aliases", ErrNotEmpty)
	case len(names) > 0:
		return fmt.Errorf("%w: it holds keystore values (%q, …)", ErrNotEmpty, names[0])
	}
	return nil
}
