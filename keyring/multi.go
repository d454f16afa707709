package keyring

import (
	"context"
	"errors"
)

// Multi combines keyrings. On encrypt the generator makes the data key and
// every keyring wraps it, so any one of them can decrypt the message. On
// decrypt they are tried in order until one unwraps the data key.
type Multi struct {
	generator Keyring
	children  []Keyring
}

var _ Keyring = (*Multi)(nil)

// NewMulti returns a keyring that combines generator and children.
// generator may be nil, in which case the materials must already hold a data
// key when OnEncrypt is called (children only wrap).
func NewMulti(generator Keyring, children ...Keyring) *Multi {
	return &Multi{generator: generator, children: children}
}

func (k *Multi) all() []Keyring {
	if k.generator == nil {
		return k.children
	}
	return append([]Keyring{k.generator}, k.children...)
}

// OnEncrypt implements [Keyring].
func (k *Multi) OnEncrypt(ctx context.Context, m *EncryptionMaterials) error {
	if k.generator == nil && m.DataKey == nil {
		return errors.New("keyring: a multi-keyring without a generator needs materials that already hold a data key")
	}
	for _, kr := range k.all() {
		if err := kr.OnEncrypt(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// OnDecrypt implements [Keyring]. When no keyring unwraps, the error is an
// *[UnwrapError] listing every keyring tried and every failed attempt.
func (k *Multi) OnDecrypt(ctx context.Context, m *DecryptionMaterials, edks []EncryptedDataKey) error {
	if m.DataKey != nil {
		return nil
	}
	all := &UnwrapError{Keys: edks}
	for _, kr := range k.all() {
		err := kr.OnDecrypt(ctx, m, edks)
		if err == nil && m.DataKey != nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *UnwrapError
		switch {
		case errors.As(err, &ue):
			all.Tried = append(all.Tried, ue.Tried...)
			all.Errs = append(all.Errs, ue.Errs...)
			all.Skipped += ue.Skipped
		case err != nil:
			all.Tried = append(all.Tried, describe(kr))
			all.Errs = append(all.Errs, err)
		default:
			all.Tried = append(all.Tried, describe(kr))
		}
	}
	return all
}
