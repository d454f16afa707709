package kms

import (
	"context"
	"errors"
	"strings"
)

// An Authorizer decides whether the caller of an operation may act on a key.
// A [Service] asks the Authorizer its context carries ([WithAuthorizer]);
// with none, it checks nothing (the embedded CLI, a server's root
// principal). Other implementations of [API] need not ask it (a remote
// KMS authorizes its own callers).
//
// The Service calls Authorize for every key an operation acts on, after it
// has resolved the reference the caller gave (a key id, key ARN, alias name
// or alias ARN, or the key a ciphertext names) and before it uses the key,
// within the same read as the one that loaded the key: of the key cache
// alone, or of a store transaction with the cache in front of it. The key
// authorized is therefore the key the operation uses: an alias changed
// meanwhile cannot make it use another. Management operations call it
// inside their write transaction, which reads no cache.
//
// A reference that resolves to no key is put to the Authorizer too, with
// req.Key nil: refusing it then gives the caller the same error for a key
// that does not exist as for one it may not use. The operation's own error
// (NotFoundException and the like) follows only if Authorize allows.
//
// If Authorize returns an error, the operation stops there, before the key
// is used, and returns that error as it is; a refusal should be an *[Error]
// with Code [CodeAccessDenied]. Authorize may be asked more than once about
// the same reference and action within one operation (an operation whose
// read of the cache missed runs again against the store;
// GenerateDataKeyPair reads its key before and after making the pair):
// each answer holds for the attempt it was given in, and the operation acts
// on the key of its last attempt. Operations on no key (CreateKey,
// ListKeys, ListAliases without a KeyId, GenerateRandom) ask nothing.
//
// Authorize runs inside a read of the key cache or a store transaction,
// possibly a write transaction: it must be quick, it must not call the Service, and it must not keep req,
// or call its methods, after it returns. The Service calls it from the
// goroutine of the operation; an Authorizer shared by concurrent operations
// must be safe for concurrent use.
type Authorizer interface {
	Authorize(ctx context.Context, req *AuthzRequest) error
}

// AuthorizerFunc adapts a function to an [Authorizer].
type AuthorizerFunc func(ctx context.Context, req *AuthzRequest) error

// Authorize calls f(ctx, req).
func (f AuthorizerFunc) Authorize(ctx context.Context, req *AuthzRequest) error { return f(ctx, req) }

type authorizerKey struct{}

// WithAuthorizer returns a context whose operations on a [Service] are
// authorized by a. It replaces any Authorizer ctx carries; a nil a removes
// it.
func WithAuthorizer(ctx context.Context, a Authorizer) context.Context {
	return context.WithValue(ctx, authorizerKey{}, a)
}

func authorizerFrom(ctx context.Context) Authorizer {
	a, _ := ctx.Value(authorizerKey{}).(Authorizer)
	return a
}

// AuthzRequest is what an [Authorizer] is asked: may the caller perform
// Action on Key?
type AuthzRequest struct {
	// Action is the permission asked for, as IAM names it: "kms:Decrypt",
	// "kms:ReEncryptFrom", "kms:UpdateAlias", ...
	Action string
	// Ref is the key as the caller named it: a key id, key ARN, alias
	// name or alias ARN (the alias name, for the key an alias points to
	// in UpdateAlias and DeleteAlias). For a key named only by a
	// ciphertext it is the key id the ciphertext names, or "" if the
	// ciphertext names none.
	Ref string
	// Key is the key Ref resolved to, or nil if it resolves to no key.
	Key *KeyInfo

	// What the request carries that the conditions of a policy may test.

	// EncryptionContext is the request's encryption context (ReEncrypt:
	// the source's for kms:ReEncryptFrom, the destination's for
	// kms:ReEncryptTo); nil if it has none.
	EncryptionContext map[string]string
	// EncryptionAlgorithm is the algorithm the request names, "" if none.
	EncryptionAlgorithm string
	// RequestAlias is the alias ("alias/NAME") the caller named the key
	// by, "" if it named it otherwise.
	RequestAlias string
	// Grant is the grant a CreateGrant request asks for, nil otherwise.
	Grant *GrantRequest
	// BypassPolicyLockoutSafetyCheck is the flag of PutKeyPolicy.
	BypassPolicyLockoutSafetyCheck bool

	retire *GrantRecord // the grant RetireGrant retires

	s   *Service
	r   keyReader // nil once Authorize has returned, or when Ref did not parse
	err error     // a failure to read the store (or a cache miss) while resolving
	key KeyInfo
}

// KeyInfo is what an [Authorizer] is told of a key: a copy, so that nothing
// it does can change the key.
type KeyInfo struct {
	ID  string // the key id (a UUID)
	ARN string // the key ARN
	// Spec and Usage are the key's KeySpec and KeyUsage, State its
	// KeyState (Enabled, Disabled, PendingDeletion, PendingImport).
	Spec, Usage, State string
	// Policy is the key policy document (CreateKey, PutKeyPolicy).
	Policy string
	// Origin is AWS_KMS or EXTERNAL (imported material): the condition
	// key kms:KeyOrigin.
	Origin string
}

