package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/envelopekms/envelope"
	"github.com/envelopekms/envelope/internal/format"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/materials"
	"github.com/envelopekms/envelope/suite"
)

// keptManager is the default manager over a keyring, keeping the
// decryption materials it hands out, to see what becomes of their data
// key once the caller is done with it.
type keptManager struct {
	materials.Manager
	kept    []*keyring.DecryptionMaterials
	keptEnc []*keyring.EncryptionMaterials
}

func (k *keptManager) EncryptionMaterials(ctx context.Context, req materials.EncryptionRequest) (*keyring.EncryptionMaterials, error) {
	m, err := k.Manager.EncryptionMaterials(ctx, req)
	if m != nil {
		k.keptEnc = append(k.keptEnc, m)
	}
	return m, err
}

func (k *keptManager) DecryptionMaterials(ctx context.Context, req materials.DecryptionRequest) (*keyring.DecryptionMaterials, error) {
	m, err := k.Manager.DecryptionMaterials(ctx, req)
	if m != nil {
		k.kept = append(k.kept, m)
	}
	return m, err
}

// cleared reports whether every data key the manager handed out has been
// cleared (and there was one).
func (k *keptManager) cleared() bool {
	var keys [][]byte
	for _, m := range k.kept {
		keys = append(keys, m.DataKey)
	}
	for _, m := range k.keptEnc {
		keys = append(keys, m.DataKey)
	}
	for _, key := range keys {
		if len(key) == 0 || !bytes.Equal(key, make([]byte, len(key))) {
			return false
		}
	}
	return len(keys) > 0
}

// The plaintext data key is dropped as soon as the message key is derived
// from it: Encrypt, Decrypt and Rewrap clear the data key of the materials
// they were given, whether the message then verifies or not, and the
// message is still written and read (the derived key does not share the
// data key's memory, even for a suite that uses the data key as it is).
func TestDataKeyClearedAfterUse(t *testing.T) {
	ctx := context.Background()
	pt := bytes.Repeat([]byte("the plaintext "), 1000)
	for _, id := range []suite.ID{suite.AES256GCMHKDFSHA512CommitKey, suite.AES256GCMHKDFSHA512CommitKeyECDSAP384, suite.AES256GCM} {
		t.Run(id.String(), func(t *testing.T) {
			policy := envelope.WithCommitmentPolicy(suite.RequireEncryptAllowDecrypt)
			encPolicy := policy
			if s, _ := suite.ByID(id); !s.Committing {
				encPolicy = envelope.WithCommitmentPolicy(suite.ForbidEncryptAllowDecrypt)
			}
			m := &keptManager{Manager: materials.NewDefault(fixedKeyring())}
			msg, err := envelope.EncryptBytes(ctx, pt, nil, envelope.WithMaterialsManager(m), envelope.WithSuite(id), encPolicy, envelope.WithFrameSize(1000))
			if err != nil {
				t.Fatal(err)
			}
			if !m.cleared() {
				t.Errorf("Encrypt left the data key in the materials")
			}

			m = &keptManager{Manager: materials.NewDefault(fixedKeyring())}
			r, err := envelope.Decrypt(ctx, bytes.NewReader(msg), nil, envelope.WithMaterialsManager(m), policy)
			if err != nil {
				t.Fatalf("Decrypt err = %v, want nil", err)
			}
			if !m.cleared() {
				t.Errorf("Decrypt returned with the data key still in the materials")
			}
			if got, err := readAll(r); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("reading the plaintext = %d bytes, %v; want %d bytes, nil", len(got), err, len(pt))
			}

			// A header whose tag does not verify.
			h, err := format.ReadHeader(bytes.NewReader(msg), format.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(msg)
			bad[len(h.Bytes())-1] ^= 1
			m = &keptManager{Manager: materials.NewDefault(fixedKeyring())}
			if _, err := envelope.Decrypt(ctx, bytes.NewReader(bad), nil, envelope.WithMaterialsManager(m), policy); !errors.Is(err, envelope.ErrTampered) {
				t.Fatalf("Decrypt of a message with a bad header tag err = %v, want ErrTampered", err)
			}
			if !m.cleared() {
				t.Errorf("Decrypt failed with the data key still in the materials")
			}

			m = &keptManager{Manager: materials.NewDefault(fixedKeyring())}
			var out bytes.Buffer
			if _, err := envelope.Rewrap(ctx, &out, bytes.NewReader(msg), nil, fixedKeyring(), envelope.WithMaterialsManager(m), policy); err != nil {
				t.Fatalf("Rewrap err = %v, want nil", err)
			}
			if !m.cleared() {
				t.Errorf("Rewrap returned with the data key still in the materials")
			}
			if got, _, err := envelope.DecryptBytes(ctx, out.Bytes(), fixedKeyring(), policy); err != nil || !bytes.Equal(got, pt) {
				t.Errorf("decrypting the rewrapped message = %d bytes, %v; want %d bytes, nil", len(got), err, len(pt))
			}
		})
	}
}
