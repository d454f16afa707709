package kms_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/envelopekms/envelope/kms"
)

// asked is one question put to an Authorizer.
type asked struct {
	action, ref, keyID string // keyID "" when the reference named no key
}

func (a asked) String() string { return a.action + " " + a.ref + " → " + a.keyID }

// recorder is an Authorizer that notes what it is asked and answers with
// decide (nil: allow).
type recorder struct {
	mu     sync.Mutex
	asks   []asked
	decide func(*kms.AuthzRequest) error
}

func (r *recorder) Authorize(_ context.Context, req *kms.AuthzRequest) error {
	a := asked{action: req.Action, ref: req.Ref}
	if req.Key != nil {
		a.keyID = req.Key.ID
		if req.Key.ARN != "arn:aws:kms:us-east-1:111122223333:key/"+req.Key.ID || req.Key.Spec == "" || req.Key.Usage == "" || req.Key.State == "" || req.Key.Policy == "" {
			return fmt.Errorf("AuthzRequest.Key = %+v, want its ARN, spec, usage, state and policy", *req.Key)
		}
	}
	r.mu.Lock()
	r.asks = append(r.asks, a)
	r.mu.Unlock()
	if r.decide != nil {
		return r.decide(req)
	}
	return nil
}

// distinct returns the questions asked since the last call, each once, in
// the order first asked (a read retried against the store after the cache
// missed asks again).
func (r *recorder) distinct() []asked {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []asked
	for _, a := range r.asks {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	r.asks = nil
	return out
}

var errDenied = &kms.Error{Code: kms.CodeAccessDenied, Message: "denied by the test"}

func deny(*kms.AuthzRequest) error { return errDenied }

// authzFixture is a service with keys A (alias/a) and B (alias/b), and a
// ciphertext of each.
type authzFixture struct {
	e            *env
	a, b         string
	blobA, blobB []byte
}

func newAuthzFixture(t *testing.T) *authzFixture {
	e := newEnv(t)
	f := &authzFixture{e: e, a: e.symKey(t), b: e.symKey(t)}
	e.alias(t, "alias/a", f.a)
	e.alias(t, "alias/b", f.b)
	f.blobA = e.encrypt(t, f.a, []byte("secret of A"), nil)
	f.blobB = e.encrypt(t, f.b, []byte("secret of B"), nil)
	return f
}

// authzCase is one operation and what it must ask.
type authzCase struct {
	name string
	call func(ctx context.Context) error
	want []asked
	// check, if set, verifies after a refusal that nothing changed.
	unchanged func(t *testing.T)
}

func (f *authzFixture) cases(t *testing.T) []authzCase {
	s, a, b := f.e.svc, f.a, f.b
	aARN := s.KeyARN(a)
	n := i32(32)
	state := func(id, want string) func(t *testing.T) {
		return func(t *testing.T) {
			if got := f.e.describe(t, id).KeyState; got != want {
				t.Errorf("after a refused operation, key state = %s, want %s", got, want)
			}
		}
	}
	target := func(alias, want string) func(t *testing.T) {
		return func(t *testing.T) {
			out, err := s.ListAliases(t.Context(), &kms.ListAliasesInput{KeyId: want})
			if err != nil || !slices.ContainsFunc(out.Aliases, func(e kms.AliasListEntry) bool { return e.AliasName == alias }) {
				t.Errorf("after a refused operation, %s no longer points to %s (%v, %v)", alias, want, out, err)
			}
		}
	}
	return []authzCase{
		{"Encrypt by alias", func(ctx context.Context) error {
			_, err := s.Encrypt(ctx, &kms.EncryptInput{KeyId: "alias/a", Plaintext: []byte("x")})
			return err
		}, []asked{{"kms:Encrypt", "alias/a", a}}, nil},
		{"Encrypt by ARN", func(ctx context.Context) error {
			_, err := s.Encrypt(ctx, &kms.EncryptInput{KeyId: aARN, Plaintext: []byte("x")})
			return err
		}, []asked{{"kms:Encrypt", aARN, a}}, nil},
		{"Decrypt naming no key", func(ctx context.Context) error {
			_, err := s.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: f.blobB})
			return err
		}, []asked{{"kms:Decrypt", b, b}}, nil},
		{"Decrypt naming its key", func(ctx context.Context) error {
			_, err := s.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: f.blobB, KeyId: "alias/b"})
			return err
		}, []asked{{"kms:Decrypt", "alias/b", b}}, nil},
		{"ReEncrypt", func(ctx context.Context) error {
			_, err := s.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: f.blobB, SourceKeyId: "alias/b", DestinationKeyId: "alias/a"})
			return err
		}, []asked{{"kms:ReEncryptFrom", "alias/b", b}, {"kms:ReEncryptTo", "alias/a", a}}, nil},
		{"GenerateDataKey", func(ctx context.Context) error {
			_, err := s.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: "alias/a", NumberOfBytes: n})
			return err
		}, []asked{{"kms:GenerateDataKey", "alias/a", a}}, nil},
		{"GenerateDataKeyWithoutPlaintext", func(ctx context.Context) error {
			_, err := s.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: "alias/a", NumberOfBytes: n})
			return err
		}, []asked{{"kms:GenerateDataKeyWithoutPlaintext", "alias/a", a}}, nil},
		{"GenerateDataKeyPair", func(ctx context.Context) error {
			_, err := s.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: "alias/a", KeyPairSpec: "ECC_NIST_P256"})
			return err
		}, []asked{{"kms:GenerateDataKeyPair", "alias/a", a}}, nil},
		{"GenerateDataKeyPairWithoutPlaintext", func(ctx context.Context) error {
			_, err := s.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: "alias/a", KeyPairSpec: "ECC_NIST_P256"})
			return err
		}, []asked{{"kms:GenerateDataKeyPairWithoutPlaintext", "alias/a", a}}, nil},
		{"DescribeKey", func(ctx context.Context) error {
			_, err := s.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: "alias/a"})
			return err
		}, []asked{{"kms:DescribeKey", "alias/a", a}}, nil},
		{"UpdateKeyDescription", func(ctx context.Context) error {
			_, err := s.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: a, Description: "changed"})
			return err
		}, []asked{{"kms:UpdateKeyDescription", a, a}}, func(t *testing.T) {
			if d := f.e.describe(t, a).Description; d == "changed" {
				t.Errorf("a refused UpdateKeyDescription changed the description")
			}
		}},
		{"DisableKey", func(ctx context.Context) error {
			_, err := s.DisableKey(ctx, &kms.DisableKeyInput{KeyId: a})
			return err
		}, []asked{{"kms:DisableKey", a, a}}, state(a, kms.StateEnabled)},
		{"EnableKey", func(ctx context.Context) error {
			_, err := s.EnableKey(ctx, &kms.EnableKeyInput{KeyId: a})
			return err
		}, []asked{{"kms:EnableKey", a, a}}, nil},
		{"ScheduleKeyDeletion", func(ctx context.Context) error {
			_, err := s.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: b})
			return err
		}, []asked{{"kms:ScheduleKeyDeletion", b, b}}, state(b, kms.StateEnabled)},
		{"CancelKeyDeletion", func(ctx context.Context) error {
			_, err := s.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: b})
			return err
		}, []asked{{"kms:CancelKeyDeletion", b, b}}, nil},
		{"EnableKey after the cancellation", func(ctx context.Context) error {
			_, err := s.EnableKey(ctx, &kms.EnableKeyInput{KeyId: b})
			return err
		}, []asked{{"kms:EnableKey", b, b}}, nil},
		{"TagResource", func(ctx context.Context) error {
			_, err := s.TagResource(ctx, &kms.TagResourceInput{KeyId: a, Tags: []kms.Tag{{Key: "k", Value: "v"}}})
			return err
		}, []asked{{"kms:TagResource", a, a}}, nil},
		{"ListResourceTags", func(ctx context.Context) error {
			_, err := s.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: a})
			return err
		}, []asked{{"kms:ListResourceTags", a, a}}, nil},
		{"UntagResource", func(ctx context.Context) error {
			_, err := s.UntagResource(ctx, &kms.UntagResourceInput{KeyId: a, TagKeys: []string{"k"}})
			return err
		}, []asked{{"kms:UntagResource", a, a}}, nil},
		{"EnableKeyRotation", func(ctx context.Context) error {
			_, err := s.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: a})
			return err
		}, []asked{{"kms:EnableKeyRotation", a, a}}, nil},
		{"GetKeyRotationStatus", func(ctx context.Context) error {
			_, err := s.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: a})
			return err
		}, []asked{{"kms:GetKeyRotationStatus", a, a}}, nil},
		{"DisableKeyRotation", func(ctx context.Context) error {
			_, err := s.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: a})
			return err
		}, []asked{{"kms:DisableKeyRotation", a, a}}, nil},
		{"RotateKeyOnDemand", func(ctx context.Context) error {
			_, err := s.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: a})
			return err
		}, []asked{{"kms:RotateKeyOnDemand", a, a}}, func(t *testing.T) {
			if n, err := kms.VersionsForTest(s, a); err != nil || n != 1 {
				t.Errorf("after a refused RotateKeyOnDemand the key has %d versions (%v), want 1", n, err)
			}
		}},
		{"ListKeyRotations", func(ctx context.Context) error {
			_, err := s.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: a})
			return err
		}, []asked{{"kms:ListKeyRotations", a, a}}, nil},
		{"GetKeyPolicy", func(ctx context.Context) error {
			_, err := s.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: a})
			return err
		}, []asked{{"kms:GetKeyPolicy", a, a}}, nil},
		{"PutKeyPolicy", func(ctx context.Context) error {
			_, err := s.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: a, Policy: `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`})
			return err
		}, []asked{{"kms:PutKeyPolicy", a, a}}, func(t *testing.T) {
			out, err := s.GetKeyPolicy(t.Context(), &kms.GetKeyPolicyInput{KeyId: a})
			if err != nil || out.Policy == `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}` {
				t.Errorf("a refused PutKeyPolicy changed the policy (%v)", err)
			}
		}},
		{"ListKeyPolicies", func(ctx context.Context) error {
			_, err := s.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: a})
			return err
		}, []asked{{"kms:ListKeyPolicies", a, a}}, nil},
		{"ListAliases of a key", func(ctx context.Context) error {
			_, err := s.ListAliases(ctx, &kms.ListAliasesInput{KeyId: a})
			return err
		}, []asked{{"kms:ListAliases", a, a}}, nil},
		{"CreateAlias", func(ctx context.Context) error {
			_, err := s.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: "alias/new", TargetKeyId: b})
			return err
		}, []asked{{"kms:CreateAlias", b, b}}, func(t *testing.T) {
			if _, err := s.DescribeKey(t.Context(), &kms.DescribeKeyInput{KeyId: "alias/new"}); kms.CodeOf(err) != kms.CodeNotFound {
				t.Errorf("a refused CreateAlias made the alias (DescribeKey err = %v)", err)
			}
		}},
		{"UpdateAlias", func(ctx context.Context) error {
			_, err := s.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: "alias/new", TargetKeyId: a})
			return err
		}, []asked{{"kms:UpdateAlias", "alias/new", b}, {"kms:UpdateAlias", a, a}}, target("alias/new", b)},
		{"UpdateAlias back", func(ctx context.Context) error {
			_, err := s.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: "alias/new", TargetKeyId: b})
			return err
		}, []asked{{"kms:UpdateAlias", "alias/new", a}, {"kms:UpdateAlias", b, b}}, nil},
		{"DeleteAlias", func(ctx context.Context) error {
			_, err := s.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: "alias/new"})
			return err
		}, []asked{{"kms:DeleteAlias", "alias/new", b}}, target("alias/new", b)},
	}
}

