package keystore

import (
	"context"

	"github.com/envelopekms/envelope/kms"
)

// MaterialForTest returns the plaintext of one version of a key's material
// in k, opened with k's root key: tests look for it where it must not be.
// Nothing outside tests can reach it.
func MaterialForTest(k *Keystore, keyID string, version int) ([]byte, error) {
	var sealed []byte
	err := k.store.View(context.Background(), func(tx kms.Tx) (err error) {
		rec, err := tx.GetKey(keyID)
		if err != nil {
			return err
		}
		if rec.MaterialInRecord() { // imported material
			if version < 1 || version > len(rec.Versions) {
				return kms.ErrNoRecord
			}
			sealed = rec.Versions[version-1].Sealed
			return nil
		}
		sealed, err = tx.GetMaterial(keyID, version)
		return err
	})
	if err != nil {
		return nil, err
	}
	return kms.ResealMaterial(k.root, clearRoot{}, keyID, version, sealed)
}

// clearRoot is a kms.RootKey that seals nothing: Seal returns the plaintext
// itself.
type clearRoot struct{}

func (clearRoot) Seal(plaintext, _ []byte) ([]byte, error) {
	return append([]byte(nil), plaintext...), nil
}
func (clearRoot) Open(sealed, _ []byte) ([]byte, error) { return append([]byte(nil), sealed...), nil }
