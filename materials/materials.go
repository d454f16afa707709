// Package materials provides cryptographic materials managers: what turns a
// request to encrypt or decrypt into a data key, wrapped copies of it and, for
// signed suites, a signing or verification key.
//
// [Default] asks a keyring for the data key and enforces the commitment
// policy. Other managers (a caching one, say) wrap a Manager and change how
// often keyrings are called, not what a message looks like.
package materials

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/envelopekms/envelope/internal/format"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

// Manager supplies the materials of each message. The materials returned
// are the caller's: it clears their data key once the message key is
// derived from it, so a manager that keeps materials (a cache) returns
// copies.
type Manager interface {
	// EncryptionMaterials returns the materials for a new message.
	EncryptionMaterials(ctx context.Context, req EncryptionRequest) (*keyring.EncryptionMaterials, error)
	// DecryptionMaterials returns the materials to read a message.
	DecryptionMaterials(ctx context.Context, req DecryptionRequest) (*keyring.DecryptionMaterials, error)
}

// EncryptionRequest describes a message about to be written.
type EncryptionRequest struct {
	// Context is the caller's encryption context. Keys starting with
	// "aws-crypto-" are reserved and refused.
	Context map[string]string
	// Suite is the suite to use, or nil for the policy's default.
	Suite *suite.Suite
	// Policy is the commitment policy in force.
	Policy suite.CommitmentPolicy
	// PlaintextLength is the length of the plaintext, or -1 when unknown
	// (a stream).
	PlaintextLength int64
	// RequiredContextKeys are keys of Context whose pairs the message is
	// to authenticate without storing them (the ESDK's required
	// encryption context); readers must supply them. [RequiredContext]
	// sets them.
	RequiredContextKeys []string
}

// DecryptionRequest describes a message about to be read.
type DecryptionRequest struct {
	// Suite is the message's algorithm suite.
	Suite *suite.Suite
	// Context is the encryption context stored in the message.
	Context map[string]string
	// EncryptedDataKeys are the message's wrapped copies of its data key.
	EncryptedDataKeys []keyring.EncryptedDataKey
	// Policy is the commitment policy in force: a suite it does not allow
	// to be read is refused with a *[PolicyError].
	Policy suite.CommitmentPolicy
	// ReproducedContext is the encryption context the caller supplied:
	// pairs the message stores must have these values, and pairs it does
	// not store are ones it must authenticate (see [ReproduceContext]).
	ReproducedContext map[string]string
}

// ErrContextMismatch is wrapped by the errors for an encryption context
// that differs from the one the caller requires; see
// [ContextMismatchError].
var ErrContextMismatch = errors.New("encryption context mismatch")

// ContextMismatchError reports a pair of the caller's encryption context
// that the message does not carry.
type ContextMismatchError struct {
	// Key is the context key of the pair.
	Key string
	// Want is the required value, Got the message's; Missing is true when
	// the message neither stores the key nor authenticates the pair.
	Want, Got string
	Missing   bool
}

// Error names the pair and says how the message differs. It begins with
// the text of [ErrContextMismatch].
func (e *ContextMismatchError) Error() string {
	if e.Missing {
		return fmt.Sprintf("encryption context mismatch: the message has no key %q (required %q=%q)", clip(e.Key), clip(e.Key), clip(e.Want))
	}
	return fmt.Sprintf("encryption context mismatch: %q is %q in the message, not %q", clip(e.Key), clip(e.Got), clip(e.Want))
}

// Is reports whether target is [ErrContextMismatch].
func (e *ContextMismatchError) Is(target error) bool { return target == ErrContextMismatch }

// clip cuts a context key or value to 100 bytes for an error message.
func clip(s string) string {
	if len(s) <= 100 {
		return s
	}
	return fmt.Sprintf("%s…(%d bytes)", strings.ToValidUTF8(s[:100], ""), len(s))
}

// ReproduceContext merges the encryption context a message stores with the
// one a caller supplies to decrypt it (the ESDK's reproduced encryption
// context). A pair the message stores must have the caller's value, or the
// error is a *[ContextMismatchError]. A pair it does not store is added to
// the result, and its key returned in required: the message must
// authenticate it without storing it, as the ESDK's required encryption
// context does, and the header tag is checked over those pairs. required
// is sorted.
func ReproduceContext(stored, reproduced map[string]string) (full map[string]string, required []string, err error) {
	for k, v := range reproduced {
		got, ok := stored[k]
		switch {
		case !ok:
			required = append(required, k)
		case got != v:
			return nil, nil, &ContextMismatchError{Key: k, Want: v, Got: got}
		}
	}
	if len(required) == 0 {
		return stored, nil, nil
	}
	slices.Sort(required)
	full = maps.Clone(stored)
	if full == nil {
		full = map[string]string{}
	}
	for _, k := range required {
		full[k] = reproduced[k]
	}
	return full, required, nil
}

// ErrReservedContextKey is wrapped by the error for a caller's encryption
// context that uses a key reserved by the message format.
var ErrReservedContextKey = errors.New(`encryption context keys starting with "aws-crypto-" are reserved`)

// PolicyError reports a suite that the commitment policy does not allow.
type PolicyError struct {
	// Suite is the suite refused.
	Suite *suite.Suite
	// Policy is the commitment policy that refused it.
	Policy suite.CommitmentPolicy
	// Encrypt is true when the suite was refused for writing a message,
	// false for reading one.
	Encrypt bool
}