// TestAuthorizerAskedForEveryKey: every operation on a key asks the
// context's Authorizer about the key it acts on, with the action IAM names
// and the reference as given, and goes ahead when it allows.
func TestAuthorizerAskedForEveryKey(t *testing.T) {
	f := newAuthzFixture(t)
	r := &recorder{}
	ctx := kms.WithAuthorizer(t.Context(), r)
	for _, c := range f.cases(t) {
		if err := c.call(ctx); err != nil {
			t.Errorf("%s with an Authorizer that allows: err = %v", c.name, err)
		}
		if got := r.distinct(); !slices.Equal(got, c.want) {
			t.Errorf("%s asked %v, want %v", c.name, got, c.want)
		}
	}
	// Operations on no key ask nothing (the server checks them itself).
	n := i32(16)
	if _, err := f.e.svc.ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.svc.ListAliases(ctx, &kms.ListAliasesInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.svc.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: n}); err != nil {
		t.Fatal(err)
	}
	if got := r.distinct(); len(got) != 0 {
		t.Errorf("ListKeys, ListAliases and GenerateRandom asked %v, want nothing", got)
	}
}

// TestAuthorizerRefusalStops: a refusal is the operation's error, and the
// operation changes nothing.
func TestAuthorizerRefusalStops(t *testing.T) {
	f := newAuthzFixture(t)
	// alias/new exists for the alias cases (made without an Authorizer).
	f.e.alias(t, "alias/new", f.b)
	ctx := kms.WithAuthorizer(t.Context(), &recorder{decide: deny})
	for _, c := range f.cases(t) {
		if c.name == "CreateAlias" {
			if _, err := f.e.svc.DeleteAlias(t.Context(), &kms.DeleteAliasInput{AliasName: "alias/new"}); err != nil {
				t.Fatal(err)
			}
		}
		err := c.call(ctx)
		if !errors.Is(err, errDenied) {
			t.Errorf("%s with an Authorizer that refuses: err = %v, want its refusal as it is", c.name, err)
		}
		if c.unchanged != nil {
			c.unchanged(t)
		}
		if c.name == "CreateAlias" {
			f.e.alias(t, "alias/new", f.b)
		}
	}
}

