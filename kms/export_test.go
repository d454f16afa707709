package kms

import (
	"context"
	"fmt"
)

// MaterialForTest returns the plaintext material of one version of a key
// (32 bytes for a symmetric key, PKCS #8 DER for an RSA key), opened through
// the service's root key. Tests use it to look for key material where it must
// not be; nothing outside tests can reach it.
func MaterialForTest(s *Service, keyID string, version int) ([]byte, error) {
	var m []byte
	err := s.store.View(context.Background(), func(tx Tx) error {
		r := &storeReader{s: s, tx: tx}
		k, err := r.key(keyID)
		if err != nil {
			return err
		}
		if version < 1 || version > len(k.Versions) {
			return fmt.Errorf("key %s has %d versions, not %d", keyID, len(k.Versions), version)
		}
		m, err = r.material(k, version)
		return err
	})
	return m, err
}

// VersionsForTest returns how many material versions a key has.
func VersionsForTest(s *Service, keyID string) (int, error) {
	var n int
	err := s.store.View(context.Background(), func(tx Tx) error {
		k, err := tx.GetKey(keyID)
		if err != nil {
			return err
		}
		n = len(k.Versions)
		return nil
	})
	return n, err
}

// OnKeyPairForTest has s call fn before it makes each data key pair of
// GenerateDataKeyPair(WithoutPlaintext), so that tests count the pairs made
// and act while one is being made.
func OnKeyPairForTest(s *Service, fn func(spec string)) {
	s.newKeyPair = func(spec string) ([]byte, []byte, error) {
		fn(spec)
		return newKeyPair(spec)
	}
}

// RootKeyForTest returns the root key s seals under.
func RootKeyForTest(s *Service) RootKey { return s.root }

// KeyWithMaterialForTest creates an enabled key of spec and usage whose
// material is the given one (an HMAC key's bytes, or a PKCS #8 DER private
// key), so that tests run known-answer vectors and keys made by other
// tools through the service. It returns the key id.
func KeyWithMaterialForTest(s *Service, spec, usage string, material []byte) (string, error) {
	k, err := s.newKey(&CreateKeyInput{KeySpec: spec, KeyUsage: usage})
	if err != nil {
		return "", err
	}
	if ks := keySpecs[spec]; ks.asymmetric() {
		if _, err := parsePrivateKey(ks, material); err != nil {
			return "", err
		}
	}
	err = s.update(context.Background(), func(tx Tx, _ keyReader) error {
		if err := tx.PutKey(k); err != nil {
			return err
		}
		sealed, err := s.root.Seal(material, materialAAD(k.ID, 1))
		if err != nil {
			return err
		}
		if err := tx.PutMaterial(k.ID, 1, sealed); err != nil {
			return err
		}
		k.Versions = append(k.Versions, KeyVersion{Version: 1, MaterialID: "test", Created: k.CreationDate})
		return tx.PutKey(k)
	})
	return k.ID, err
}