// Error names the suite and the policy, and says what the policy wants.
func (e *PolicyError) Error() string {
	if e.Encrypt {
		if e.Suite.Committing {
			return fmt.Sprintf("commitment policy %s forbids writing the committing suite %s", e.Policy, e.Suite)
		}
		return fmt.Sprintf("commitment policy %s requires a committing suite, not %s", e.Policy, e.Suite)
	}
	return fmt.Sprintf("the message uses suite %s, which does not commit to its data key, and commitment policy %s refuses to read it", e.Suite, e.Policy)
}

// Default is the standard materials manager over a keyring.
type Default struct {
	kr keyring.Keyring
}

var _ Manager = (*Default)(nil)

// NewDefault returns the default materials manager for kr.
func NewDefault(kr keyring.Keyring) *Default { return &Default{kr: kr} }

// CheckContext returns an error if a caller's encryption context uses a
// reserved key.
func CheckContext(ec map[string]string) error {
	for k := range ec {
		if strings.HasPrefix(k, format.ReservedContextPrefix) {
			return fmt.Errorf("%w: %q", ErrReservedContextKey, k)
		}
	}
	return nil
}

// EncryptionMaterials implements [Manager].
func (d *Default) EncryptionMaterials(ctx context.Context, req EncryptionRequest) (*keyring.EncryptionMaterials, error) {
	if !req.Policy.Valid() {
		return nil, fmt.Errorf("materials: invalid commitment policy %d", req.Policy)
	}
	err := CheckContext(req.Context)
	if err != nil {
		return nil, err
	}
	s := req.Suite
	if s == nil {
		s = req.Policy.DefaultSuite()
	}
	if !req.Policy.AllowsEncrypt(s) {
		return nil, &PolicyError{Suite: s, Policy: req.Policy, Encrypt: true}
	}
	m := &keyring.EncryptionMaterials{Suite: s, Context: maps.Clone(req.Context)}
	if m.Context == nil {
		m.Context = map[string]string{}
	}
	if m.RequiredContextKeys, err = requiredKeys(req.Context, req.RequiredContextKeys); err != nil {
		return nil, err
	}
	if s.Signed() {
		priv, pub, err := format.NewSigningKey(s)
		if err != nil {
			return nil, err
		}
		m.SigningKey = priv
		m.Context[format.PublicKeyContextKey] = pub
	}
	// A data key the keyrings made is cleared when it is refused.
	if err := d.kr.OnEncrypt(ctx, m); err != nil {
		clear(m.DataKey)
		return nil, err
	}
	if len(m.DataKey) != s.KeyLength {
		clear(m.DataKey)
		return nil, fmt.Errorf("materials: the keyring produced a %d-byte data key, suite %s needs %d", len(m.DataKey), s.ID, s.KeyLength)
	}
	if len(m.EncryptedDataKeys) == 0 {
		clear(m.DataKey)
		return nil, errors.New("materials: the keyring produced no encrypted data key")
	}
	return m, nil
}

// DecryptionMaterials implements [Manager].
func (d *Default) DecryptionMaterials(ctx context.Context, req DecryptionRequest) (*keyring.DecryptionMaterials, error) {
	if !req.Policy.Valid() {
		return nil, fmt.Errorf("materials: invalid commitment policy %d", req.Policy)
	}
	if !req.Policy.AllowsDecrypt(req.Suite) {
		return nil, &PolicyError{Suite: req.Suite, Policy: req.Policy}
	}
	if err := CheckContext(req.ReproducedContext); err != nil {
		return nil, err
	}
	full, required, err := ReproduceContext(req.Context, req.ReproducedContext)
	if err != nil {
		return nil, err
	}
	m := &keyring.DecryptionMaterials{Suite: req.Suite, Context: full, RequiredContextKeys: required}
	pub, has := req.Context[format.PublicKeyContextKey]
	switch {
	case req.Suite.Signed() && !has:
		return nil, fmt.Errorf("%w: signed suite %s but no %s in the encryption context", format.ErrMalformed, req.Suite.ID, format.PublicKeyContextKey)
	case !req.Suite.Signed() && has:
		return nil, fmt.Errorf("%w: unsigned suite %s with an %s in the encryption context", format.ErrMalformed, req.Suite.ID, format.PublicKeyContextKey)
	case has:
		key, err := format.ParseVerificationKey(req.Suite, pub)
		if err != nil {
			return nil, err
		}
		m.VerificationKey = key
	}
	if err := d.kr.OnDecrypt(ctx, m, req.EncryptedDataKeys); err != nil {
		clear(m.DataKey)
		return nil, err
	}
	if len(m.DataKey) != req.Suite.KeyLength {
		clear(m.DataKey)
		return nil, &keyring.UnwrapError{Keys: req.EncryptedDataKeys, Tried: []string{fmt.Sprintf("%T", d.kr)}}
	}
	return m, nil
}

// requiredKeys checks that every key of required has a value in ec, and
// returns them sorted, without duplicates (nil for none).
func requiredKeys(ec map[string]string, required []string) ([]string, error) {
	if len(required) == 0 {
		return nil, nil
	}
	for _, k := range required {
		if _, ok := ec[k]; !ok {
			return nil, fmt.Errorf("materials: required encryption context key %q has no value in the encryption context", clip(k))
		}
	}
	keys := slices.Clone(required)
	slices.Sort(keys)
	return slices.Compact(keys), nil
}