// TestAuthorizerNoSuchKey: a reference to no key is put to the Authorizer
// with no key, so that a refused caller cannot tell a missing key from one
// it may not use; allowed, the operation fails as it did.
func TestAuthorizerNoSuchKey(t *testing.T) {
	f := newAuthzFixture(t)
	s := f.e.svc
	// A ciphertext of a key that is gone, and one that names no key.
	gone := f.e.symKey(t)
	goneBlob := f.e.encrypt(t, gone, []byte("x"), nil)
	if _, err := s.ScheduleKeyDeletion(t.Context(), &kms.ScheduleKeyDeletionInput{KeyId: gone, PendingWindowInDays: i32(7)}); err != nil {
		t.Fatal(err)
	}
	f.e.clock.AdvanceDays(8)
	if err := s.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	forged := append([]byte(nil), f.blobA...)
	copy(forged[1:17], make([]byte, 16)) // a key id no key ever had
	const missing = "1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, c := range []struct {
		name    string
		call    func(ctx context.Context) error
		ref     string
		allowed string // the error once the Authorizer allows
	}{
		{"Encrypt under a missing alias", func(ctx context.Context) error {
			_, err := s.Encrypt(ctx, &kms.EncryptInput{KeyId: "alias/missing", Plaintext: []byte("x")})
			return err
		}, "alias/missing", kms.CodeNotFound},
		{"Encrypt under a missing key", func(ctx context.Context) error {
			_, err := s.Encrypt(ctx, &kms.EncryptInput{KeyId: missing, Plaintext: []byte("x")})
			return err
		}, missing, kms.CodeNotFound},
		{"Encrypt under no valid key id", func(ctx context.Context) error {
			_, err := s.Encrypt(ctx, &kms.EncryptInput{KeyId: "not-a-key", Plaintext: []byte("x")})
			return err
		}, "not-a-key", kms.CodeNotFound},
		{"DisableKey of a missing key", func(ctx context.Context) error {
			_, err := s.DisableKey(ctx, &kms.DisableKeyInput{KeyId: missing})
			return err
		}, missing, kms.CodeNotFound},
		{"Decrypt of a deleted key's ciphertext", func(ctx context.Context) error {
			_, err := s.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: goneBlob})
			return err
		}, gone, kms.CodeNotFound},
		{"Decrypt of a ciphertext naming no key ever had", func(ctx context.Context) error {
			_, err := s.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: forged})
			return err
		}, "00000000-0000-0000-0000-000000000000", kms.CodeInvalidCiphertext},
		{"Decrypt of garbage", func(ctx context.Context) error {
			_, err := s.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("not a ciphertext blob of any kind, no")})
			return err
		}, "", kms.CodeInvalidCiphertext},
		{"ReEncrypt to a missing alias", func(ctx context.Context) error {
			_, err := s.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: f.blobA, DestinationKeyId: "alias/missing"})
			return err
		}, "alias/missing", kms.CodeNotFound},
		{"DeleteAlias of a missing alias", func(ctx context.Context) error {
			_, err := s.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: "alias/missing"})
			return err
		}, "alias/missing", kms.CodeNotFound},
		{"UpdateAlias of a missing alias", func(ctx context.Context) error {
			_, err := s.UpdateAlias(ctx, &kms.UpdateAliasInput{AliasName: "alias/missing", TargetKeyId: f.a})
			return err
		}, "alias/missing", kms.CodeNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			refuse := &recorder{decide: func(req *kms.AuthzRequest) error {
				if req.Key == nil {
					return errDenied
				}
				return nil
			}}
			err := c.call(kms.WithAuthorizer(t.Context(), refuse))
			if !errors.Is(err, errDenied) {
				t.Fatalf("err = %v, want the refusal", err)
			}
			asks := refuse.distinct()
			if !slices.ContainsFunc(asks, func(a asked) bool { return a.ref == c.ref && a.keyID == "" }) {
				t.Errorf("asked %v, want a question about %q with no key", asks, c.ref)
			}
			allow := &recorder{}
			err = c.call(kms.WithAuthorizer(t.Context(), allow))
			wantCode(t, c.name+" allowed", err, c.allowed)
		})
	}
}

