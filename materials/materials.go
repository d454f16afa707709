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
	"strings"

	"github.com/envelopekms/envelope/internal/format"
	"github.com/envelopekms/envelope/keyring"
	"github.com/envelopekms/envelope/suite"
)

// Manager supplies the materials of each message.
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
}

// DecryptionRequest describes a message about to be read.
type DecryptionRequest struct {
	Suite *suite.Suite
	// Context is the encryption context stored in the message.
	Context           map[string]string
	EncryptedDataKeys []keyring.EncryptedDataKey
	Policy            suite.CommitmentPolicy
}

// ErrReservedContextKey is wrapped by the error for a caller's encryption
// context that uses a key reserved by the message format.
var ErrReservedContextKey = errors.New(`encryption context keys starting with "aws-crypto-" are reserved`)

// PolicyError reports a suite that the commitment policy does not allow.
type PolicyError struct {
	Suite   *suite.Suite
	Policy  suite.CommitmentPolicy
	Encrypt bool
}

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
		return nil, fmt.Errorf("invalid commitment policy %d", req.Policy)
	}
	if err := CheckContext(req.Context); err != nil {
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
	if s.Signed() {
		priv, pub, err := format.NewSigningKey(s)
		if err != nil {
			return nil, err
		}
		m.SigningKey = priv
		m.Context[format.PublicKeyContextKey] = pub
	}
	if err := d.kr.OnEncrypt(ctx, m); err != nil {
		return nil, err
	}
	if len(m.DataKey) != s.KeyLength {
		return nil, fmt.Errorf("keyring produced a %d-byte data key, suite %s needs %d", len(m.DataKey), s.ID, s.KeyLength)
	}
	if len(m.EncryptedDataKeys) == 0 {
		return nil, errors.New("keyring produced no encrypted data key")
	}
	return m, nil
}

// DecryptionMaterials implements [Manager].
func (d *Default) DecryptionMaterials(ctx context.Context, req DecryptionRequest) (*keyring.DecryptionMaterials, error) {
	if !req.Policy.Valid() {
		return nil, fmt.Errorf("invalid commitment policy %d", req.Policy)
	}
	if !req.Policy.AllowsDecrypt(req.Suite) {
		return nil, &PolicyError{Suite: req.Suite, Policy: req.Policy}
	}
	m := &keyring.DecryptionMaterials{Suite: req.Suite, Context: req.Context}
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
		return nil, err
	}
	if len(m.DataKey) != req.Suite.KeyLength {
		return nil, &keyring.UnwrapError{Keys: req.EncryptedDataKeys, Tried: []string{fmt.Sprintf("%T", d.kr)}}
	}
	return m, nil
}