// ResolveKey returns the id of the key that ref (a key id, key ARN, alias
// name or alias ARN) names, read as req.Key was (the key cache, or the
// store transaction behind it): an alias is looked up; a key id or key ARN of this KMS's region and account
// stands for itself, whether or not such a key exists. ok is false for an
// alias that does not exist and for anything that is no key reference. An
// Authorizer uses it to match its own entries (a grant naming "alias/app")
// against req.Key in the same read. It must not be called after
// Authorize returns.
func (req *AuthzRequest) ResolveKey(ref string) (id string, ok bool) {
	if req.r == nil {
		return "", false
	}
	kr, err := req.s.parseKeyRef(ref, true)
	if err != nil {
		return "", false
	}
	if kr.alias == "" {
		return kr.id, true
	}
	id, err = req.r.alias(kr.alias)
	if err != nil {
		if !errors.Is(err, ErrNoRecord) && req.err == nil {
			req.err = err // the store's failure (or a cache miss) decides
		}
		return "", false
	}
	return id, true
}

// authorize asks the Authorizer ctx carries, if any, whether the caller may
// perform action on k (nil: ref resolved to no key), with aliases read
// through r, the reader that loaded k (nil when ref did not parse). A
// failure to read the store while the Authorizer resolved its entries wins
// over its answer.
func (s *Service) authorize(ctx context.Context, r keyReader, action, ref string, k *KeyRecord, info *authzInfo) error {
	a := authorizerFrom(ctx)
	if a == nil {
		return nil
	}
	req := &AuthzRequest{Action: action, Ref: ref, s: s, r: r}
	if info != nil {
		req.EncryptionContext, req.EncryptionAlgorithm = info.ec, info.alg
		req.Grant, req.BypassPolicyLockoutSafetyCheck = info.grant, info.bypass
		req.retire = info.retire
	}
	if alias := aliasOf(ref); alias != "" {
		req.RequestAlias = alias
	}
	if k != nil {
		req.key = KeyInfo{ID: k.ID, ARN: s.KeyARN(k.ID), Spec: k.Spec, Usage: k.Usage, State: k.State, Policy: k.Policy, Origin: originOf(k)}
		req.Key = &req.key
	}
	err := a.Authorize(ctx, req)
	req.r = nil
	if req.err != nil {
		return req.err
	}
	return err
}

// parseAuthorized parses a key reference. A reference that does not parse
// names no key: the Authorizer is asked with none, so that a caller it
// refuses learns nothing more. An alias where the operation takes none
// (allowAlias false) is kept, for loadAuthorized to refuse once the key is
// authorized: so a refused caller learns nothing either, and the key a
// refused request named is known (to the audit log).
func (s *Service) parseAuthorized(ctx context.Context, action, raw string, allowAlias bool) (keyRef, error) {
	return s.parseAuthorizedWith(ctx, action, raw, allowAlias, nil)
}

// parseAuthorizedWith is parseAuthorized for a request whose conditions'
// values info holds (nil: none).
func (s *Service) parseAuthorizedWith(ctx context.Context, action, raw string, allowAlias bool, info *authzInfo) (keyRef, error) {
	ref, err := s.parseKeyRef(raw, true)
	if err != nil {
		if aerr := s.authorize(ctx, nil, action, raw, nil, info); aerr != nil {
			return keyRef{}, aerr
		}
		return keyRef{}, err
	}
	ref.aliasRefused = ref.alias != "" && !allowAlias
	ref.info = info
	return ref, nil
}

// loadAuthorized loads the key ref names through r and asks the Authorizer
// whether the caller may perform action on it; a reference to no key is
// asked about too (with no key) before its NotFoundException is returned.
func (s *Service) loadAuthorized(ctx context.Context, r keyReader, action string, ref keyRef) (*KeyRecord, error) {
	k, err := s.load(r, ref)
	if err != nil && CodeOf(err) != CodeNotFound {
		return nil, err // the store failed, or the cache missed
	}
	if aerr := s.authorize(ctx, r, action, ref.raw, k, ref.info); aerr != nil {
		return nil, aerr
	}
	if ref.aliasRefused {
		_, err := s.parseKeyRef(ref.raw, false)
		return nil, err
	}
	return k, err
}

// authzInfo is what a request carries for the conditions of policies,
// passed to the Authorizer with each key it is asked about.
type authzInfo struct {
	ec     map[string]string
	alg    string
	grant  *GrantRequest
	bypass bool
	// retire is the grant RetireGrant retires (nil if none exists).
	retire *GrantRecord
}

// aliasOf returns the alias name ("alias/NAME") a key reference names, ""
// if it names no alias.
func aliasOf(ref string) string {
	if strings.HasPrefix(ref, "alias/") {
		return ref
	}
	if strings.HasPrefix(ref, "arn:") {
		parts := strings.SplitN(ref, ":", 6)
		if len(parts) == 6 && strings.HasPrefix(parts[5], "alias/") {
			return parts[5]
		}
	}
	return ""
}