// TestAuthorizerDecryptNamedKey: Decrypt naming a key asks about the named
// key, which is the key used: a ciphertext of another key is refused
// (IncorrectKeyException) only once the named key is allowed.
func TestAuthorizerDecryptNamedKey(t *testing.T) {
	f := newAuthzFixture(t)
	onlyA := &recorder{decide: func(req *kms.AuthzRequest) error {
		if req.Key != nil && req.Key.ID == f.a {
			return nil
		}
		return errDenied
	}}
	ctx := kms.WithAuthorizer(t.Context(), onlyA)
	_, err := f.e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: f.blobB, KeyId: "alias/a"})
	wantCode(t, "Decrypt(B's blob, KeyId alias/a)", err, kms.CodeIncorrectKey)
	if got := onlyA.distinct(); !slices.Equal(got, []asked{{"kms:Decrypt", "alias/a", f.a}}) {
		t.Errorf("asked %v, want only about A", got)
	}
	_, err = f.e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: f.blobA, KeyId: "alias/b"})
	if !errors.Is(err, errDenied) {
		t.Errorf("Decrypt(A's blob, KeyId alias/b) err = %v, want the refusal", err)
	}
	out, err := f.e.svc.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: f.blobA})
	if err != nil || string(out.Plaintext) != "secret of A" {
		t.Errorf("Decrypt(A's blob) = %v, %v", out, err)
	}
}

