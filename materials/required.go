package materials

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/envelopekms/envelope/keyring"
)

// RequiredContext is the ESDK's required encryption context materials
// manager. The pairs of its keys are authenticated by every message it
// encrypts but not stored in it: the header tag and the keyrings' wraps
// cover them, and a reader must supply them again (the reproduced
// encryption context) to decrypt. Use it for context that must not travel
// with the message, or to make readers prove they know it.
//
// On encrypt the caller's context must hold every key; on decrypt the
// caller's (reproduced) context must. Messages it writes are read by any
// reader given the pairs, [Default] included, and by the other ESDKs that
// implement the reproduced encryption context (Java, Python, .NET, Rust,
// Go), but not by the JavaScript ESDK 5.
type RequiredContext struct {
	under Manager
	keys  []string
}

var (
	_ Manager = (*RequiredContext)(nil)
	_ Leaser  = (*RequiredContext)(nil)
)

// NewRequiredContext returns a manager that requires keys of every
// message's encryption context, over the manager under (often
// [NewDefault] of a keyring).
func NewRequiredContext(under Manager, keys ...string) (*RequiredContext, error) {
	if under == nil {
		return nil, errors.New("materials: required context manager: no underlying manager")
	}
	if len(keys) == 0 {
		return nil, errors.New("materials: required context manager: no key given")
	}
	for _, k := range keys {
		if err := CheckContext(map[string]string{k: ""}); err != nil {
			return nil, err
		}
	}
	ks := slices.Clone(keys)
	slices.Sort(ks)
	return &RequiredContext{under: under, keys: slices.Compact(ks)}, nil
}

// Keys returns the required keys, sorted.
func (r *RequiredContext) Keys() []string { return slices.Clone(r.keys) }

// request checks req and adds the required keys to it.
func (r *RequiredContext) request(req EncryptionRequest) (EncryptionRequest, error) {
	for _, k := range r.keys {
		if _, ok := req.Context[k]; !ok {
			return req, fmt.Errorf("%w: the encryption context has no key %q, which is required", ErrContextMismatch, clip(k))
		}
	}
	req.RequiredContextKeys = append(slices.Clone(req.RequiredContextKeys), r.keys...)
	return req, nil
}

// check makes sure the underlying manager kept the required keys out of
// the stored context.
func (r *RequiredContext) check(m *keyring.EncryptionMaterials) error {
	for _, k := range r.keys {
		if !slices.Contains(m.RequiredContextKeys, k) {
			return fmt.Errorf("materials: required context manager: the underlying manager dropped the required key %q", clip(k))
		}
	}
	return nil
}

// EncryptionMaterials implements [Manager].
func (r *RequiredContext) EncryptionMaterials(ctx context.Context, req EncryptionRequest) (*keyring.EncryptionMaterials, error) {
	req, err := r.request(req)
	if err != nil {
		return nil, err
	}
	m, err := r.under.EncryptionMaterials(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := r.check(m); err != nil {
		return nil, err
	}
	return m, nil
}

// LeaseEncryptionMaterials implements [Leaser], through the underlying
// manager's when it is a Leaser (a [Caching] manager, say); otherwise the
// lease is nil, which sets no limit.
func (r *RequiredContext) LeaseEncryptionMaterials(ctx context.Context, req EncryptionRequest) (*keyring.EncryptionMaterials, *Lease, error) {
	l, ok := r.under.(Leaser)
	if !ok {
		m, err := r.EncryptionMaterials(ctx, req)
		return m, nil, err
	}
	req, err := r.request(req)
	if err != nil {
		return nil, nil, err
	}
	m, lease, err := l.LeaseEncryptionMaterials(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	if err := r.check(m); err != nil {
		lease.Done(0)
		return nil, nil, err
	}
	return m, lease, nil
}

// DecryptionMaterials implements [Manager]. The caller's reproduced
// context must hold every required key.
func (r *RequiredContext) DecryptionMaterials(ctx context.Context, req DecryptionRequest) (*keyring.DecryptionMaterials, error) {
	for _, k := range r.keys {
		if _, ok := req.ReproducedContext[k]; !ok {
			return nil, fmt.Errorf("%w: the key %q is required, and the caller's encryption context does not give it", ErrContextMismatch, clip(k))
		}
	}
	m, err := r.under.DecryptionMaterials(ctx, req)
	if err != nil {
		return nil, err
	}
	for _, k := range r.keys {
		if _, ok := m.Context[k]; !ok {
			clear(m.DataKey)
			return nil, fmt.Errorf("materials: required context manager: the underlying manager dropped the required key %q", clip(k))
		}
	}
	return m, nil
}