// TestAuthorizerResolveKey: an Authorizer resolves its own entries in the
// operation's snapshot, and not after it has returned.
func TestAuthorizerResolveKey(t *testing.T) {
	f := newAuthzFixture(t)
	s := f.e.svc
	var kept *kms.AuthzRequest
	var results []string
	ctx := kms.WithAuthorizer(t.Context(), kms.AuthorizerFunc(func(_ context.Context, req *kms.AuthzRequest) error {
		kept = req
		results = results[:0]
		for _, ref := range []string{"alias/a", "alias/b", "alias/missing", s.AliasARN("alias/a"), s.KeyARN(f.b), f.a,
			"arn:aws:kms:eu-west-1:111122223333:alias/a", "alias/", "", "nonsense"} {
			id, ok := req.ResolveKey(ref)
			results = append(results, fmt.Sprintf("%s=%s,%v", ref, id, ok))
		}
		return nil
	}))
	if _, err := s.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: f.a}); err != nil {
		t.Fatal(err)
	}
	want := []string{"alias/a=" + f.a + ",true", "alias/b=" + f.b + ",true", "alias/missing=,false",
		s.AliasARN("alias/a") + "=" + f.a + ",true", s.KeyARN(f.b) + "=" + f.b + ",true", f.a + "=" + f.a + ",true",
		"arn:aws:kms:eu-west-1:111122223333:alias/a=,false", "alias/=,false", "=,false", "nonsense=,false"}
	if !slices.Equal(results, want) {
		t.Errorf("ResolveKey results:\n%s\nwant:\n%s", strings.Join(results, "\n"), strings.Join(want, "\n"))
	}
	if id, ok := kept.ResolveKey("alias/a"); ok || id != "" {
		t.Errorf("ResolveKey after Authorize returned = %q, %v; want nothing", id, ok)
	}
}

// TestAuthorizerCachedKeys: with an Authorizer whose entries name aliases,
// hot keys are still served from the cache; and an entry the cache does
// not hold yet is read from the store, not taken as "no such alias".
func TestAuthorizerCachedKeys(t *testing.T) {
	f := newAuthzFixture(t)
	s := f.e.svc
	e := f.e
	e.alias(t, "alias/grant", f.a) // never used by an operation: not cached
	byAlias := kms.AuthorizerFunc(func(_ context.Context, req *kms.AuthzRequest) error {
		if req.Key != nil {
			if id, ok := req.ResolveKey("alias/grant"); ok && id == req.Key.ID {
				return nil
			}
		}
		return errDenied
	})
	n := i32(32)
	// Warm the cache for key A (by id) without an Authorizer.
	if _, err := s.GenerateDataKey(t.Context(), &kms.GenerateDataKeyInput{KeyId: f.a, NumberOfBytes: n}); err != nil {
		t.Fatal(err)
	}
	ctx := kms.WithAuthorizer(t.Context(), byAlias)
	if _, err := s.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: f.a, NumberOfBytes: n}); err != nil {
		t.Fatalf("GenerateDataKey allowed through an alias entry the cache does not hold: err = %v", err)
	}
	hits0, misses0 := s.CacheStats()
	for range 50 {
		if _, err := s.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: f.a, NumberOfBytes: n}); err != nil {
			t.Fatal(err)
		}
	}
	hits, misses := s.CacheStats()
	if hits-hits0 < 45 || misses-misses0 > 5 {
		t.Errorf("50 authorized GenerateDataKey on a hot key: %d hits, %d misses; want nearly all hits", hits-hits0, misses-misses0)
	}
	if _, err := s.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: f.b, NumberOfBytes: n}); !errors.Is(err, errDenied) {
		t.Errorf("GenerateDataKey under B err = %v, want the refusal", err)
	}
	// Repointing the grant's alias takes effect at once.
	if _, err := s.UpdateAlias(t.Context(), &kms.UpdateAliasInput{AliasName: "alias/grant", TargetKeyId: f.b}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: f.a, NumberOfBytes: n}); !errors.Is(err, errDenied) {
		t.Errorf("GenerateDataKey under A after alias/grant moved to B: err = %v, want the refusal", err)
	}
}

// TestAuthorizerKeyPairSameKey: GenerateDataKeyPair reads its key before
// and after making the pair; the second read is of the key the first
// resolved and authorized, not of whatever the alias names by then.
func TestAuthorizerKeyPairSameKey(t *testing.T) {
	f := newAuthzFixture(t)
	s := f.e.svc
	f.e.alias(t, "alias/x", f.a)
	kms.OnKeyPairForTest(s, func(string) {
		// The alias moves while the pair is made.
		if _, err := s.UpdateAlias(context.Background(), &kms.UpdateAliasInput{AliasName: "alias/x", TargetKeyId: f.b}); err != nil {
			t.Errorf("UpdateAlias err = %v", err)
		}
	})
	onlyA := &recorder{decide: func(req *kms.AuthzRequest) error {
		if req.Key != nil && req.Key.ID == f.a {
			return nil
		}
		return errDenied
	}}
	out, err := s.GenerateDataKeyPair(kms.WithAuthorizer(t.Context(), onlyA), &kms.GenerateDataKeyPairInput{KeyId: "alias/x", KeyPairSpec: "ECC_NIST_P256"})
	if err != nil {
		t.Fatalf("GenerateDataKeyPair err = %v", err)
	}
	if out.KeyId != s.KeyARN(f.a) {
		t.Errorf("GenerateDataKeyPair encrypted the private key under %s, want A (%s), the key it authorized", out.KeyId, s.KeyARN(f.a))
	}
	if got := onlyA.distinct(); !slices.Equal(got, []asked{{"kms:GenerateDataKeyPair", "alias/x", f.a}}) {
		t.Errorf("asked %v, want only about A", got)
	}
}

// TestKeyPairDryRun: a dry run of GenerateDataKeyPair checks the key and
// the caller's permission and answers DryRunOperationException without
// making a pair (an RSA_4096 pair costs up to seconds of CPU).
func TestKeyPairDryRun(t *testing.T) {
	f := newAuthzFixture(t)
	s := f.e.svc
	var made int
	kms.OnKeyPairForTest(s, func(string) { made++ })
	for _, c := range []struct {
		name  string
		ctx   context.Context
		keyID string
		want  string
	}{
		{"allowed", t.Context(), f.a, kms.CodeDryRun},
		{"refused", kms.WithAuthorizer(t.Context(), &recorder{decide: deny}), f.a, kms.CodeAccessDenied},
		{"missing key", t.Context(), "alias/missing", kms.CodeNotFound},
	} {
		_, err := s.GenerateDataKeyPair(c.ctx, &kms.GenerateDataKeyPairInput{KeyId: c.keyID, KeyPairSpec: "RSA_4096", DryRun: true})
		wantCode(t, "GenerateDataKeyPair DryRun "+c.name, err, c.want)
		_, err = s.GenerateDataKeyPairWithoutPlaintext(c.ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: c.keyID, KeyPairSpec: "RSA_4096", DryRun: true})
		wantCode(t, "GenerateDataKeyPairWithoutPlaintext DryRun "+c.name, err, c.want)
	}
	_, err := s.GenerateDataKeyPair(t.Context(), &kms.GenerateDataKeyPairInput{KeyId: f.a, KeyPairSpec: "RSA_9999", DryRun: true})
	wantCode(t, "GenerateDataKeyPair DryRun with a bad KeyPairSpec", err, kms.CodeValidation)
	if made != 0 {
		t.Fatalf("dry runs of GenerateDataKeyPair made %d key pairs, want 0", made)
	}
	if _, err := s.GenerateDataKeyPair(t.Context(), &kms.GenerateDataKeyPairInput{KeyId: f.a, KeyPairSpec: "ECC_NIST_P256"}); err != nil {
		t.Fatal(err)
	}
	if made != 1 {
		t.Errorf("GenerateDataKeyPair made %d key pairs, want 1 (the counter counts)", made)
	}
}
